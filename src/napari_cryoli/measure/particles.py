"""Cu particles: size, place in their dendrite, and how close they sit to LiH."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..classes import CU, LIH
from .dendrites import Axis
from .phases import bounding_box, neighbour_slices


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
    phases: np.ndarray,
    voxel_size_nm: Sequence[float],
    dendrite_ids: np.ndarray | None = None,
    axes: Mapping[int, Axis] | None = None,
    *,
    dendrite_corner: Sequence[int] = (0, 0, 0),
) -> list[Particle]:
    """Every Cu particle of ``phases`` (ids as in ``phase_array``), largest first.

    ``dendrite_ids`` may be a crop of the volume whose first voxel is ``dendrite_corner``."""
    from scipy import ndimage as ndi

    h = np.asarray(voxel_size_nm, dtype=float)
    cu = phases == CU
    box = bounding_box(cu, margin=1)
    if box is None:
        return []
    labels, n = ndi.label(cu[box], structure=np.ones((3, 3, 3), dtype=bool))
    corner = np.array([s.start for s in box])
    coords = np.argwhere(labels)
    ids = labels[tuple(coords.T)]
    coords_full = coords + corner
    counts = np.bincount(ids, minlength=n + 1)
    centroid = (
        np.stack(
            [
                np.bincount(ids, weights=coords_full[:, a] * h[a], minlength=n + 1)
                for a in range(3)
            ],
            axis=1,
        )
        / np.maximum(counts, 1)[:, None]
    )
    voxel = float(np.prod(h))
    owner = np.zeros(n + 1, dtype=np.int64)
    if dendrite_ids is not None:
        d = dendrite_ids[tuple((coords_full - np.asarray(dendrite_corner)).T)]
        # The dendrite holding most of the particle (a particle is solid, so it has one).
        pair = np.unique(np.stack([ids, d], axis=1), axis=0, return_counts=True)
        best: dict[int, tuple[int, int]] = {}
        for (i, dd), c in zip(pair[0].tolist(), pair[1].tolist()):
            if c > best.get(i, (0, -1))[1]:
                best[i] = (dd, c)
        for i, (dd, _) in best.items():
            owner[i] = dd
    gap = _gap_to_lih(phases, labels, box, n, h)
    out = []
    for i in range(1, n + 1):
        volume = counts[i] * voxel
        axis = axes.get(int(owner[i])) if axes else None
        out.append(
            Particle(
                id=0,
                volume_nm3=float(volume),
                equivalent_diameter_nm=float((6 * volume / np.pi) ** (1 / 3)),
                centroid_nm=tuple(float(v) for v in centroid[i]),
                dendrite=int(owner[i]),
                position_along_axis=(
                    None if axis is None or axis.length_nm == 0 else axis.position(centroid[i])
                ),
                distance_to_lih_nm=None if gap is None else float(gap[i]),
            )
        )
    out.sort(key=lambda p: -p.volume_nm3)
    return [Particle(**{**asdict(p), "id": k}) for k, p in enumerate(out, start=1)]


def boundary_faces(mask: np.ndarray, voxel_size_nm: Sequence[float], corner=(0, 0, 0)):
    """Centres (nm) of the faces between ``mask`` voxels and their non-mask neighbours, with the
    index of the mask voxel each belongs to; faces on the volume border are not boundary."""
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


def _gap_to_lih(phases, labels, box, n, h) -> np.ndarray | None:
    """Per particle (index 1..n), the smallest distance between its boundary faces and LiH's."""
    lih = phases == LIH
    lih_box = bounding_box(lih, margin=1)
    if lih_box is None:
        return None
    lih_faces, _ = boundary_faces(lih[lih_box], h, [s.start for s in lih_box])
    cu_faces, owner_vox = boundary_faces(labels > 0, h, [s.start for s in box])
    owner = labels[tuple(owner_vox.T)]
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(lih_faces).query(cu_faces, k=1)
    gap = np.full(n + 1, np.inf)
    np.minimum.at(gap, owner, dist)
    return gap
