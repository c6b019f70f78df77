"""Single-axis tilt geometry with IMOD's conventions, and the sparse operators built on it.

Arrays are (z, y, x) and the tilt axis is y, so every slice perpendicular to the tilt axis (one y)
sees the same 2D geometry. A point at (x, z) of a slice, measured from the slice centre, lands in
the projection at angle θ on the detector coordinate

    u = x cos θ + z sin θ        (from the detector centre)

which is IMOD's ``tilt`` followed by ``trimvol -rx`` (see docs/tomography.md). Because the
geometry does not depend on y, projection and back-projection are one sparse matrix each, shared by
all slices: the slices become the columns of a dense matrix and one sparse-dense product does the
whole volume (MKL threads on CPU, cuSPARSE on a GPU).

All centres are geometric, (n - 1) / 2: the same as IMOD for even sizes; for an odd width or
thickness IMOD centres its output half a voxel lower (``n // 2 + 0.5``, 1-based).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    import scipy.sparse
    import torch

#: Largest number of stored entries of one sparse block (bounds the memory of the operators).
MAX_BLOCK_ENTRIES = 24_000_000


def detector_centre(n: int) -> float:
    """Centre of a tilt-series row of ``n`` pixels (0-based)."""
    return (n - 1) / 2


def volume_centre(n: int) -> float:
    """Centre of the reconstruction's x or z axis (0-based)."""
    return (n - 1) / 2


def tilt_series_angles(range_deg: float, step_deg: float) -> np.ndarray:
    """The angles (degrees) of a series from -``range_deg`` to +``range_deg`` in ``step_deg``
    steps (the last step may stop short of +``range_deg``)."""
    n = math.floor(2 * range_deg / step_deg + 1e-9)
    return -range_deg + step_deg * np.arange(n + 1)


def as_angles(angles_deg: Sequence[float] | np.ndarray, n_views: int | None = None) -> np.ndarray:
    """Tilt angles in degrees as a float64 vector, checked (finite, within ±90°, one per view)."""
    angles = np.asarray(angles_deg, dtype=np.float64).ravel()
    if angles.size == 0:
        raise InputError("no tilt angles were given")
    if n_views is not None and angles.size != n_views:
        raise InputError(
            f"the tilt series has {n_views} images but {angles.size} tilt angles were given"
        )
    if not np.all(np.isfinite(angles)):
        raise InputError("the tilt angles contain a value that is not a number")
    if np.any(np.abs(angles) > 90.0):
        raise InputError("tilt angles must lie within -90 to +90 degrees")
    return angles


def angle_weights(angles_deg: np.ndarray) -> np.ndarray:
    """Angular interval (radians) each view stands for: half the gap to each neighbour.

    End views get the gap to their only neighbour, so evenly spaced views all weigh the same
    step (π / n for n views over 180°), as in a textbook filtered back-projection; unevenly
    spaced views are weighted by the local angular density, like IMOD's default.
    """
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    if a.size == 1:
        return np.array([np.pi])
    order = np.argsort(a, kind="stable")
    s = a[order]
    gaps = np.diff(s)
    left = np.concatenate(([gaps[0]], gaps))
    right = np.concatenate((gaps, [gaps[-1]]))
    w = np.empty_like(a)
    w[order] = (left + right) / 2
    return w


def backprojection_margin(width: int, thickness: int, n_det: int, angles_deg: np.ndarray) -> int:
    """Detector pixels beyond each edge that some reconstruction voxel projects onto."""
    a = np.deg2rad(angles_deg)
    half_x = max(volume_centre(width), width - 1 - volume_centre(width))
    half_z = max(volume_centre(thickness), thickness - 1 - volume_centre(thickness))
    reach = np.max(np.abs(np.cos(a)) * half_x + np.abs(np.sin(a)) * half_z)
    return max(0, int(np.ceil(reach - (n_det - 1) / 2)) + 2)


