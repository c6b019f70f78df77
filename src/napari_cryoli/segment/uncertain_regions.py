"""Where a prediction hesitates: connected regions of high uncertainty, the most worth correcting
first.

The uncertainty is the prediction's normalised entropy in [0, 1]. Voxels at or above a threshold
are grouped into face-connected regions, and regions are ranked by size × mean uncertainty (the
summed uncertainty): a large region the model is unsure of costs more Dice than a speck.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class RegionSettings:
    """How uncertain a voxel must be, how large a region must be, and how many to return."""

    threshold: float = 0.5
    min_voxels: int = 20
    max_regions: int = 50

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise InputError(f"the uncertainty threshold must be in (0, 1], not {self.threshold}")
        if int(self.min_voxels) < 1:
            raise InputError("regions need at least one voxel")
        if int(self.max_regions) < 1:
            raise InputError("ask for at least one region")


@dataclass(frozen=True)
class UncertainRegion:
    """One connected region of uncertain voxels; positions are voxel indices (z, y, x)."""

    rank: int
    n_voxels: int
    mean_uncertainty: float
    peak: tuple[int, ...]
    centroid: tuple[float, ...]
    bbox: tuple[tuple[int, int], ...]

    @property
    def score(self) -> float:
        """Size × mean uncertainty: the ranking key."""
        return self.n_voxels * self.mean_uncertainty


def uncertain_regions(
    uncertainty: np.ndarray, settings: RegionSettings = RegionSettings()
) -> tuple[UncertainRegion, ...]:
    """The connected regions of ``uncertainty >= threshold``, largest score first.

    ``peak`` is the region's most uncertain voxel: always inside the region (a centroid of a
    curved region need not be), so it is where to look and paint.
    """
    from scipy import ndimage

    values = np.asarray(uncertainty, dtype=np.float32)
    if values.ndim not in (2, 3):
        raise InputError(f"uncertainty must be a 2D or 3D array, not shape {values.shape}")
    if not np.isfinite(values).all():
        values = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=0.0)
    mask = values >= settings.threshold
    ids, n = ndimage.label(mask)
    if n == 0:
        return ()
    flat = ids.ravel()
    sizes = np.bincount(flat, minlength=n + 1)
    sums = np.bincount(flat, weights=values.ravel(), minlength=n + 1)
    sizes[0], sums[0] = 0, 0.0
    eligible = np.flatnonzero(sizes >= int(settings.min_voxels))
    if eligible.size == 0:
        return ()
    order = eligible[np.argsort(-sums[eligible], kind="stable")][: int(settings.max_regions)]
    peaks = ndimage.maximum_position(values, ids, order)
    centroids = ndimage.center_of_mass(mask, ids, order)
    boxes = ndimage.find_objects(ids)
    return tuple(
        UncertainRegion(
            rank=rank,
            n_voxels=int(sizes[i]),
            mean_uncertainty=float(sums[i] / sizes[i]),
            peak=tuple(int(p) for p in peak),
            centroid=tuple(float(c) for c in centroid),
            bbox=tuple((s.start, s.stop) for s in boxes[i - 1]),
        )
        for rank, (i, peak, centroid) in enumerate(zip(order, peaks, centroids), start=1)
    )
