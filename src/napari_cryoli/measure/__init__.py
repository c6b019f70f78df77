"""Measurements on a segmentation: SEI thickness, LiH fraction, Cu particles, dendrites."""
