"""napari reader hooks: the MRC family (.mrc .rec .map .st .ali .mrcs, also .gz/.bz2) and the
OME-Zarr stores napari-cryoli writes (``predict --out X.ome.zarr``, ``batch --zarr``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

EXTENSIONS = (".mrc", ".rec", ".map", ".st", ".ali", ".mrcs")
COMPRESSED = (".gz", ".bz2")


def is_mrc_path(path: str | Path) -> bool:
    name = str(path).lower()
    for suffix in COMPRESSED:
        name = name.removesuffix(suffix)
    return name.endswith(EXTENSIONS)


def get_reader(path: str | list[str]) -> Callable | None:
    """Return the reader for MRC-family paths, else None (napari then tries other readers)."""
    paths = [path] if isinstance(path, str) else list(path)
    if not paths or not all(is_mrc_path(p) for p in paths):
        return None
    return read_layers


def read_layers(path: str | list[str]) -> list[tuple]:
    """Read each file into a layer with its voxel size as scale (nm) and origin as translate.

    Problems with a file raise the project's FileFormatError, whose one-line message napari shows.
    """
    from napari.utils.notifications import show_warning

    from ..io.mrc import read_mrc
    from .layers import volume_layer_data

    paths = [path] if isinstance(path, str) else list(path)
    layers = []
    for p in paths:
        volume = read_mrc(p)
        for warning in volume.warnings:
            show_warning(f"{Path(p).name}: {warning}")
        layers.append(volume_layer_data(volume))
    return layers


def get_zarr_reader(path: str | list[str]) -> Callable | None:
    """Return the reader for one OME-Zarr image store (``*.zarr`` folder), else None."""
    from ..dataset.zarr import is_ome_zarr

    if not isinstance(path, str) or not is_ome_zarr(path) or not Path(path).is_dir():
        return None
    return read_zarr_layers


def read_zarr_layers(path: str) -> list[tuple]:
    """The store's full-resolution array as one lazy layer (dask): a segmentation (integer
    voxels) as labels in the project's class colours, anything else as an image; scale and
    translate in nm. Only the full resolution: the panels read a layer's data as one volume.
    """
    from ..dataset.zarr import read_ome_zarr
    from .layers import KEY, labels_style

    levels, meta = read_ome_zarr(path)
    kwargs = {"name": Path(path).name.split(".")[0], "scale": tuple(meta["scale"]),
              "translate": tuple(meta["translate"]),
              "metadata": {KEY: {"path": str(path), "voxel_size_nm": list(meta["scale"]),
                                 "origin_nm": list(meta["translate"]), "warnings": []}}}
    data = levels[0]
    if np.issubdtype(levels[0].dtype, np.integer):
        from ..classes import DEFAULT_ONTOLOGY

        kwargs["metadata"][KEY]["classes"] = DEFAULT_ONTOLOGY.to_dict()
        kwargs.update(labels_style(DEFAULT_ONTOLOGY))
        return [(data, kwargs, "labels")]
    return [(data, kwargs, "image")]
