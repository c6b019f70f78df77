"""Sub-voxel reading of a binary mask: Gaussian interpolation and its gradient at any point.

A segmentation only says on which side of an interface each voxel centre lies. Smoothing the mask
with a Gaussian of about one voxel turns it into a field whose 0.5 level is the interface, placed
half-way between the last voxel inside and the first outside along the grid axes and unbiased on
average at any orientation (the lattice average of the smoothed mask is the smoothed true shape).
The field is evaluated only where needed, from a small stencil around each point, so a measurement
never filters a whole tomogram. Every reader takes a mask either as a boolean array or as a uint8
label volume with a lookup table (``lut``, 256 entries) saying which ids are inside, so the label
volume itself (memory-mapped or not) is read and no mask of its size is made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .phases import SLAB_VOXELS

#: Gaussian width in voxels: wide enough to hide the staircase, narrow enough to stay local.
SIGMA_VOXELS = 0.7

#: Width (in units of the smallest voxel size) of the isotropic Gaussian behind surface normals.
NORMAL_SIGMA = 2.5


def smoothed(
    mask: np.ndarray,
    points: np.ndarray,
    *,
    support: int = 5,
    sigma: float = SIGMA_VOXELS,
    lut: np.ndarray | None = None,
) -> np.ndarray:
    """The Gaussian-smoothed ``mask`` (or ``lut[mask]``) at ``points`` (n, 3) in voxel
    coordinates.

    ``support`` lattice points per axis around each point enter the (normalised) weights; indices
    beyond the array repeat the border voxel, so a shape cut by the volume border continues
    straight through it and its border face is not an interface.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = pts.shape[0]
    shape = np.asarray(mask.shape)
    flat = mask.reshape(-1)
    if support % 2:
        base = np.rint(pts).astype(np.int64) - support // 2
    else:
        base = np.floor(pts).astype(np.int64) - (support // 2 - 1)
    taps = np.arange(support)
    offs = base[:, :, None] + taps  # (n, 3, support) lattice indices
    d = (offs - pts[:, :, None]).astype(np.float32)
    w = np.exp(-0.5 * (d / np.float32(sigma)) ** 2)
    itype = np.int32 if flat.size < 2**31 else np.int64
    strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=itype)
    lin = np.empty((n, support, support, support), dtype=itype)
    # Away from the border a stencil is one base index plus a fixed table of offsets.
    inner = np.all((base >= 0) & (base + support <= shape), axis=1)
    table = (
        taps[:, None, None] * strides[0] + taps[None, :, None] * strides[1] + taps[None, None, :]
    ).astype(itype)
    lin[inner] = (base[inner].astype(itype) @ strides)[:, None, None, None] + table
    if not inner.all():
        idx = np.clip(offs[~inner], 0, (shape - 1)[None, :, None]).astype(itype)
        lin[~inner] = (
            (idx[:, 0, :] * strides[0])[:, :, None, None]
            + (idx[:, 1, :] * strides[1])[:, None, :, None]
            + idx[:, 2, :][:, None, None, :]
        )
    vals = (
        flat[lin].astype(np.float32) if lut is None else lut.astype(np.float32)[flat[lin]]
    )  # (n, s, s, s)
    wz, wy, wx = (w[:, a, :] for a in range(3))
    vx = np.einsum("nijk,nk->nij", vals, wx)
    vxy = np.einsum("nij,nj->ni", vx, wy)
    num = np.einsum("ni,ni->n", vxy, wz)
    return num / (wz.sum(axis=1) * wy.sum(axis=1) * wx.sum(axis=1))


