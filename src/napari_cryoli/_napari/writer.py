"""napari writer hooks: Labels and Image layers to .mrc with voxel size and origin kept."""

from __future__ import annotations

from typing import Any

import numpy as np


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer as an 8-bit (mode 0) MRC volume."""
    return _write(path, np.asarray(data), meta, labels=True)


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write an Image layer as an MRC volume of its dtype (float32 for floats)."""
    return _write(path, np.asarray(data), meta, labels=False)


def _write(path: str, data: np.ndarray, meta: dict, labels: bool) -> list[str]:
    from ..errors import InputError
    from ..io.mrc import write_mrc

    if labels:
        if data.size and (data.min() < 0 or data.max() > 255):
            raise InputError("labels must be ids 0–255 to be written as an 8-bit MRC")
        data = data.astype(np.uint8, copy=False)
    elif data.dtype == np.float64:
        data = data.astype(np.float32)
    ndim = data.ndim
    scale = tuple(float(s) for s in meta.get("scale", (1.0,) * ndim))
    translate = tuple(float(t) for t in meta.get("translate", (0.0,) * ndim))
    write_mrc(path, data, voxel_size_nm=scale, origin_nm=translate, labels=labels)
    return [path]
