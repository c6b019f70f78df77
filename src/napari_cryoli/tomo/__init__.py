"""Projection, weighted back-projection and the synthetic dendrite phantom."""
