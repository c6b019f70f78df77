"""Dendrites: instances of the solid (Li ∪ LiH ∪ Cu) and their shape along the skeleton.

Instances are the connected components of the solid; a component whose distance map has several
well separated peaks joined by narrow necks (dendrites touching side by side) is split by a
watershed on the distance map. Shape is read along the skeleton's longest path: its length (tip
to tip), the diameter (median chord through the axis towards the nearest surface, i.e. twice the
distance map on the axis), and the widths in the x-y plane and along z (the missing wedge
stretches z, so the two differ in a tomogram while they agree in the true shape).

Everything heavy (distance maps, watershed, skeleton) runs on a grid binned to a few cells per
radius; lengths and chords are then read on the full-resolution mask, so the binning costs speed,
not accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from .phases import SOLID_LUT
from .pieces import Pieces, id_dtype, label_pieces
from .sampling import first_exit

#: Cells across a radius on the binned grid used for distance maps and skeletons.
CELLS_PER_RADIUS = 5
#: At most this many binned cells per component (bounds time and memory of the heavy steps).
MAX_CELLS = 2_000_000
#: Two distance-map peaks stay separate dendrites when the neck between them is narrower than
#: this fraction of the smaller peak.
NECK_RATIO = 0.7

#: Dendrites this far or further from the tilt axis (in-plane, degrees) get a warning. Chosen on
#: simulated tomograms: from 45 degrees a transferred model's mean |LiH share error| was 0.11-0.18
#: (0.02-0.03 at 0-30) and its mean Dice fell by 0.05-0.30 (docs/measurements.md).
ACROSS_TILT_AXIS_DEG = 45.0

#: A footprint this many times longer than wide (ratio of its second moments' roots) has a
#: direction; a rounder one has no angle to the tilt axis.
MIN_ELONGATION = 1.5

#: Reads a boolean mask (viewed as uint8) as "solid".
_MASK_LUT = np.zeros(256, dtype=bool)
_MASK_LUT[1] = True


@dataclass(frozen=True)
class Axis:
    """The main axis of a dendrite: the skeleton's longest path, extended to both tips."""

    points_nm: np.ndarray  # (m, 3) positions along the axis, tip to tip
    arc_nm: np.ndarray  # (m,) distance along the axis from the first tip

    @property
    def length_nm(self) -> float:
        return float(self.arc_nm[-1]) if len(self.arc_nm) else 0.0

    def position(self, point_nm: np.ndarray) -> float:
        """Where the nearest axis point to ``point_nm`` lies, 0 at the first tip, 1 at the last."""
        if len(self.arc_nm) < 2 or self.length_nm == 0:
            return 0.0
        a, b = self.points_nm[:-1], self.points_nm[1:]
        ab = b - a
        t = np.clip(((point_nm - a) * ab).sum(1) / np.maximum((ab**2).sum(1), 1e-12), 0, 1)
        d = np.linalg.norm(a + t[:, None] * ab - point_nm, axis=1)
        i = int(np.argmin(d))
        return float(
            (self.arc_nm[i] + t[i] * (self.arc_nm[i + 1] - self.arc_nm[i])) / self.length_nm
        )


@dataclass(frozen=True)
class Shape:
    """Size and shape of one dendrite (nm)."""

    length_nm: float
    diameter_nm: float
    width_xy_nm: float
    width_z_nm: float
    axis: Axis = field(repr=False)
    #: In-plane angle of the footprint's long axis to the tilt axis (y), 0-90 degrees.
    tilt_axis_angle_deg: float = math.nan


def instances(
    solid: np.ndarray, voxel_size_nm: Sequence[float], min_volume_nm3: float = 0.0
) -> tuple[np.ndarray, int]:
    """Dendrite ids of a boolean ``solid`` (0 outside it and on specks, 1..n) and their count n
    (:func:`dendrite_pieces` on a mask)."""
    mask = np.ascontiguousarray(solid, dtype=bool).view(np.uint8)
    found = dendrite_pieces(mask, voxel_size_nm, min_volume_nm3, lut=_MASK_LUT)
    return found.ids, found.n


