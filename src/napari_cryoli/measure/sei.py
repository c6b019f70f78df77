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
    check_voxel_size,
    neighbour_slices,
    phase_array,
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

    def trusted(self, max_tilt_deg: float = 60.0) -> np.ndarray:
        """Points whose normal lies within ``max_tilt_deg`` of the x-y plane (not blurred by the
        missing wedge, which smears faces seen along the beam)."""
        return self.normal_tilt_deg <= max_tilt_deg

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
    """SEI thickness at every metal-surface point of ``labels`` (see the module doc)."""
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
    return surface_job(
        phase_array(labels),
        check_voxel_size(voxel_size_nm),
        dendrites=dendrites,
        max_thickness_nm=max_thickness_nm,
        stop=stop,
    )


def surface_job(
    phases: np.ndarray,
    voxel_size_nm: tuple[float, float, float],
    *,
    dendrites: np.ndarray | None = None,
    max_thickness_nm: float = 250.0,
    stop: threading.Event | None = None,
) -> Job[SurfaceThickness | None]:
    """:func:`thickness_job` on a volume already mapped by ``phase_array``, with a checked voxel
    size (what the report job holds)."""
    h = np.asarray(voxel_size_nm, dtype=float)
    solid = SOLID_LUT[phases]
    filled = FILLED_LUT[phases]
    coords, covered, faces = surface_voxels(phases, solid)
    n = coords.shape[0]
    normals = outward_normals(solid, coords, h) if n else np.zeros((0, 3))
    out = _empty_columns(n)
    chunks = [slice(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]

    def work(sl: slice) -> None:
        _measure_chunk(
            solid,
            filled,
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
    # core, a batch at a time so a stop request is seen between batches.
    workers = max(1, min(WORKERS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for b in range(0, len(chunks), workers):
            if stop_requested(stop):
                return None
            list(pool.map(work, chunks[b : b + workers]))
            done = chunks[min(b + workers, len(chunks)) - 1].stop
            yield Progress(
                min(b + workers, len(chunks)),
                len(chunks),
                f"SEI thickness: {done}/{n} surface points",
            )
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
    dendrite = (
        np.zeros(n, dtype=np.int32)
        if dendrites is None
        else np.asarray(dendrites)[tuple(coords.T)].astype(np.int32)
    )
    return SurfaceThickness(
        points_zyx=coords,
        points_nm=out["points_nm"],
        normals=out["normals"],
        thickness_nm=out["thickness_nm"],
        phase=phases[tuple(coords.T)],
        covered=covered,
        area_nm2=out["area_nm2"],
        normal_tilt_deg=out["normal_tilt_deg"],
        dendrite=dendrite,
        voxel_size_nm=tuple(float(v) for v in h),
        notes=tuple(notes),
    )


def surface_voxels(
    phases: np.ndarray, solid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Li/LiH voxels with a face to a non-solid voxel: (coords (n, 3), covered (n,), faces (n, 3)).

    ``covered`` says the voxel has a face to SEI; ``faces`` counts its exposed faces per axis
    (0, 1 or 2), which weigh its area. Neighbours beyond the volume border count as solid.
    """
    metal = METAL_LUT[phases]
    exposed = np.zeros_like(metal)
    for axis, side in _NEIGHBOURS:
        here, there = neighbour_slices(axis, side)
        exposed[here] |= ~solid[there]
    exposed &= metal
    coords = np.argwhere(exposed)
    covered = np.zeros(coords.shape[0], dtype=bool)
    faces = np.zeros((coords.shape[0], 3), dtype=np.uint8)
    shape = np.asarray(phases.shape)
    for axis, side in _NEIGHBOURS:
        nb = coords.copy()
        nb[:, axis] += side
        inside = (nb[:, axis] >= 0) & (nb[:, axis] < shape[axis])
        nb_phase = np.full(coords.shape[0], LI, dtype=np.uint8)
        nb_phase[inside] = phases[tuple(nb[inside].T)]
        covered |= nb_phase == SEI
        faces[:, axis] += ~SOLID_LUT[nb_phase]
    return coords, covered, faces


def _empty_columns(n: int) -> dict[str, np.ndarray]:
    return {
        "points_nm": np.zeros((n, 3)),
        "normals": np.zeros((n, 3)),
        "thickness_nm": np.full(n, np.nan),
        "area_nm2": np.zeros(n),
        "normal_tilt_deg": np.zeros(n),
    }


def _measure_chunk(
    solid: np.ndarray,
    filled: np.ndarray,
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
    f0 = smoothed(solid, p)
    sigma_n = np.sqrt(((normals * h * SIGMA_VOXELS) ** 2).sum(axis=1))

    # Metal interface: the 0.5 crossing of the smoothed solid, one secant step from the centre.
    s_metal = _crossing(solid, p, normals, h, sigma_n, np.zeros(len(p)), f0)
    lim = np.abs(normals * h).max(axis=1)
    s_metal = np.clip(s_metal, -lim, lim)

    thickness = np.full(len(p), np.nan)
    idx = np.flatnonzero(covered)
    if idx.size:
        # Whole-voxel steps find the outside voxel; the smoothed field then places the interface.
        first_out = first_exit(filled, p[idx], normals[idx], h, max_thickness_nm, step_voxels=1.0)
        hit = np.isfinite(first_out)
        j = idx[hit]
        guess = first_out[hit]
        f_guess = smoothed(filled, p[j] + guess[:, None] * normals[j] / h, support=4)
        s_out = _crossing(filled, p[j], normals[j], h, sigma_n[j], guess, f_guess)
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
    p: np.ndarray,
    normals: np.ndarray,
    h: np.ndarray,
    sigma_n: np.ndarray,
    s0: np.ndarray,
    f0: np.ndarray,
) -> np.ndarray:
    """Distance along each normal (nm, from ``p``) where the smoothed ``mask`` crosses 0.5.

    Starts from ``s0`` where the field is ``f0``; a Newton step on the planar profile
    Phi(s / sigma_n) gives a second sample, and the secant through both in probit space (where
    that profile is a straight line) lands on the crossing.
    """
    from scipy.special import ndtri

    g0 = ndtri(np.clip(f0, 1e-3, 1 - 1e-3))
    s1 = s0 + sigma_n * g0
    f1 = smoothed(mask, p + s1[:, None] * normals / h, support=4)
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
    solid = SOLID_LUT[phase_array(labels)]
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
