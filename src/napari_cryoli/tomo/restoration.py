"""Missing-wedge restoration of a tomogram's coarse grey levels.

Weighted back-projection from a limited tilt range (±60°) loses every Fourier component inside
the missing wedge. For objects as large as dendrites that is more than elongation along z: each
dense object reads lower than it is and casts a negative band beside it at its own heights, so
the same phase reads at different levels from dendrite to dendrite (up to a quarter of Li's
contrast apart in one field, as much as LiH differs from Li). Matter is denser than vacuum and
lies within a support: the lost components are filled in by alternating projections
(Gerchberg-Papoulis) between "agrees with the reconstruction" and "zero outside the support, not
negative inside it". The reconstruction's own operator (project at the tilt angles, then
back-project) stands for what the microscope measured, on a copy binned to ``working_nm``; the
correction, restored minus observed, varies slowly at that scale and is added back at full
resolution.

Works on grey levels in Li units (vacuum 0, Li 1, dense positive; ``Calibration.in_li_units``).
The vacuum that calibration reads can be the negative band itself, so vacuum is re-read far from
dense matter first. What the restoration does and does not fix is in docs/segmentation.md,
"Restoring the missing wedge".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..jobs import run_job
from ..settings import setting
from .geometry import as_angles
from .projection import project
from .wbp import WBPSettings, reconstruct


@dataclass(frozen=True)
class RestorationSettings:
    """How to restore. Chosen on development phantoms (docs/segmentation.md)."""

    working_nm: float = setting(8.0, "voxel size (nm) the restoration works at",
                                minimum=1.0, maximum=64.0)
    iterations: int = setting(10, "alternating projections", minimum=1, maximum=200)
    dense_level: float = setting(0.5, "Li units above which matter seeds the support",
                                 minimum=0.05, maximum=5.0)
    margin_nm: float = setting(8.0, "how far the support reaches beyond dense matter (nm)",
                               minimum=0.0, maximum=200.0)
    far_nm: float = setting(40.0, "vacuum is re-read farther than this from dense matter (nm)",
                            minimum=0.0, maximum=500.0)
    device: str = setting("auto", "where to compute", choices=("auto", "cpu", "cuda"))


@dataclass(frozen=True)
class Restoration:
    """How to restore a tomogram of ``shape``: subtract ``vacuum_offset`` (the level of far
    vacuum) and add ``correction`` (restored minus observed, on the grid binned by ``factors``,
    interpolated to each voxel). ``support_share``: the share of the binned volume that may hold
    matter. Kept coarse so that a large tomogram is restored a few sections at a time.
    """

    correction: np.ndarray
    vacuum_offset: float
    factors: tuple[int, int, int]
    support_share: float
    shape: tuple[int, int, int]

    def sections(self, li_units: np.ndarray, z0: int = 0) -> np.ndarray:
        """Sections ``z0:z0 + len(li_units)`` of the tomogram (Li units), restored (float32)."""
        from ..segment.resample import from_blocks

        out = np.array(li_units, np.float32)
        out -= np.float32(self.vacuum_offset)
        out += from_blocks(self.correction, self.factors, self.shape, z0, z0 + len(out))
        return out


def restore_missing_wedge(
    li_units: np.ndarray,
    voxel_size_nm: float | Sequence[float],
    angles_deg: Sequence[float],
    settings: RestorationSettings = RestorationSettings(),
) -> Restoration:
    """How to restore the missing wedge of ``li_units`` (z, y, x; tilt axis along y; an array or
    a lazy volume, read a slab at a time) at coarse scale: ``Restoration.sections``.

    The binned copy's voxels are taken as cubes (their mean size where the tomogram's differ).
    A field without dense matter, or without vacuum far from it, comes back unchanged.
    """
    from scipy import ndimage

    from ..segment.calibration import bin_volume

    u = li_units if hasattr(li_units, "ndim") else np.asarray(li_units)
    if u.ndim != 3:
        raise InputError(f"a tomogram to restore must be 3D (z, y, x), not {u.ndim}D")
    angles = as_angles(angles_deg)
    if angles.size < 2:
        raise InputError("restoring the missing wedge needs the tilt series' angles (two or more)")
    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    factors = tuple(int(f) for f in np.maximum(1, np.round(settings.working_nm / h)))
    shape = tuple(int(n) for n in u.shape)
    coarse = bin_volume(u, factors)  # type: ignore[arg-type]
    if not np.all(np.isfinite(coarse)):
        raise InputError("the tomogram holds values that are not finite (NaN or infinity)")
    hc = float(np.mean(h * factors))

    dense = ndimage.gaussian_filter(coarse, 1.0, mode="nearest") > settings.dense_level
    to_dense = ndimage.distance_transform_edt(~dense) * hc
    support = to_dense <= settings.margin_nm
    far = to_dense > settings.far_nm
    vacuum = far if far.sum() >= 50 else ~support
    if not dense.any() or not vacuum.any():  # nothing to restore, or no vacuum to anchor on
        share = float(support.mean()) if dense.any() else 0.0
        return Restoration(np.zeros_like(coarse), 0.0, factors, share, shape)
    offset = float(np.median(coarse[vacuum]))
    observed = coarse - np.float32(offset)

    wbp = WBPSettings(thickness=observed.shape[0], radial_cutoff=0.5, radial_falloff=0.0,
                      device=settings.device)
    rho = np.where(support, np.maximum(observed, 0.0), 0.0).astype(np.float32)
    for _ in range(int(settings.iterations)):
        seen = run_job(reconstruct(project(rho, angles, device=settings.device), angles, wbp))
        rho = rho + (observed - seen.volume)
        rho = np.where(support, np.maximum(rho, 0.0), 0.0).astype(np.float32)

    return Restoration(rho - observed, offset, factors, float(support.mean()), shape)
