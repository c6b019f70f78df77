"""The phases a measurement knows, read from a label volume, and the checks on its inputs.

Measurements see five things: Li, LiH, Cu, SEI and "outside" (ids 0, 1 and every user class 6+).
``phase_array`` maps any label volume onto these so every later step compares against fixed ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..classes import BACKGROUND, CU, LI, LIH, PHASE_NAMES, SEI
from ..errors import InputError

#: Lookup table id -> phase: the four battery phases keep their id, everything else is outside.
_PHASE_LUT = np.full(256, BACKGROUND, dtype=np.uint8)
for _id in (LI, LIH, CU, SEI):
    _PHASE_LUT[_id] = _id

#: Lookup tables id -> bool for the groups the measurements use.
SOLID_LUT = np.zeros(256, dtype=bool)
SOLID_LUT[[LI, LIH, CU]] = True
METAL_LUT = np.zeros(256, dtype=bool)
METAL_LUT[[LI, LIH]] = True
FILLED_LUT = SOLID_LUT.copy()
FILLED_LUT[SEI] = True


def check_labels(labels: np.ndarray) -> np.ndarray:
    """Return ``labels`` as a 3D uint8 array, or raise ``InputError`` saying what is wrong."""
    a = np.asarray(labels)
    if a.ndim != 3:
        raise InputError(
            f"a label volume must be 3D (z, y, x), not {a.ndim}D with shape {a.shape}"
        )
    if a.size == 0:
        raise InputError(f"the label volume is empty (shape {a.shape})")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind not in "iu" and a.dtype != bool:
        raise InputError(f"labels must be integer class ids, not {a.dtype} values")
    lo, hi = (int(a.min()), int(a.max()))
    if lo < 0 or hi > 255:
        raise InputError(f"label ids must lie in 0..255, found {lo}..{hi}")
    return a.astype(np.uint8)


def check_voxel_size(voxel_size_nm: float | Sequence[float]) -> tuple[float, float, float]:
    """Voxel size as (z, y, x) nm from one or three positive finite numbers."""
    v = np.atleast_1d(np.asarray(voxel_size_nm, dtype=float)).ravel()
    if v.size == 1:
        v = np.repeat(v, 3)
    if v.size != 3:
        raise InputError(f"a voxel size needs 1 or 3 values (z, y, x), got {v.size}")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise InputError(f"voxel sizes must be positive numbers of nm, got {v.tolist()}")
    return (float(v[0]), float(v[1]), float(v[2]))


def phase_array(labels: np.ndarray) -> np.ndarray:
    """Labels with every id the measurements do not know (0, 1, 6+) mapped to background (1)."""
    return _PHASE_LUT[check_labels(labels)]


def phase_volumes_nm3(phases: np.ndarray, voxel_size_nm: Sequence[float]) -> dict[str, float]:
    """Volume of Li, LiH, Cu and SEI in nm³ (voxel counts times the voxel volume)."""
    voxel = float(np.prod(voxel_size_nm))
    return {
        PHASE_NAMES[i]: float(np.count_nonzero(phases == i)) * voxel for i in (LI, LIH, CU, SEI)
    }


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """The smallest box (grown by ``margin``, clipped to the array) holding all of ``mask``."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        if hits.size == 0:
            return None
        box.append(
            slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, mask.shape[axis]))
        )
    return tuple(box)


def neighbour_slices(axis: int, side: int) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices pairing each voxel of a 3D array (``here``) with its neighbour one step towards
    ``side`` (-1 or +1) along ``axis`` (``there``); voxels on that border have no neighbour."""
    here = [slice(None)] * 3
    there = [slice(None)] * 3
    if side > 0:
        here[axis], there[axis] = slice(None, -1), slice(1, None)
    else:
        here[axis], there[axis] = slice(1, None), slice(None, -1)
    return tuple(here), tuple(there)
