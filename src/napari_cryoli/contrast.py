"""Display helpers for noisy tomograms: percentile contrast and a lazy Gaussian-smoothed view.

Both work on memory-mapped volumes of any size: contrast limits come from a strided sample, and
the smoothed view is a dask array computed only for the slices napari shows.
"""

from __future__ import annotations

import numpy as np


def sample_voxels(data: np.ndarray, max_voxels: int = 2_000_000) -> np.ndarray:
    """A strided sample of ``data`` with at most about ``max_voxels`` voxels (a view when possible)."""
    n = int(np.prod(data.shape))
    if n <= max_voxels:
        return np.asarray(data)
    step = int(np.ceil((n / max_voxels) ** (1 / data.ndim)))
    return np.asarray(data[tuple(slice(None, None, step) for _ in data.shape)])


def percentile_limits(
    data: np.ndarray, low: float = 0.5, high: float = 99.5
) -> tuple[float, float]:
    """Contrast limits at the given percentiles of the finite voxels (from a sample)."""
    values = sample_voxels(data).astype(np.float32, copy=False)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [low, high])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def smoothed_view(data: np.ndarray, sigma_voxels: float | tuple[float, ...]):
    """A lazy (dask) Gaussian-smoothed float32 copy of ``data``, one z-slab per chunk."""
    import dask.array as da
    from scipy import ndimage

    sigma = np.broadcast_to(np.asarray(sigma_voxels, dtype=float), (data.ndim,))
    depth = tuple(int(np.ceil(4 * s)) for s in sigma)
    chunks = (1, *data.shape[1:]) if data.ndim == 3 else data.shape
    source = da.from_array(data, chunks=chunks)

    def smooth(block: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(block.astype(np.float32), sigma, mode="nearest")

    return source.map_overlap(
        smooth, depth=depth, boundary="nearest", dtype=np.float32, trim=True
    )
