"""Between a tomogram's grid and a model's working grid (voxel size in nm).

A model learns what Li, LiH and a 10 nm shell look like at one voxel size; a tomogram binned
differently (the study's 2.1 Å pixel binned by 4 is 0.84 nm) is brought to that size before the
network sees it, and the result is returned on the tomogram's own grid. Fine voxels are binned
first (block means, read a slab at a time, so a memory-mapped tomogram is never loaded whole),
then interpolated to the exact size; voxel centres keep their physical positions.
"""

from __future__ import annotations

import numpy as np

from .calibration import bin_volume

#: Relative difference of voxel sizes below which no resampling is done.
RESAMPLE_TOLERANCE = 0.05


def needs_resampling(voxel_size_nm, working_nm) -> bool:
    """Whether a tomogram of ``voxel_size_nm`` must be resampled to ``working_nm``."""
    if working_nm is None or voxel_size_nm is None:
        return False
    given = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    work = np.broadcast_to(np.asarray(working_nm, float), (3,))
    return bool(np.any(np.abs(given / work - 1) > RESAMPLE_TOLERANCE))


def working_shape(shape: tuple[int, ...], voxel_size_nm, working_nm) -> tuple[int, int, int]:
    """Shape of the working grid that covers the same field of view."""
    ratio = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,)) / np.broadcast_to(
        np.asarray(working_nm, float), (3,))
    return tuple(max(1, round(float(n * r))) for n, r in zip(shape, ratio))  # type: ignore[return-value]


def to_working_grid(image: np.ndarray, voxel_size_nm, working_nm) -> np.ndarray:
    """``image`` resampled to voxels of ``working_nm`` (float32, in memory).

    Integer block means first where the working voxels are at least twice as large (an
    anti-aliasing that also bounds memory), then linear interpolation to the exact size.
    """

    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    work = np.broadcast_to(np.asarray(working_nm, float), (3,))
    factors = tuple(int(max(1, np.floor(w / v))) for v, w in zip(h, work))
    binned = bin_volume(image, factors) if max(factors) > 1 else np.asarray(image, np.float32)
    hb = h * np.asarray(factors)
    out_shape = working_shape(image.shape, h, work)
    coords = [_centres(n_out, w, hb_i, n_in) for n_out, w, hb_i, n_in
              in zip(out_shape, work, hb, binned.shape)]
    return _separable_linear(binned, coords).astype(np.float32, copy=False)


def to_original_grid(values: np.ndarray, z0: int, z1: int, shape: tuple[int, ...],
                     voxel_size_nm, working_nm) -> np.ndarray:
    """Sections ``z0:z1`` of the original grid interpolated from ``values`` (channels, working
    grid), linearly: class probabilities on the working grid become probabilities per voxel."""
    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    work = np.broadcast_to(np.asarray(working_nm, float), (3,))
    coords = [_centres(n, hi, wi, m)
              for n, hi, wi, m in zip(shape, h, work, values.shape[1:])]
    coords[0] = coords[0][z0:z1]
    return np.stack([_separable_linear(np.asarray(c, np.float32), coords) for c in values])


def _centres(n_out: int, out_nm: float, in_nm: float, n_in: int) -> np.ndarray:
    """Input coordinates (in input voxels) of the centres of ``n_out`` output voxels."""
    x = (np.arange(n_out) + 0.5) * out_nm / in_nm - 0.5
    return np.clip(x, 0, n_in - 1)


def _separable_linear(a: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Linear interpolation of a 3D array at a grid of coordinates, one axis at a time."""
    out = a
    for axis, x in enumerate(coords):
        i0 = np.floor(x).astype(int)
        i1 = np.minimum(i0 + 1, out.shape[axis] - 1)
        t = (x - i0).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = len(x)
        t = t.reshape(shape)
        out = np.take(out, i0, axis=axis) * (1 - t) + np.take(out, i1, axis=axis) * t
    return out