def outward_normals(
    solid: np.ndarray,
    points: np.ndarray,
    voxel_size_nm: np.ndarray,
    *,
    lut: np.ndarray | None = None,
    box: Sequence[slice] | None = None,
    slab_voxels: int = SLAB_VOXELS,
) -> np.ndarray:
    """Unit outward normals (z, y, x, in physical space) of ``solid`` at ``points`` (voxel coords).

    The negative gradient of the solid smoothed by an isotropic Gaussian of ``NORMAL_SIGMA``
    smallest voxels: wide enough that the voxel staircase tilts normals by about a degree (a
    thick shell measured along a tilted normal reads long by ``t (1 / cos(tilt) - 1)``), and
    isotropic in nm so curved surfaces seen through anisotropic voxels keep radial normals. The
    smoothing runs on a grid binned to roughly cubic cells of twice the smallest voxel size (the
    bin average is the anti-aliasing), and the gradient is interpolated at the points. Points
    where the gradient vanishes get a zero vector.

    With ``lut``, ``solid`` is a label volume and ``lut`` says which ids are solid. Only ``box``
    is read (beyond it there must be no solid within two voxels), in slabs of about
    ``slab_voxels`` voxels, each filtered with a margin as wide as the filter reaches, so the
    result is the same as filtering the whole grid at once.
    """
    from scipy import ndimage as ndi

    h = np.asarray(voxel_size_nm, dtype=float)
    pts = np.asarray(points, dtype=float)
    grad = np.zeros((len(pts), 3))
    if not len(pts):
        return grad
    if lut is None:
        solid, lut = np.asarray(solid).view(np.uint8), _BOOL_LUT
    shape = np.asarray(solid.shape)
    if box is None:
        box = tuple(slice(0, int(n)) for n in shape)
    cell = 2.0 * h.min()
    b = np.maximum(1, np.rint(cell / h)).astype(int)
    lo = np.array([s.start for s in box]) // b
    hi = -(-np.array([s.stop for s in box]) // b)
    sigma = NORMAL_SIGMA * h.min() / (b * h)
    # Cells beyond a slab that its gradients depend on: the filter's reach (scipy's radius for
    # truncate=3), one for the central difference, one for the interpolation.
    reach = int(3.0 * sigma[0] + 0.5) + 2
    where = (pts + 0.5) / b - 0.5
    slab_of = np.clip(np.floor(where[:, 0]).astype(np.int64), lo[0], hi[0] - 1)
    per_plane = int(np.prod(hi[1:] - lo[1:])) * int(np.prod(b))
    step = max(1, slab_voxels // max(per_plane, 1))
    for c0 in range(int(lo[0]), int(hi[0]), step):
        c1 = min(c0 + step, int(hi[0]))
        sel = np.flatnonzero((slab_of >= c0) & (slab_of < c1))
        if not sel.size:
            continue
        g0, g1 = max(int(lo[0]), c0 - reach), min(int(hi[0]), c1 + reach)
        cells = (g0, lo[1], lo[2]), (g1, hi[1], hi[2])
        field = _binned(solid, lut, b, cells, shape)
        ndi.gaussian_filter(field, sigma, mode="nearest", truncate=3.0, output=field)
        local = (where[sel] - np.array(cells[0])).T
        for axis in range(3):
            if hi[axis] - lo[axis] > 1:  # a volume one cell thick has no slope along that axis
                g = np.gradient(field, axis=axis)
                grad[sel, axis] = ndi.map_coordinates(g, local, order=1, mode="nearest")
    grad /= b * h
    norm = np.linalg.norm(grad, axis=1, keepdims=True)
    return np.where(norm > 0, -grad / np.where(norm > 0, norm, 1.0), 0.0)


#: Reads a boolean mask (viewed as uint8) as it is.
_BOOL_LUT = np.zeros(256, dtype=bool)
_BOOL_LUT[1] = True


def _binned(
    labels: np.ndarray,
    lut: np.ndarray,
    b: np.ndarray,
    cells: tuple[Sequence[int], Sequence[int]],
    shape: np.ndarray,
) -> np.ndarray:
    """Count of ``lut``-marked voxels in each cell of ``b`` voxels, for the cells from
    ``cells[0]`` to ``cells[1]`` (partial cells at the far border repeat the border voxel)."""
    start = np.asarray(cells[0]) * b
    stop = np.asarray(cells[1]) * b
    sub = labels[tuple(slice(int(a), int(min(z, n))) for a, z, n in zip(start, stop, shape))]
    pad = [(0, int(z - a - m)) for a, z, m in zip(start, stop, sub.shape)]
    if any(p[1] for p in pad):
        sub = np.pad(sub, pad, mode="edge")
    values = lut.astype(np.float32)
    out = np.zeros(tuple(int(n) for n in (np.asarray(cells[1]) - cells[0])), dtype=np.float32)
    for i in range(b[0]):
        for j in range(b[1]):
            for k in range(b[2]):
                out += values[sub[i :: b[0], j :: b[1], k :: b[2]]]
    return out


def first_exit(
    mask: np.ndarray,
    points: np.ndarray,
    directions: np.ndarray,
    voxel_size_nm: np.ndarray,
    max_nm: float,
    *,
    stop_at_border: bool = False,
    step_voxels: float = 0.5,
    lut: np.ndarray | None = None,
) -> np.ndarray:
    """Distance (nm) along each direction from ``points`` (voxel coords) to where it leaves
    ``mask``: half-way between the last sample inside and the first sample in a voxel outside,
    sampling every ``step_voxels`` of the smallest voxel size.

    A ray that passes ``max_nm`` gives NaN; one that leaves the volume first gives NaN, or with
    ``stop_at_border`` the distance to the border (half-way past its last sample inside).
    With ``lut``, ``mask`` is a label volume and ``lut`` (256 bools) says which ids are inside.
    """
    h = np.asarray(voxel_size_nm, dtype=float)
    step = step_voxels * h.min()
    shape = np.asarray(mask.shape)
    flat = mask.reshape(-1)
    s0, s1 = int(shape[1] * shape[2]), int(shape[2])
    # Rounding p + 0.5 down is rounding p; shifting by half a voxel lets a cast do it.
    pos = np.asarray(points, dtype=np.float64) + 0.5
    dstep = np.asarray(directions, dtype=np.float64) * (step / h)
    result = np.full(len(pos), np.nan)
    index = np.arange(len(pos))
    k = 0
    while index.size and k * step <= max_nm:
        k += 1
        pos += dstep
        iz, iy, ix = (pos[:, a].astype(np.int64) for a in range(3))
        inside = (
            (pos[:, 0] >= 0)
            & (iz < shape[0])
            & (pos[:, 1] >= 0)
            & (iy < shape[1])
            & (pos[:, 2] >= 0)
            & (ix < shape[2])
        )
        lin = np.where(inside, iz * s0 + iy * s1 + ix, 0)
        hit = inside & ~(flat[lin] if lut is None else lut[flat[lin]])
        result[index[hit]] = (k - 0.5) * step
        if stop_at_border:
            result[index[~inside]] = (k - 0.5) * step
        done = hit | ~inside
        if done.any():
            keep = ~done
            pos, dstep, index = pos[keep], dstep[keep], index[keep]
    return result