def backprojection_blocks(width: int, thickness: int, n_views: int) -> list[tuple[int, int]]:
    """Ranges of z rows whose back-projection matrix stays under ``MAX_BLOCK_ENTRIES``."""
    rows = max(1, MAX_BLOCK_ENTRIES // (width * n_views * 2))
    return [(z0, min(thickness, z0 + rows)) for z0 in range(0, thickness, rows)]


def backprojection_matrix(
    width: int,
    z_range: tuple[int, int],
    thickness: int,
    n_det: int,
    margin: int,
    angles_deg: np.ndarray,
) -> scipy.sparse.csr_matrix:
    """Linear-interpolation back-projector for the z rows ``z_range`` of a slice.

    Rows are voxels (z, x) in C order; columns are (view, detector pixel) of rows extended by
    ``margin`` pixels on each side (see :func:`backprojection_margin`), so every voxel reads
    two neighbouring samples of every view.
    """
    import scipy.sparse

    z0, z1 = z_range
    n_views = len(angles_deg)
    n_ext = n_det + 2 * margin
    a = np.deg2rad(angles_deg)
    x = np.arange(width, dtype=np.float64) - volume_centre(width)
    z = np.arange(z0, z1, dtype=np.float64) - volume_centre(thickness)
    # u[z, x, view] in the extended row
    u = (
        x[None, :, None] * np.cos(a)[None, None, :]
        + z[:, None, None] * np.sin(a)[None, None, :]
        + (detector_centre(n_det) + margin)
    )
    i0 = np.floor(u)
    frac = (u - i0).astype(np.float32)
    i0 = i0.astype(np.int32) + (np.arange(n_views, dtype=np.int32) * n_ext)[None, None, :]
    cols = np.stack((i0, i0 + 1), axis=-1)
    vals = np.stack((1.0 - frac, frac), axis=-1)
    n_rows = (z1 - z0) * width
    per_row = n_views * 2
    indptr = np.arange(0, n_rows * per_row + 1, per_row, dtype=np.int64)
    return scipy.sparse.csr_matrix(
        (vals.ravel(), cols.ravel(), indptr), shape=(n_rows, n_views * n_ext)
    )


def projection_view_blocks(thickness: int, width: int, n_det: int, n_views: int) -> list[slice]:
    """Groups of views whose projection matrix stays under ``MAX_BLOCK_ENTRIES``."""
    views = max(1, MAX_BLOCK_ENTRIES // (n_det * max(thickness, width) * 2))
    return [slice(v, min(n_views, v + views)) for v in range(0, n_views, views)]


def projection_matrix(
    thickness: int,
    width: int,
    n_det: int,
    angles_deg: np.ndarray,
) -> scipy.sparse.csr_matrix:
    """Ray-driven projector (Joseph's method): line integrals, in voxel lengths, through a slice.

    Rows are (view, detector pixel); columns are voxels (z, x) in C order; outside the slice the
    object is zero. Each ray is sampled once per voxel row (|θ| ≤ 45°) or column (|θ| > 45°)
    with linear interpolation along that row or column, and weighted by the path length per
    step, 1/|cos θ| or 1/|sin θ|.
    """
    import scipy.sparse

    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    cos, sin = np.cos(a), np.sin(a)
    u = np.arange(n_det, dtype=np.float64) - detector_centre(n_det)
    z_c = np.arange(thickness, dtype=np.float64) - volume_centre(thickness)
    x_c = np.arange(width, dtype=np.float64) - volume_centre(width)
    rows, cols, vals = [], [], []
    for v in range(len(a)):
        row = (v * n_det + np.arange(n_det))[:, None]
        if abs(cos[v]) >= abs(sin[v]):
            # step through z rows; interpolate along x
            pos = (u[:, None] - z_c[None, :] * sin[v]) / cos[v] + volume_centre(width)
            step, n_pos = 1.0 / abs(cos[v]), width
            line = np.arange(thickness)[None, :] * width  # first voxel of each z row
            stride = 1
        else:
            pos = (u[:, None] - x_c[None, :] * cos[v]) / sin[v] + volume_centre(thickness)
            step, n_pos = 1.0 / abs(sin[v]), thickness
            line = np.arange(width)[None, :]  # first voxel of each x column
            stride = width
        i0 = np.floor(pos)
        frac = pos - i0
        i0 = i0.astype(np.int64)
        for di, w in ((0, 1.0 - frac), (1, frac)):
            i = i0 + di
            ok = (i >= 0) & (i < n_pos) & (w > 0)
            rows.append(np.broadcast_to(row, i.shape)[ok])
            cols.append((line + i * stride)[ok])
            vals.append((w * step)[ok].astype(np.float32))
    coo = scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(a) * n_det, thickness * width),
    )
    return coo.tocsr()


def to_torch_csr(m: scipy.sparse.csr_matrix, device: torch.device) -> torch.Tensor:
    """A scipy CSR matrix as a float32 torch CSR tensor (int32 indices) on ``device``."""
    import warnings

    import torch

    m.sort_indices()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int32, copy=False)),
            torch.from_numpy(m.indices.astype(np.int32, copy=False)),
            torch.from_numpy(m.data.astype(np.float32, copy=False)),
            size=m.shape,
            device=device,
            check_invariants=False,
        )
