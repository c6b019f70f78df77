"""Cu particles: size, place in their dendrite, and how close they sit to LiH.

Particles are the 26-connected pieces of Cu (``pieces.label_pieces``); pieces under a minimum
volume are specks of a noisy segmentation, counted in the Cu volume but not listed. The gap to
LiH is searched in a box around each particle that grows until the nearest LiH face found is
certainly the nearest of all, so no distance map or list of every LiH face in the volume is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .dendrites import Axis
from .phases import CU_LUT, LIH_LUT, neighbour_slices
from .pieces import Pieces, label_pieces

#: First reach (in voxels of the largest size) of the search for LiH around a particle.
LIH_SEARCH_VOXELS = 16


@dataclass(frozen=True)
class Particle:
    """One connected piece of Cu (26-connected voxels)."""

    id: int
    volume_nm3: float
    equivalent_diameter_nm: float  # diameter of the sphere of the same volume
    centroid_nm: tuple[float, float, float]  # (z, y, x)
    dendrite: int  # id of the dendrite it belongs to (0: none)
    position_along_axis: float | None  # 0 at one tip of its dendrite, 1 at the other
    distance_to_lih_nm: float | None  # gap between its surface and the nearest LiH surface

    def to_dict(self) -> dict:
        return asdict(self) | {"centroid_nm": list(self.centroid_nm)}


def cu_particles(
    labels: np.ndarray,
    voxel_size_nm: Sequence[float],
    dendrites: Pieces | None = None,
    axes: Mapping[int, Axis] | None = None,
    *,
    cu_box: tuple[slice, ...] | None = None,
    lih_box: tuple[slice, ...] | None = None,
    min_volume_nm3: float = 0.0,
) -> tuple[list[Particle], int]:
    """Every Cu particle of ``labels`` (uint8 class ids), largest first, and the number of Cu
    specks (pieces under ``min_volume_nm3``) left out.

    ``cu_box`` and ``lih_box`` bound where Cu and LiH lie (the whole volume by default: a
    measurement passes the boxes of its scan); ``dendrites`` names each particle's dendrite
    (the one holding most of it), whose axis in ``axes`` places it along the dendrite.
    """
    h = np.asarray(voxel_size_nm, dtype=float)
    everywhere = tuple(slice(0, n) for n in labels.shape)
    if cu_box is None:
        cu_box = everywhere
    if lih_box is None:
        lih_box = everywhere if np.any(LIH_LUT[labels]) else None
    voxel = float(np.prod(h))
    min_voxels = max(1, int(np.ceil(min_volume_nm3 / voxel - 1e-9)))
    cu = label_pieces(labels, CU_LUT, cu_box, min_voxels)
    out = []
    for i, box in enumerate(cu.boxes(), start=1):
        if box is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, cu.ids.shape))
        mask = cu.ids[grown] == i
        corner = cu.corner + [s.start for s in grown]
        voxels = np.argwhere(mask) + corner
        volume = len(voxels) * voxel
        centroid = voxels.mean(axis=0) * h
        owner = _owner(voxels, dendrites)
        axis = axes.get(owner) if axes else None
        gap = None if lih_box is None else _gap_to_lih(labels, mask, corner, h, lih_box)
        out.append(
            Particle(
                id=0,
                volume_nm3=float(volume),
                equivalent_diameter_nm=float((6 * volume / np.pi) ** (1 / 3)),
                centroid_nm=tuple(float(v) for v in centroid),
                dendrite=owner,
                position_along_axis=(
                    None if axis is None or axis.length_nm == 0 else axis.position(centroid)
                ),
                distance_to_lih_nm=gap,
            )
        )
    out.sort(key=lambda p: -p.volume_nm3)
    return [Particle(**{**asdict(p), "id": k}) for k, p in enumerate(out, start=1)], cu.n_specks


def _owner(voxels: np.ndarray, dendrites: Pieces | None) -> int:
    """The dendrite holding most of these voxels (0: none, e.g. a particle on a speck)."""
    if dendrites is None:
        return 0
    local = voxels - dendrites.corner
    inside = np.all((local >= 0) & (local < dendrites.ids.shape), axis=1)
    ids = dendrites.ids[tuple(local[inside].T)]
    ids = ids[ids > 0]
    return int(np.bincount(ids).argmax()) if ids.size else 0


def boundary_faces(mask: np.ndarray, voxel_size_nm: Sequence[float], corner=(0, 0, 0)):
    """Centres (nm) of the faces between ``mask`` voxels and their non-mask neighbours, with the
    index of the mask voxel each belongs to; faces on the border of ``mask`` are not boundary."""
    h = np.asarray(voxel_size_nm, dtype=float)
    centres, owners = [], []
    for axis in range(3):
        for side in (-1, 1):
            here, there = neighbour_slices(axis, side)
            vox = np.argwhere(mask[here] & ~mask[there])
            if side < 0:
                vox[:, axis] += 1
            shift = np.zeros(3)
            shift[axis] = 0.5 * side
            centres.append((vox + np.asarray(corner) + shift) * h)
            owners.append(vox)
    return np.concatenate(centres), np.concatenate(owners)


def _gap_to_lih(
    labels: np.ndarray,
    mask: np.ndarray,
    corner: np.ndarray,
    h: np.ndarray,
    lih_box: tuple[slice, ...],
) -> float | None:
    """Smallest distance between the boundary faces of the particle ``mask`` (a crop at
    ``corner`` with a margin of one voxel) and those of LiH; None if LiH has no boundary face.

    LiH faces are read in a box reaching ``r`` voxels beyond the particle's box; a face outside
    it lies at least (r + 1) voxels away, so a gap shorter than that is final, else r doubles.
    """
    from scipy.spatial import cKDTree

    cu_faces, _ = boundary_faces(mask, h, corner)
    if not len(cu_faces):
        return None
    shape = np.asarray(labels.shape)
    lo_p, hi_p = corner + 1, corner + np.asarray(mask.shape) - 1  # the particle's own box
    lih_lo = np.array([s.start for s in lih_box])
    lih_hi = np.array([s.stop for s in lih_box])
    reach = LIH_SEARCH_VOXELS * h.max()
    while True:
        r = np.ceil(reach / h).astype(int)
        lo = np.maximum(np.maximum(lo_p - r, lih_lo) - 1, 0)
        hi = np.minimum(np.minimum(hi_p + r, lih_hi) + 1, shape)
        whole = np.all(lo <= np.maximum(lih_lo - 1, 0)) and np.all(hi >= np.minimum(lih_hi + 1, shape))
        if np.all(hi > lo):
            lih = LIH_LUT[labels[tuple(slice(a, b) for a, b in zip(lo, hi))]]
            faces, _ = boundary_faces(lih, h, lo)
            if len(faces):
                gap = float(cKDTree(faces).query(cu_faces, k=1)[0].min())
                if whole or gap <= float(((r + 1) * h).min()):
                    return gap
        if whole:
            return None
        reach *= 2
