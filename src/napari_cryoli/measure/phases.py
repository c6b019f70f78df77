"""The phases a measurement knows, read from a label volume, and the checks on its inputs.

Measurements see five things: Li, LiH, Cu, SEI and "outside" (ids 0, 1 and every user class 6+).
The lookup tables below map any label id onto these groups, so every step reads the labels as
they are (a memory-mapped file included) and never holds a mapped copy of the volume;
``scan_labels`` reads a volume once, slab by slab, for its phase volumes and where each phase is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..classes import BACKGROUND, CU, LI, LIH, PHASE_NAMES, PHASES, SEI, slab_counts
from ..errors import InputError

#: Voxels a streaming step reads at once (its temporary arrays are a few times this many bytes).
SLAB_VOXELS = 2**22

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
CU_LUT = np.zeros(256, dtype=bool)
CU_LUT[CU] = True
LIH_LUT = np.zeros(256, dtype=bool)
LIH_LUT[LIH] = True
#: One bit per battery phase, so one pass over a slab tells where each phase is.
_PHASE_BIT = np.zeros(256, dtype=np.uint8)
for _bit, _id in enumerate(PHASES):
    _PHASE_BIT[_id] = 1 << _bit


@dataclass(frozen=True)
class LabelScan:
    """What one pass over a label volume tells: voxels per id and the box around each phase."""

    counts: np.ndarray  # (256,) int64: voxels of each id
    boxes: dict[int, tuple[slice, ...] | None]  # phase id -> its bounding box (None if absent)

    def box(self, phase_ids: Sequence[int], margin: int, shape: Sequence[int]):
        """The box around all of ``phase_ids``, grown by ``margin`` and clipped to ``shape``."""
        found = [self.boxes[i] for i in phase_ids if self.boxes[i] is not None]
        if not found:
            return None
        return tuple(
            slice(
                max(min(b[a].start for b in found) - margin, 0),
                min(max(b[a].stop for b in found) + margin, int(shape[a])),
            )
            for a in range(3)
        )


def check_labels(labels: np.ndarray) -> np.ndarray:
    """Return ``labels`` as a C-ordered 3D uint8 array (the same memory when it already is one,
    e.g. a memory-mapped file), or raise ``InputError`` saying what is wrong."""
    a = labels if isinstance(labels, np.ndarray) else np.asarray(labels)
    if a.ndim != 3:
        raise InputError(
            f"a label volume must be 3D (z, y, x), not {a.ndim}D with shape {a.shape}"
        )
    if a.size == 0:
        raise InputError(f"the label volume is empty (shape {a.shape})")
    if a.dtype == np.uint8:
        return a if a.flags.c_contiguous else np.ascontiguousarray(a)
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


def phase_volumes_nm3(counts: np.ndarray, voxel_size_nm: Sequence[float]) -> dict[str, float]:
    """Volume of Li, LiH, Cu and SEI in nm³ from voxel counts per id (``LabelScan.counts``)."""
    voxel = float(np.prod(voxel_size_nm))
    return {PHASE_NAMES[i]: float(counts[i]) * voxel for i in PHASES}


def slabs(shape: Sequence[int], voxels: int = SLAB_VOXELS) -> list[tuple[int, int]]:
    """Ranges of whole planes along axis 0, each about ``voxels`` voxels (at least one plane)."""
    planes = max(1, voxels // max(int(shape[1]) * int(shape[2]), 1))
    return [(z, min(z + planes, int(shape[0]))) for z in range(0, int(shape[0]), planes)]


def scan_labels(labels: np.ndarray) -> LabelScan:
    """Voxels per id and the box around each battery phase, reading ``labels`` slab by slab."""
    counts = np.zeros(256, dtype=np.int64)
    along_z = np.zeros((labels.shape[0], len(PHASES)), dtype=bool)
    seen_yx = np.zeros(labels.shape[1:], dtype=np.uint8)
    for z0, z1 in slabs(labels.shape):
        per_plane = slab_counts(labels, z0, z1)
        counts += per_plane.sum(axis=0)
        along_z[z0:z1] = per_plane[:, list(PHASES)] > 0
        if along_z[z0:z1].any():
            seen_yx |= np.bitwise_or.reduce(_PHASE_BIT[labels[z0:z1]], axis=0)
    boxes: dict[int, tuple[slice, ...] | None] = {}
    for bit, pid in enumerate(PHASES):
        z = np.flatnonzero(along_z[:, bit])
        if z.size == 0:
            boxes[pid] = None
            continue
        here = (seen_yx & (1 << bit)) > 0
        y = np.flatnonzero(here.any(axis=1))
        x = np.flatnonzero(here.any(axis=0))
        boxes[pid] = tuple(slice(int(a[0]), int(a[-1]) + 1) for a in (z, y, x))
    return LabelScan(counts, boxes)


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