def dendrite_pieces(
    labels: np.ndarray,
    voxel_size_nm: Sequence[float],
    min_volume_nm3: float = 0.0,
    *,
    box: tuple[slice, ...] | None = None,
    lut: np.ndarray = SOLID_LUT,
) -> Pieces:
    """The dendrites among the solid voxels (``lut``) of ``labels`` inside ``box``.

    Pieces under ``min_volume_nm3`` are specks: no dendrite (id 0), though their voxels still
    count in the phase volumes. A piece large enough to hold two dendrites is split where its
    distance map shows dendrites lying side by side (see the module doc).
    """
    h = np.asarray(voxel_size_nm, dtype=float)
    voxel = float(np.prod(h))
    min_voxels = max(1, int(np.ceil(min_volume_nm3 / voxel - 1e-9)))
    found = label_pieces(labels, lut, box, min_voxels)
    ids, n = found.ids, found.n
    smallest = 2 * max(64.0, min_volume_nm3 / voxel)
    next_id = n + 1
    for i, piece_box in enumerate(found.boxes(), start=1):
        if piece_box is None or np.prod([s.stop - s.start for s in piece_box]) < smallest:
            continue
        comp = ids[piece_box] == i
        if np.count_nonzero(comp) < smallest:
            continue
        parts = _split(comp, h)
        if parts is None:
            continue
        # Region 1 keeps the piece's id, the others take the next free ones.
        k = int(parts.max())
        if next_id + k - 2 > np.iinfo(ids.dtype).max:
            ids = ids.astype(id_dtype(next_id + k))
        lut_parts = np.concatenate([[0, i], np.arange(next_id, next_id + k - 1)])
        view = ids[piece_box]
        view[comp] = lut_parts.astype(ids.dtype)[parts[comp]]
        next_id += k - 1
    # Every id 1..next_id-1 is in use: watershed regions are never empty.
    return replace(found, ids=ids, n=next_id - 1)


def shape(
    mask: np.ndarray, voxel_size_nm: Sequence[float], offset: Sequence[int] = (0, 0, 0)
) -> Shape:
    """Length, diameter and widths of the dendrite ``mask`` (a crop; ``offset`` its corner).

    The crop keeps a margin of one empty voxel around the dendrite except where it meets the
    volume border: there the dendrite is taken to continue, and its axis stops at the border.
    """
    h = np.asarray(voxel_size_nm, dtype=float)
    cells = _binning(mask, h)
    coarse = _bin(mask, cells) >= 0.5
    if not coarse.any():
        coarse = _bin(mask, cells) > 0
    path = _centreline(coarse, cells * h)
    centres = _smooth_path((path + 0.5) * cells - 0.5)  # voxel coords of the cell centres
    axis, tangents = _extend_to_tips(mask, centres, h)
    diam, wxy, wz = _widths(mask, centres, tangents, h)
    origin_nm = np.asarray(offset, dtype=float) * h
    axis = Axis(axis.points_nm + origin_nm, axis.arc_nm)
    return Shape(axis.length_nm, diam, wxy, wz, axis, footprint_angle_deg(mask.any(axis=0), h))


def footprint_angle_deg(footprint: np.ndarray, voxel_size_nm: Sequence[float]) -> float:
    """In-plane angle between the long axis of a ``footprint`` (a body seen along z, (y, x))
    and the tilt axis (y), 0 to 90 degrees; NaN for a footprint less than ``MIN_ELONGATION``
    times longer than wide (a blob has no direction). ``voxel_size_nm`` is (z, y, x).

    The footprint, not the skeleton: the missing wedge smears a dendrite along z, most of all
    one across the tilt axis, and leaves its footprint as it is. The further from the tilt axis,
    the more of a dendrite's faces the wedge hides (at 90 degrees all but its sides).
    """
    y, x = np.nonzero(footprint)
    if len(y) < 3:
        return math.nan
    yx = np.stack([y * float(voxel_size_nm[1]), x * float(voxel_size_nm[2])], axis=1)
    yx -= yx.mean(axis=0)
    spread, directions = np.linalg.eigh(yx.T @ yx)  # ascending
    if spread[1] < MIN_ELONGATION**2 * max(spread[0], 1e-12):
        return math.nan
    dy, dx = directions[:, 1]
    return float(np.degrees(np.arctan2(abs(dx), abs(dy))))


