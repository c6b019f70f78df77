"""napari reader hook for the MRC family (.mrc .rec .map .st .ali .mrcs, also .gz/.bz2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
