"""Datasets rather than single tomograms: batch runs on dask.distributed, the dataset table,
condition statistics, meshes for ChimeraX and Amira, and OME-Zarr copies of predictions.

Importing this package imports neither dask, torch nor trimesh: the functions that need them
import them when called.
"""
