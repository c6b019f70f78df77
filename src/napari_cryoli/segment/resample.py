"""Between a tomogram's grid and a model's working grid (voxel size in nm).

A model learns what Li, LiH and a 10 nm shell look like at one voxel size; a tomogram binned
differently (the study's 2.1 Å pixel binned by 4 is 0.84 nm) is brought to that size before the
network sees it, and the result is returned on the tomogram's own grid. Fine voxels are binned
first (block means, read a slab at a time, so a memory-mapped tomogram is never loaded whole),
then interpolated to the exact size; voxel centres keep their physical positions. Prediction
works a few sections at a time both ways (``WorkingGrid``, ``to_original_grid`` on a window of
sections), so neither grid is ever held whole.
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
    grid = WorkingGrid(image, voxel_size_nm, working_nm)
    return grid.sections(0, grid.shape[0])


class SectionsOnDemand:
    """An array-like volume (z, y, x, float32) whose sections are computed when sliced, as the
    calibration, the resampling and a sliding window read a tomogram: z-slices with step 1, or one
    section. The last z-range asked for is kept, so the tiles of one layer compute it once.
    Subclasses set ``shape`` and compute ``sections(z0, z1)``."""

    shape: tuple[int, int, int]
    dtype = np.dtype(np.float32)
    ndim = 3
    _kept: tuple[tuple[int, int], np.ndarray] | None = None

    def sections(self, z0: int, z1: int) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if isinstance(key[0], (int, np.integer)):
            z = int(key[0]) % self.shape[0]
            return self[(slice(z, z + 1), *key[1:])][0]
        z0, z1, step = key[0].indices(self.shape[0])
        if step != 1:
            raise IndexError(f"a {type(self).__name__} is sliced along z with step 1")
        if self._kept is None or self._kept[0] != (z0, z1):
            self._kept = ((z0, z1), self.sections(z0, z1))
        return self._kept[1][(slice(None), *key[1:])]


class WorkingGrid(SectionsOnDemand):
    """``image`` on the working grid: its sections resampled from the image a few at a time, as
    ``to_working_grid`` would give them. Pages of a memory-mapped image are released once read.
    """

    #: Working sections resampled at once (bounds the temporaries to a few sections).
    CHUNK = 4

    def __init__(self, image: np.ndarray, voxel_size_nm, working_nm) -> None:
        h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
        work = np.broadcast_to(np.asarray(working_nm, float), (3,))
        self.image = image
        self.factors = tuple(int(max(1, np.floor(w / v))) for v, w in zip(h, work))
        binned_shape = tuple(n // f for n, f in zip(image.shape, self.factors))
        hb = h * np.asarray(self.factors)
        self.shape = working_shape(image.shape, h, work)
        self.steps = [_linear_steps(_centres(n_out, w, hb_i, n_in), n_in)
                      for n_out, w, hb_i, n_in in zip(self.shape, work, hb, binned_shape)]

    def sections(self, z0: int, z1: int) -> np.ndarray:
        """Working sections ``z0:z1`` (float32)."""
        from .prediction import release_pages

        out = np.empty((max(0, z1 - z0), *self.shape[1:]), np.float32)
        fz = self.factors[0]
        for c0 in range(z0, z1, self.CHUNK):
            c1 = min(z1, c0 + self.CHUNK)
            zsteps, lo, hi = _window(self.steps[0], c0, c1)
            part = self.image[lo * fz : hi * fz]
            if max(self.factors) > 1:
                source = bin_volume(part, self.factors)
            else:
                source = np.asarray(part, np.float32)
            out[c0 - z0 : c1 - z0] = _separable_linear(source, [zsteps, *self.steps[1:]])
            release_pages(self.image, lo * fz, hi * fz)
        return out


def to_original_grid(values: np.ndarray, z0: int, z1: int, shape: tuple[int, ...],
                     voxel_size_nm, working_nm, first: int = 0, n_working: int | None = None
                     ) -> np.ndarray:
    """Sections ``z0:z1`` of the original grid interpolated from ``values`` (channels, working
    grid), linearly: class probabilities on the working grid become probabilities per voxel.

    ``values`` may hold only working sections ``first:`` of a grid ``n_working`` sections deep
    (default: all of them), as long as it holds those that ``z0:z1`` needs
    (``working_sections_needed``).
    """
    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    work = np.broadcast_to(np.asarray(working_nm, float), (3,))
    full = (n_working if n_working is not None else first + values.shape[1], *values.shape[2:])
    steps = [_linear_steps(_centres(n, hi, wi, m), m)
             for n, hi, wi, m in zip(shape, h, work, full)]
    i0, i1, t = steps[0]
    steps[0] = (i0[z0:z1] - first, i1[z0:z1] - first, t[z0:z1])
    return np.stack([_separable_linear(np.asarray(c, np.float32), steps) for c in values])


def from_blocks(coarse: np.ndarray, factors, shape: tuple[int, ...], z0: int = 0,
                z1: int | None = None) -> np.ndarray:
    """Sections ``z0:z1`` (default all) of block means (``bin_volume`` by ``factors``)
    interpolated linearly back onto the full ``shape``, from block centres to voxel centres;
    held constant beyond the outer centres."""
    steps = [_linear_steps(_centres(n, 1.0, float(f), m), m)
             for n, f, m in zip(shape, factors, coarse.shape)]
    steps[0] = tuple(a[z0:z1] for a in steps[0])
    return _separable_linear(np.asarray(coarse, np.float32), steps)


def working_sections_needed(z0: int, z1: int, shape: tuple[int, ...], voxel_size_nm, working_nm,
                            n_working: int) -> tuple[int, int]:
    """The working sections ``lo:hi`` that sections ``z0:z1`` of the original grid are
    interpolated from."""
    h = float(np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))[0])
    w = float(np.broadcast_to(np.asarray(working_nm, float), (3,))[0])
    _, lo, hi = _window(_linear_steps(_centres(shape[0], h, w, n_working), n_working), z0, z1)
    return lo, hi


def _centres(n_out: int, out_nm: float, in_nm: float, n_in: int) -> np.ndarray:
    """Input coordinates (in input voxels) of the centres of ``n_out`` output voxels."""
    x = (np.arange(n_out) + 0.5) * out_nm / in_nm - 0.5
    return np.clip(x, 0, n_in - 1)


def _linear_steps(x: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two input indices either side of each coordinate and the weight of the second."""
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (x - i0).astype(np.float32)


def _window(steps, z0: int, z1: int):
    """Steps ``z0:z1`` of an axis, indexed from the first input they read, and the inputs
    ``lo:hi`` they read."""
    i0, i1, t = (a[z0:z1] for a in steps)
    lo, hi = int(i0.min()), int(i1.max()) + 1
    return (i0 - lo, i1 - lo, t), lo, hi


def _separable_linear(a: np.ndarray, steps) -> np.ndarray:
    """Linear interpolation of a 3D array at a grid of coordinates, one axis at a time
    (``steps``: ``_linear_steps`` per axis)."""
    out = a
    for axis, (i0, i1, t) in enumerate(steps):
        shape = [1, 1, 1]
        shape[axis] = len(t)
        t = t.reshape(shape)
        out = np.take(out, i0, axis=axis) * (1 - t) + np.take(out, i1, axis=axis) * t
    return out
