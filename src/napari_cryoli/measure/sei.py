"""SEI thickness at every point of the metal surface, and its views (image, mesh).

Definition (architecture doc): at a point of the metal surface (a Li or LiH voxel next to SEI), the
thickness is the distance through the SEI, along the outward normal, to the first voxel that is
neither metal, Cu nor SEI. Measured so that it is unbiased to a small fraction of a voxel:

1. Surface points are Li/LiH voxels with a face to SEI or to the outside ("bare" when no SEI face).
   Faces on the volume border are not surface: a shape cut by the border continues through it.
2. The outward normal is the negative gradient of the solid (Li ∪ LiH ∪ Cu) smoothed by an
   isotropic Gaussian (in nm) 2.5 smallest voxels wide, so the staircase tilts it by about a
   degree and anisotropic voxels keep true directions.
3. The metal interface is the 0.5 crossing of that smoothed solid along the normal, found from the
   voxel centre with a secant step; the outer interface is the 0.5 crossing of the smoothed
   "filled" mask (metal, Cu or SEI) just past the first outside voxel met by marching along the
   normal in whole-voxel steps. Both interfaces are placed the same way (half-way between voxel
   centres on average), so the voxel grid adds no bias to their difference.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..classes import LI, SEI
from ..jobs import Job, Progress, run_job, stop_requested
from .phases import (
    FILLED_LUT,
    METAL_LUT,
    SOLID_LUT,
    check_labels,
    check_voxel_size,
    slabs,
)
from .sampling import SIGMA_VOXELS, first_exit, outward_normals, smoothed

#: Points handled at once by the stencil evaluations (bounds memory to about 100 MB a thread).
CHUNK = 50_000
#: Threads measuring chunks side by side (at most one per core).
WORKERS = 2

_NEIGHBOURS = ((0, -1), (0, 1), (1, -1), (1, 1), (2, -1), (2, 1))


@dataclass(frozen=True)
class SurfaceThickness:
    """The metal surface as points, each with its SEI thickness and where and how it faces.

    Arrays have one row per metal-surface voxel (Li or LiH with a face to SEI or outside).
    ``thickness_nm`` is NaN where nothing was measured: bare metal (no SEI face) or a ray that
    left the volume or exceeded the maximum thickness before reaching the outside.
    """

    points_zyx: np.ndarray  # (n, 3) int: voxel indices of the surface voxels
    points_nm: np.ndarray  # (n, 3) float: the metal interface point on the normal, in nm
    normals: np.ndarray  # (n, 3) float: unit outward normal (z, y, x) in physical space
    thickness_nm: np.ndarray  # (n,) float: SEI thickness along the normal, NaN where unmeasured
    phase: np.ndarray  # (n,) uint8: LI or LIH
    covered: np.ndarray  # (n,) bool: the voxel has a face to SEI
    area_nm2: np.ndarray  # (n,) float: metal surface area the point stands for
    normal_tilt_deg: np.ndarray  # (n,) float: angle of the normal to the x-y plane (0 = in plane)
    dendrite: np.ndarray  # (n,) int: dendrite id (0 where no dendrite map was given)
    voxel_size_nm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return int(self.thickness_nm.shape[0])

    @property
    def measured(self) -> np.ndarray:
        """Points with a thickness value."""
        return np.isfinite(self.thickness_nm)

    @property
    def normal_angle_to_z_deg(self) -> np.ndarray:
        """Angle of each normal to the z axis (the beam): 90 minus ``normal_tilt_deg``."""
        return 90.0 - self.normal_tilt_deg

    @property
    def edge_on_tilt_deg(self) -> np.ndarray:
        """The tilt about y at which the beam runs along each point's face, atan(|n_z| / |n_x|).
        A tilt series that reaches it sees the face edge-on and draws it sharp; a face past the
        tilt range lies in the missing wedge. Along the tilt axis this is the normal's angle to
        the x-y plane; across it, every face but the sides needs 90 degrees."""
        n = self.normals
        return np.degrees(np.arctan2(np.abs(n[:, 0]), np.abs(n[:, 2])))

    def trusted(self, max_tilt_deg: float = 60.0) -> np.ndarray:
        """Points whose face a tilt series to ±``max_tilt_deg`` about y sees edge-on: outside
        the missing wedge, which smears the rest."""
        return self.edge_on_tilt_deg <= max_tilt_deg

    def select(self, keep: np.ndarray) -> SurfaceThickness:
        """The same surface restricted to the points where ``keep`` is true."""
        arrays = {
            name: getattr(self, name)[keep]
            for name in (
                "points_zyx",
                "points_nm",
                "normals",
                "thickness_nm",
                "phase",
                "covered",
                "area_nm2",
                "normal_tilt_deg",
                "dendrite",
            )
        }
        return SurfaceThickness(**arrays, voxel_size_nm=self.voxel_size_nm, notes=self.notes)


def sei_thickness(
    labels: np.ndarray,
    voxel_size_nm: float | Sequence[float],
    *,
    dendrites: np.ndarray | None = None,
    max_thickness_nm: float = 250.0,
) -> SurfaceThickness:
    """SEI thickness at every metal-surface point of ``labels`` (see the module doc).

    ``dendrites`` (ids like ``labels``' shape) names the dendrite of each point (``dendrite``);
    without it every point has dendrite 0.
    """
    return run_job(
        thickness_job(
            labels, voxel_size_nm, dendrites=dendrites, max_thickness_nm=max_thickness_nm
        )
    )


def thickness_job(
    labels: np.ndarray,
    voxel_size_nm: float | Sequence[float],
    *,
    dendrites: np.ndarray | None = None,
    max_thickness_nm: float = 250.0,
    stop: threading.Event | None = None,
) -> Job[SurfaceThickness | None]:
    """:func:`sei_thickness` as a job: yields progress per chunk of points; ``None`` if stopped."""
    labels = check_labels(labels)
    names = None
    if dendrites is not None:
        ids = np.asarray(dendrites)
        everywhere = tuple(slice(0, n) for n in labels.shape)
        names = (ids, everywhere)
    return surface_job(
        labels,
        check_voxel_size(voxel_size_nm),
        names=names,
        max_thickness_nm=max_thickness_nm,
        stop=stop,
    )


def surface_job(
    labels: np.ndarray,
    voxel_size_nm: tuple[float, float, float],
    *,
    names: tuple[np.ndarray, tuple[slice, ...]] | None = None,
    only_named: bool = False,
    max_thickness_nm: float = 250.0,
    stop: threading.Event | None = None,
) -> Job[SurfaceThickness | None]:
    """:func:`thickness_job` on checked inputs (what the report job holds).

    ``names`` is a dendrite id map and the box of ``labels`` it covers; with ``only_named`` only
    the surface of named voxels (id > 0) is measured, and only that box is read.
    """
    h = np.asarray(voxel_size_nm, dtype=float)
    box = names[1] if names is not None and only_named else None
    coords, covered, faces, dendrite = surface_voxels(labels, names, only_named=only_named)
    n = coords.shape[0]
    normals = outward_normals(labels, coords, h, lut=SOLID_LUT, box=box)
    out = _empty_columns(n)
    chunks = [slice(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]

    def work(sl: slice) -> None:
        _measure_chunk(
            labels,
            coords[sl],
            normals[sl],
            covered[sl],
            faces[sl],
            h,
            max_thickness_nm,
            out,
            sl,
        )

    # Chunks write disjoint rows and numpy releases the GIL in the heavy steps: one thread per
    # core, a batch at a time so a stop request is seen between batches. One chunk needs no pool.
    workers = max(1, min(WORKERS, os.cpu_count() or 1, len(chunks)))
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for b in range(0, len(chunks), workers):
            if stop_requested(stop):
                return None
            batch = chunks[b : b + workers]
            list(pool.map(work, batch) if pool is not None else map(work, batch))
            yield Progress(
                min(b + workers, len(chunks)),
                len(chunks),
                f"SEI thickness: {batch[-1].stop}/{n} surface points",
            )
    finally:
        if pool is not None:
            pool.shutdown()
    notes = []
    if n == 0:
        notes.append("no metal surface (no Li or LiH voxels next to SEI or outside)")
    elif not covered.any():
        notes.append("no SEI on the metal surface")
    unresolved = int((covered & ~np.isfinite(out["thickness_nm"])).sum())
    if unresolved:
        notes.append(
            f"{unresolved} SEI-covered points have no thickness: their normal left the volume or "
            f"ran past {max_thickness_nm:g} nm of SEI"
        )
    return SurfaceThickness(
        points_zyx=coords,
        points_nm=out["points_nm"],
        normals=out["normals"],
        thickness_nm=out["thickness_nm"],
        phase=labels.reshape(-1)[np.ravel_multi_index(tuple(coords.T), labels.shape)]
        if n
        else np.zeros(0, dtype=np.uint8),
        covered=covered,
        area_nm2=out["area_nm2"],
        normal_tilt_deg=out["normal_tilt_deg"],
        dendrite=dendrite,
        voxel_size_nm=tuple(float(v) for v in h),
        notes=tuple(notes),
    )


def surface_voxels(
    labels: np.ndarray,
    names: tuple[np.ndarray, tuple[slice, ...]] | None = None,
    *,
    only_named: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Li/LiH voxels of ``labels`` with a face to a non-solid voxel, found slab by slab.

    Returns coords (n, 3) int64, covered (n,) (a face to SEI), faces (n, 3) uint8 (exposed
    faces per axis, 0-2, which weigh the point's area) and the dendrite id of each point from
    ``names`` (an id map and the box it covers; 0 without). Neighbours beyond the volume border
    count as solid. With ``only_named``, only voxels with a dendrite id are surface.
    """
    shape = labels.shape
    box = names[1] if names is not None else tuple(slice(0, n) for n in shape)
    if only_named:
        read_box = box
    else:
        read_box = tuple(slice(0, n) for n in shape)
    corner = np.array([s.start for s in read_box])
    extent = [s.stop - s.start for s in read_box]
    found: list[tuple[np.ndarray, ...]] = []
    for z0, z1 in slabs(extent):
        core = [slice(corner[0] + z0, corner[0] + z1), read_box[1], read_box[2]]
        sub, inner = _with_halo(labels, core)
        metal = METAL_LUT[sub[inner]]
        if names is not None:
            named = _names_in(names, core)
            metal &= named > 0
        if not metal.any():
            continue
        solid = SOLID_LUT[sub]
        faces = np.zeros((3, *metal.shape), dtype=np.uint8)
        covered = np.zeros(metal.shape, dtype=bool)
        for axis, side in _NEIGHBOURS:
            there = list(inner)
            there[axis] = slice(inner[axis].start + side, inner[axis].stop + side)
            there = tuple(there)
            faces[axis] += ~solid[there]
            covered |= sub[there] == SEI
        exposed = metal & (faces.any(axis=0))
        idx = np.nonzero(exposed)
        coords = np.stack(idx, axis=1).astype(np.int64) + [s.start for s in core]
        dendrite = named[idx].astype(np.int32) if names is not None else np.zeros(len(coords), np.int32)
        found.append((coords, covered[idx], faces[(slice(None), *idx)].T, dendrite))
    if not found:
        return (
            np.zeros((0, 3), dtype=np.int64),
            np.zeros(0, dtype=bool),
            np.zeros((0, 3), dtype=np.uint8),
            np.zeros(0, dtype=np.int32),
        )
    return tuple(np.concatenate(parts) for parts in zip(*found))


def _with_halo(labels: np.ndarray, core: Sequence[slice]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """``labels`` over ``core`` with one voxel more on every side (Li beyond the volume border,
    so a face there is no surface), and where ``core`` lies in it."""
    lo = [max(s.start - 1, 0) for s in core]
    hi = [min(s.stop + 1, n) for s, n in zip(core, labels.shape)]
    sub = labels[tuple(slice(a, b) for a, b in zip(lo, hi))]
    pad = [(1 - (s.start - a), 1 - (b - s.stop)) for s, a, b in zip(core, lo, hi)]
    if any(p != (0, 0) for p in pad):
        sub = np.pad(sub, pad, constant_values=LI)
    return sub, tuple(slice(1, n - 1) for n in sub.shape)


def _names_in(names: tuple[np.ndarray, tuple[slice, ...]], where: Sequence[slice]) -> np.ndarray:
    """The id map of ``names`` over ``where`` (0 outside the box it covers)."""
    ids, box = names
    out = np.zeros([s.stop - s.start for s in where], dtype=ids.dtype)
    lo = [max(w.start, b.start) for w, b in zip(where, box)]
    hi = [min(w.stop, b.stop) for w, b in zip(where, box)]
    if all(a < b for a, b in zip(lo, hi)):
        out[tuple(slice(a - w.start, b - w.start) for a, b, w in zip(lo, hi, where))] = ids[
            tuple(slice(a - bx.start, b - bx.start) for a, b, bx in zip(lo, hi, box))
        ]
    return out


def _empty_columns(n: int) -> dict[str, np.ndarray]:
    return {
        "points_nm": np.zeros((n, 3)),
        "normals": np.zeros((n, 3)),
        "thickness_nm": np.full(n, np.nan),
        "area_nm2": np.zeros(n),
        "normal_tilt_deg": np.zeros(n),
    }


def _measure_chunk(
    labels: np.ndarray,
    coords: np.ndarray,
    normals: np.ndarray,
    covered: np.ndarray,
    faces: np.ndarray,
    h: np.ndarray,
    max_thickness_nm: float,
    out: dict[str, np.ndarray],
    sl: slice,
) -> None:
    """Interface points, areas and thickness for one chunk of surface voxels, into ``out[sl]``."""
    p = coords.astype(np.float64)
    f0 = smoothed(labels, p, lut=SOLID_LUT)
    sigma_n = np.sqrt(((normals * h * SIGMA_VOXELS) ** 2).sum(axis=1))

    # Metal interface: the 0.5 crossing of the smoothed solid, one secant step from the centre.
    s_metal = _crossing(labels, SOLID_LUT, p, normals, h, sigma_n, np.zeros(len(p)), f0)
    lim = np.abs(normals * h).max(axis=1)
    s_metal = np.clip(s_metal, -lim, lim)

    thickness = np.full(len(p), np.nan)
    idx = np.flatnonzero(covered)
    if idx.size:
        # Whole-voxel steps find the outside voxel; the smoothed field then places the interface.
        first_out = first_exit(
            labels, p[idx], normals[idx], h, max_thickness_nm, step_voxels=1.0, lut=FILLED_LUT
        )
        hit = np.isfinite(first_out)
        j = idx[hit]
        guess = first_out[hit]
        f_guess = smoothed(
            labels, p[j] + guess[:, None] * normals[j] / h, support=4, lut=FILLED_LUT
        )
        s_out = _crossing(labels, FILLED_LUT, p[j], normals[j], h, sigma_n[j], guess, f_guess)
        thickness[j] = np.maximum(s_out - s_metal[j], 0.0)

    # Each exposed face stands for its area projected onto the interface plane.
    face_area = np.array([h[1] * h[2], h[0] * h[2], h[0] * h[1]])
    area = (faces * face_area * np.abs(normals)).sum(axis=1)

    out["normals"][sl] = normals
    out["points_nm"][sl] = (p + s_metal[:, None] * normals / h) * h
    out["thickness_nm"][sl] = thickness
    out["area_nm2"][sl] = area
    out["normal_tilt_deg"][sl] = np.degrees(np.arcsin(np.clip(np.abs(normals[:, 0]), 0, 1)))


def _crossing(
    mask: np.ndarray,
    lut: np.ndarray,
    p: np.ndarray,
    normals: np.ndarray,
    h: np.ndarray,
    sigma_n: np.ndarray,
    s0: np.ndarray,
    f0: np.ndarray,
) -> np.ndarray:
    """Distance along each normal (nm, from ``p``) where the smoothed ``lut[mask]`` crosses 0.5.

    Starts from ``s0`` where the field is ``f0``; a Newton step on the planar profile
    Phi(s / sigma_n) gives a second sample, and the secant through both in probit space (where
    that profile is a straight line) lands on the crossing.
    """
    from scipy.special import ndtri

    g0 = ndtri(np.clip(f0, 1e-3, 1 - 1e-3))
    s1 = s0 + sigma_n * g0
    f1 = smoothed(mask, p + s1[:, None] * normals / h, support=4, lut=lut)
    g1 = ndtri(np.clip(f1, 1e-3, 1 - 1e-3))
    dg = g0 - g1
    good = np.abs(dg) > 1e-6
    s = s1.copy()
    s[good] = s0[good] + (s1[good] - s0[good]) * g0[good] / dg[good]
    # Far from the crossing the probit saturates; keep the Newton estimate, bounded.
    return np.where(np.abs(s - s1) < 2 * sigma_n + 1e-9, s, s1)


def thickness_image(labels: np.ndarray, st: SurfaceThickness) -> np.ndarray:
    """A float32 volume like ``labels``: the SEI thickness (nm) at each measured surface voxel,
    NaN everywhere else (for an Image layer over the segmentation)."""
    image = np.full(np.shape(labels), np.nan, dtype=np.float32)
    ok = st.measured
    image[tuple(st.points_zyx[ok].T)] = st.thickness_nm[ok]
    return image


def thickness_mesh(
    labels: np.ndarray,
    st: SurfaceThickness,
    voxel_size_nm: float | Sequence[float],
    *,
    step: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The metal surface as a mesh coloured by SEI thickness, for a napari Surface layer.

    Marching cubes of Li ∪ LiH ∪ Cu at 0.5 (vertices in voxel units: the layer's ``scale`` gives
    nm; ``step`` > 1 makes a coarser mesh of a large volume). Each vertex takes the thickness of
    the nearest measured surface point within two voxels; bare metal, Cu and unmeasured places
    read 0 nm (no SEI there). The volume border leaves the mesh open: cut faces are no surface.
    """
    from scipy.spatial import cKDTree
    from skimage.measure import marching_cubes

    h = np.asarray(check_voxel_size(voxel_size_nm))
    solid = SOLID_LUT[check_labels(labels)]
    if not solid.any() or solid.all():
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32), np.zeros(0, np.float32)
    verts, faces, _, _ = marching_cubes(
        solid.astype(np.float32), 0.5, step_size=step, allow_degenerate=False
    )
    values = np.zeros(len(verts), dtype=np.float32)
    ok = st.measured
    if ok.any():
        tree = cKDTree(st.points_nm[ok])
        dist, nearest = tree.query(verts * h, k=1, distance_upper_bound=2.0 * h.max())
        hit = np.isfinite(dist)
        values[hit] = st.thickness_nm[ok][nearest[hit]]
    return verts.astype(np.float32), faces.astype(np.int32), values