class Bodies:
    """The dendrites of ``ids`` seen along the beam, joined where their footprints touch: a round
    dendrite piece takes the direction of the body it was cut from (touching dendrites split
    apart, or a dendrite across the tilt axis that the missing wedge broke into several)."""

    def __init__(self, ids: np.ndarray, voxel_size_nm: Sequence[float]) -> None:
        self._ids = ids
        self._h = voxel_size_nm
        self._angles: dict[int, float] = {}

    @cached_property
    def _regions(self) -> np.ndarray:
        from scipy import ndimage as ndi

        return ndi.label((self._ids > 0).any(axis=0), structure=np.ones((3, 3)))[0]

    def angle_under(self, mask: np.ndarray, box: tuple[slice, ...]) -> float:
        """The footprint angle of the body under ``mask`` (a crop of ``ids`` at ``box``)."""
        under = self._regions[box[1], box[2]][mask.any(axis=0)]
        region = int(np.bincount(under).argmax()) if under.size else 0
        if region and region not in self._angles:
            self._angles[region] = footprint_angle_deg(self._regions == region, self._h)
        return self._angles.get(region, math.nan)


# --- splitting touching dendrites ---------------------------------------------------------------


def _split(comp: np.ndarray, h: np.ndarray) -> np.ndarray | None:
    """Region ids (1..k, on the full-resolution crop) when ``comp`` holds several dendrites."""
    from scipy import ndimage as ndi
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    cells = _binning(comp, h)
    frac = _bin(comp, cells)
    # A void inside a dendrite (e.g. around a Cu grain whose streaks a prediction calls
    # background) is no neck between two: the distance map is taken with voids filled.
    core = ndi.binary_fill_holes(frac >= 0.5)
    if core.sum() < 8:
        return None
    cell_nm = cells * h
    dist = ndi.distance_transform_edt(core, sampling=cell_nm)
    peaks_mask = h_maxima(dist, float(cell_nm.max())) & core
    markers, k = ndi.label(peaks_mask, structure=np.ones((3, 3, 3), dtype=bool))
    if k < 2:
        return None
    regions = watershed(-dist, markers, mask=(frac > 0) | core)
    regions = _merge_wide_necks(regions, dist, k)
    if regions.max() < 2:
        return None
    return _unbin(
        regions.astype(np.uint16 if regions.max() < 2**16 else np.int32), cells, comp.shape
    )


def _merge_wide_necks(regions: np.ndarray, dist: np.ndarray, k: int) -> np.ndarray:
    """Merge watershed regions whose shared neck is wide compared to their peaks."""
    peak = np.zeros(k + 1)
    np.maximum.at(peak, regions.ravel(), dist.ravel())
    saddle: dict[tuple[int, int], float] = {}
    for axis in range(3):
        a = np.moveaxis(regions, axis, 0)
        d = np.moveaxis(dist, axis, 0)
        ra, rb, da, db = a[:-1].ravel(), a[1:].ravel(), d[:-1].ravel(), d[1:].ravel()
        edge = (ra != rb) & (ra > 0) & (rb > 0)
        lo, hi = np.minimum(ra[edge], rb[edge]), np.maximum(ra[edge], rb[edge])
        val = np.minimum(da[edge], db[edge])
        for x, y, v in zip(lo.tolist(), hi.tolist(), val.tolist()):
            if v > saddle.get((x, y), -1.0):
                saddle[(x, y)] = v
    parent = list(range(k + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (x, y), v in sorted(saddle.items(), key=lambda kv: -kv[1]):
        if v >= NECK_RATIO * min(peak[x], peak[y]):
            parent[root(y)] = root(x)
    roots = np.array([root(i) for i in range(k + 1)])
    _, compact = np.unique(roots, return_inverse=True)
    return compact[regions]  # root of 0 is 0, the smallest, so background stays 0


# --- binned grid --------------------------------------------------------------------------------


def _binning(mask: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Cells per axis: about CELLS_PER_RADIUS across the typical radius, cubic in nm."""
    volume = float(mask.sum()) * float(np.prod(h))
    area = _face_area(mask, h)
    # A cylinder's V/A is r/2; voxel faces overstate a surface's area by 1.5 on average.
    radius = 2.0 * volume / max(area / 1.5, 1e-9)
    cell = max(h.max() if radius > 3 * h.max() else h.min(), radius / CELLS_PER_RADIUS)
    cell = max(cell, (volume / MAX_CELLS) ** (1 / 3))
    cell = min(cell, max(float(np.min(np.asarray(mask.shape) * h)) / 4, h.max()))
    return np.maximum(1, np.rint(cell / h)).astype(int)


def _face_area(mask: np.ndarray, h: np.ndarray) -> float:
    """Area of the voxel faces of ``mask`` (estimated on every ``s``-th voxel of a large one)."""
    s = max(1, round((mask.size / 4e6) ** (1 / 3)))
    sub = np.pad(mask[::s, ::s, ::s].view(np.uint8), 1)
    cell = h * s
    face = (cell[1] * cell[2], cell[0] * cell[2], cell[0] * cell[1])
    return sum(float(np.count_nonzero(np.diff(sub, axis=a))) * face[a] for a in range(3))


def _bin(mask: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Fraction of each cell inside ``mask`` (partial cells at the far border are padded by
    repeating the border)."""
    pad = [(0, (-n) % c) for n, c in zip(mask.shape, cells)]
    a = np.pad(mask, pad, mode="edge") if any(p[1] for p in pad) else mask
    out = np.zeros(tuple(n // c for n, c in zip(a.shape, cells)), dtype=np.float32)
    for i in range(cells[0]):
        for j in range(cells[1]):
            for k in range(cells[2]):
                out += a[i :: cells[0], j :: cells[1], k :: cells[2]]
    return out / float(np.prod(cells))


def _unbin(coarse: np.ndarray, cells: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Each cell's value on its voxels (one copy, through a broadcast view)."""
    (a, b, c), (ca, cb, cc) = coarse.shape, cells
    view = np.broadcast_to(coarse[:, None, :, None, :, None], (a, ca, b, cb, c, cc))
    return view.reshape(a * ca, b * cb, c * cc)[tuple(slice(0, n) for n in shape)]


# --- skeleton and axis --------------------------------------------------------------------------


def _centreline(coarse: np.ndarray, cell_nm: np.ndarray) -> np.ndarray:
    """Cell indices (m, 3) along the main axis of ``coarse``: the skeleton's longest path.

    The ends are the two cells farthest apart along the body (a double sweep of geodesic
    distance); the path between them is the cheapest one when each step costs its length over
    the squared distance to the surface, so it runs along the ridge of the distance map, the
    medial axis (thinning algorithms erase bodies of even width, so none is used). Its ends,
    which reach the surface, are trimmed back to where the body is at least half as thick as
    along the path; the caller continues them straight out to the tips.
    """
    from scipy import ndimage as ndi
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, dijkstra

    # Beyond the volume border the body continues (edge padding), so the border is no surface.
    dist = ndi.distance_transform_edt(np.pad(coarse, 1, mode="edge"), sampling=cell_nm)
    dist = dist[1:-1, 1:-1, 1:-1]
    pts = np.argwhere(coarse)
    if len(pts) < 2:
        return pts
    index = np.full(coarse.shape, -1, dtype=np.int64)
    index[tuple(pts.T)] = np.arange(len(pts))
    d_pts = dist[tuple(pts.T)]
    rows, cols, lens = [], [], []
    for off in [o for o in np.ndindex(3, 3, 3) if o > (1, 1, 1)]:
        step = np.asarray(off) - 1
        nb = pts + step
        ok = np.all((nb >= 0) & (nb < coarse.shape), axis=1)
        j = np.full(len(pts), -1)
        j[ok] = index[tuple(nb[ok].T)]
        ok &= j >= 0
        rows.append(np.flatnonzero(ok))
        cols.append(j[ok])
        lens.append(np.full(int(ok.sum()), float(np.linalg.norm(step * cell_nm))))
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(lens)
    n = len(pts)
    # Work on the largest connected piece (cells of a body can touch only diagonally).
    geo = coo_matrix((w, (r, c)), shape=(n, n)).tocsr()
    n_comp, comp = connected_components(geo, directed=False)
    start = int(np.flatnonzero(comp == np.argmax(np.bincount(comp)))[0]) if n_comp > 1 else 0
    d0 = dijkstra(geo, directed=False, indices=start)
    a = int(np.argmax(np.where(np.isfinite(d0), d0, -1)))
    da = dijkstra(geo, directed=False, indices=a)
    b = int(np.argmax(np.where(np.isfinite(da), da, -1)))
    mean_d = 0.5 * (d_pts[r] + d_pts[c])
    ridge = coo_matrix((w / np.maximum(mean_d, 1e-6) ** 2, (r, c)), shape=(n, n)).tocsr()
    _, pred = dijkstra(ridge, directed=False, indices=a, return_predecessors=True)
    order = [b]
    while order[-1] != a and pred[order[-1]] >= 0:
        order.append(int(pred[order[-1]]))
    path = order[::-1]
    d_path = d_pts[path]
    thick = d_path >= 0.8 * np.median(d_path)
    keep = np.flatnonzero(thick)
    return pts[path][keep[0] : keep[-1] + 1] if keep.size else pts[path]


def _smooth_path(points: np.ndarray, half_window: int = 3) -> np.ndarray:
    """Moving average along a digital path (its zig-zag would add length); the ends are padded
    by point reflection so straight paths and their end points stay where they are."""
    m = len(points)
    k = min(half_window, m - 1)
    if k < 1:
        return points.astype(float)
    head = 2 * points[0] - points[k:0:-1]
    tail = 2 * points[-1] - points[-2 : -k - 2 : -1]
    padded = np.vstack([head, points, tail]).astype(float)
    kernel = np.ones(2 * k + 1) / (2 * k + 1)
    return np.stack([np.convolve(padded[:, a], kernel, mode="valid") for a in range(3)], axis=1)


def _extend_to_tips(
    mask: np.ndarray, centres: np.ndarray, h: np.ndarray
) -> tuple[Axis, np.ndarray]:
    """The path of cell centres (voxel coords) continued straight out to the surface at both
    ends (or to the volume border); returns the axis and the unit tangent at each centre."""
    pts_nm = centres * h
    m = len(pts_nm)
    if m == 0:
        return Axis(np.zeros((0, 3)), np.zeros(0)), np.zeros((0, 3))
    tangents = _tangents(pts_nm)
    end_reach = max(3, len(pts_nm) // 8)
    end_tangents = _tangents(pts_nm, end_reach)
    if m == 1:
        ends = [pts_nm[0]]
    else:
        ends = []
        for i, sign in ((0, -1.0), (m - 1, 1.0)):
            direction = sign * end_tangents[i]
            reach = first_exit(
                mask, centres[i : i + 1], direction[None], h, 1e9, stop_at_border=True
            )
            reach = float(reach[0]) if np.isfinite(reach[0]) else 0.0
            ends.append(pts_nm[i] + direction * reach)
    if m > 1:
        pts_nm = np.vstack([ends[0], pts_nm, ends[1]])
    seg = np.linalg.norm(np.diff(pts_nm, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    return Axis(pts_nm, arc), tangents


def _tangents(pts_nm: np.ndarray, reach: int = 3) -> np.ndarray:
    """Unit tangents along a polyline from points ``reach`` steps before and after."""
    m = len(pts_nm)
    if m < 2:
        return np.tile([0.0, 0.0, 1.0], (m, 1))
    i = np.arange(m)
    d = pts_nm[np.minimum(i + reach, m - 1)] - pts_nm[np.maximum(i - reach, 0)]
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)


def _widths(
    mask: np.ndarray, centres: np.ndarray, tangents: np.ndarray, h: np.ndarray
) -> tuple[float, float, float]:
    """Median diameter, in-plane width and z width along the axis (nm); NaN when undefined.

    Each axis point is first moved to the middle of its cross-section (chords across the axis,
    horizontally and in the most vertical direction of the cross-section, each replaced by its
    midpoint, twice). Through that centre, the diameter is the minor axis of the ellipse through
    eight chords across the axis (twice the distance map on the axis), the in-plane
    width the horizontal chord, and the z width the most vertical chord, left out where the axis
    is steeper than 60 degrees from the x-y plane. Points within half a radius of a tip, where the
    body rounds off, are left out.
    """
    if len(centres) == 0:
        return (np.nan, np.nan, np.nan)
    far = 1e9
    z = np.array([1.0, 0.0, 0.0])
    e_xy = np.cross(z, tangents)  # horizontal, across the axis
    norm = np.linalg.norm(e_xy, axis=1)
    steep = norm < np.cos(np.radians(60))
    vertical = norm < 1e-6
    e_xy[vertical] = [0.0, 0.0, 1.0]
    e_xy /= np.linalg.norm(e_xy, axis=1, keepdims=True)
    e_z = np.cross(tangents, e_xy)  # the most vertical direction across the axis
    e_z *= np.where((e_z[:, 0] < 0), -1.0, 1.0)[:, None]

    def chords(at: np.ndarray, directions: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
        """Chord lengths through ``at`` along each direction (m, 3) and the shift of ``at`` to
        the chords' midpoints, in one batch of rays (both ways along every direction)."""
        k, m = len(directions), len(at)
        e = np.concatenate(list(directions))
        reach = first_exit(mask, np.tile(at, (2 * k, 1)), np.concatenate([e, -e]), h, far)
        fwd, back = reach[: k * m].reshape(k, m), reach[k * m :].reshape(k, m)
        return (fwd + back).T, ((fwd - back) / 2).T

    mid = centres.astype(float)
    for _ in range(2):
        for e in (e_xy, e_z):
            _, shift = chords(mid, [e])
            mid = mid + np.nan_to_num(shift[:, 0])[:, None] * e / h
    angles = np.arange(8) * np.pi / 8
    through, _ = chords(mid, [np.cos(a) * e_xy + np.sin(a) * e_z for a in angles])
    # Angle 0 is the horizontal direction across the axis, angle pi/2 the most vertical one.
    w_xy, w_z = through[:, 0].copy(), through[:, 4].copy()
    w_z[steep] = np.nan
    diameter = _minor_axis(through, angles)
    pts_nm = centres * h
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts_nm, axis=0), axis=1))])
    half_r = np.nan_to_num(diameter, nan=0.0) / 4
    keep = (arc >= half_r) & (arc[-1] - arc >= half_r)
    if not keep.any():
        keep[:] = True

    def med(v: np.ndarray) -> float:
        v = v[keep]
        v = v[np.isfinite(v)]
        return float(np.median(v)) if v.size else float("nan")

    return med(diameter), med(w_xy), med(w_z)


def _minor_axis(chords: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Minor axis of the centred ellipse fitted to chords (n, k) through its centre at
    ``angles``: 4 / chord^2 = a cos^2 + 2 c cos sin + b sin^2, least squares per row."""
    cos, sin = np.cos(angles), np.sin(angles)
    design = np.stack([cos**2, 2 * cos * sin, sin**2], axis=1)
    out = np.full(len(chords), np.nan)
    ok = np.all(np.isfinite(chords) & (chords > 0), axis=1)
    if ok.any():
        y = 4.0 / chords[ok] ** 2
        coef, *_ = np.linalg.lstsq(design, y.T, rcond=None)
        a, c, b = coef
        largest = 0.5 * (a + b) + np.sqrt(0.25 * (a - b) ** 2 + c**2)
        out[ok] = 2.0 / np.sqrt(np.maximum(largest, 1e-12))
    return out
