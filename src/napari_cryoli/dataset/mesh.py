"""Meshes of a segmentation for ChimeraX and Amira: one per class, in Å, on the map's grid.

Each class is cut out of the labels by marching cubes (scikit-image) at the voxel faces, smoothed
with Taubin's filter (which does not shrink; one sparse matrix product per pass) and decimated by
quadric edge collapse to a target size (fast-simplification, the decimator trimesh wraps); both
work in voxel units, then vertices become (x, y, z) in Å including the MRC origin,
the frame ChimeraX and Amira put the map in. Li and LiH vertices carry the SEI thickness (nm) of
the nearest measured metal-surface point, as a colour and as a ``_thickness_nm`` attribute in GLB.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..classes import DEFAULT_ONTOLOGY, LI, LIH, PHASES
from ..errors import FileFormatError, InputError
from ..jobs import Job, Progress, stop_requested

#: Colour map of the SEI thickness on the metal, over ``Meshes.thickness_range_nm``.
THICKNESS_COLORMAP = "viridis"

#: Formats by suffix; GLB holds every class (and the colours) in one file, the others one each.
FORMATS = (".glb", ".obj", ".stl")

#: fast-simplification's aggressiveness (0 careful and slow, 10 fast): its default is 7; on the
#: benchmark volume 8 decimates 15 % faster with the same distance to the label surface, while
#: 10 brings vertices past half a voxel (``benchmarks/mesh_speed.py``).
DECIMATION_AGGRESSION = 8.0


@dataclass(frozen=True)
class MeshConfig:
    """Which classes to mesh and how; ``classes`` holds names or ids (None: the phases present)."""

    classes: tuple[str | int, ...] | None = None
    #: Faces per class after decimation (a class with fewer keeps all of its own).
    target_faces: int = 200_000
    #: Taubin smoothing iterations (0: the raw marching-cubes surface).
    smooth_iterations: int = 10
    #: Colour Li and LiH by SEI thickness (measures the segmentation first).
    thickness: bool = True

    def __post_init__(self) -> None:
        if self.target_faces < 4:
            raise InputError(f"a mesh needs at least 4 faces, not {self.target_faces}")
        if self.smooth_iterations < 0:
            raise InputError("smoothing iterations cannot be negative")


@dataclass(frozen=True, eq=False)
class ClassMesh:
    """One class's surface: vertices (x, y, z) in Å, triangles, RGBA colour per vertex (uint8)
    and the SEI thickness per vertex (nm; NaN where none, None for classes not coloured)."""

    class_id: int
    name: str
    color: tuple[float, float, float, float]
    vertices_A: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray
    thickness_nm: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Meshes:
    """The meshes of one segmentation and the grid they came from."""

    meshes: tuple[ClassMesh, ...]
    voxel_size_nm: tuple[float, float, float]
    origin_nm: tuple[float, float, float]
    shape: tuple[int, int, int]
    thickness_range_nm: tuple[float, float] | None = None
    notes: tuple[str, ...] = field(default=())


def resolve_classes(classes: Sequence[str | int] | None, present: Sequence[int]) -> list[int]:
    """Class ids from names or ids (case-insensitive names); default: the phases present."""
    if classes is None:
        return [c for c in PHASES if c in present]
    by_name = {c.name.lower(): c.id for c in DEFAULT_ONTOLOGY}
    ids = []
    for c in classes:
        text = str(c).strip()
        if text.isdigit():
            ids.append(int(text))
        elif text.lower() in by_name:
            ids.append(by_name[text.lower()])
        else:
            known = ", ".join(c.name for c in DEFAULT_ONTOLOGY)
            raise InputError(f"unknown class {text!r}: use an id or one of {known}")
    return list(dict.fromkeys(ids))


def classes_to_mesh(labels: np.ndarray, config: MeshConfig) -> tuple[list[int], list[str]]:
    """The ids to mesh that are present, and a note for each asked for and absent."""
    from ..classes import count_voxels

    present = count_voxels(labels)
    ids = resolve_classes(config.classes, list(present))
    notes = [f"no {DEFAULT_ONTOLOGY.name_of(i)} voxels: no mesh" for i in ids if i not in present]
    ids = [i for i in ids if i in present]
    if not ids:
        raise InputError("none of the classes asked for is in the segmentation")
    return ids, notes


def check_mesh_path(out: str | os.PathLike) -> None:
    """``FileFormatError`` unless ``out`` names a mesh format we write."""
    if Path(out).suffix.lower() not in FORMATS:
        raise FileFormatError(f"{Path(out).name}: write meshes as .glb, .obj or .stl")


def mesh_labels(
    labels: np.ndarray,
    voxel_size_nm: Sequence[float],
    origin_nm: Sequence[float] | None = None,
    config: MeshConfig = MeshConfig(),
    *,
    surface=None,
    thickness_range_nm: tuple[float, float] | None = None,
    stop: threading.Event | None = None,
) -> Job[Meshes | None]:
    """Mesh each class of ``labels`` (z, y, x); a job returning :class:`Meshes` (None if stopped).

    ``surface`` is the measured :class:`~napari_cryoli.measure.sei.SurfaceThickness` that colours
    Li and LiH (None: class colours only); ``thickness_range_nm`` spans the colour scale
    (default: 0 nm to the 95th percentile of the measured thickness, so that an even SEI looks
    even).
    """
    h = tuple(float(v) for v in voxel_size_nm)
    origin = (0.0, 0.0, 0.0) if origin_nm is None else tuple(float(v) for v in origin_nm)
    if labels.ndim != 3 or len(h) != 3:
        raise InputError(f"meshes need a 3D label volume, not shape {labels.shape}")
    ids, notes = classes_to_mesh(labels, config)
    colour = _ThicknessColours(surface, thickness_range_nm) if surface is not None else None
    out = []
    for n, class_id in enumerate(ids):
        if stop_requested(stop):
            return None
        name = DEFAULT_ONTOLOGY.name_of(class_id)
        yield Progress(n, len(ids), f"meshing {name}")
        mesh = class_mesh(labels, class_id, h, origin, config)
        rgba = np.asarray(DEFAULT_ONTOLOGY.colors().get(class_id, (0.7, 0.7, 0.7, 1.0)), float)
        colours = np.tile(np.round(rgba * 255).astype(np.uint8), (len(mesh.vertices), 1))
        thickness = None
        if colour is not None and class_id in (LI, LIH):
            thickness = colour.thickness_at(mesh.vertices, h, origin)
            colours = colour.colours(thickness, colours)
        out.append(ClassMesh(class_id, name, tuple(rgba), np.asarray(mesh.vertices, np.float64),
                             np.asarray(mesh.faces, np.int64), colours, thickness))
    yield Progress(len(ids), len(ids), "done")
    return Meshes(tuple(out), h, origin, tuple(int(n) for n in labels.shape),
                  colour.range_nm if colour is not None else None, tuple(notes))


def class_mesh(labels: np.ndarray, class_id: int, voxel_size_nm: Sequence[float],
               origin_nm: Sequence[float], config: MeshConfig = MeshConfig()):
    """One class's smoothed, decimated surface as a ``trimesh.Trimesh`` (x, y, z in Å).

    Marching cubes runs on the class's bounding box, padded with outside so that a shape cut by
    the volume border is closed there (at the border voxels' outer faces).
    """
    import trimesh
    from skimage.measure import marching_cubes

    box = _box(labels, class_id)
    mask = np.pad(np.asarray(labels[box]) == class_id, 1).astype(np.float32)
    verts, faces, _, _ = marching_cubes(mask, 0.5, allow_degenerate=False)
    del mask
    verts = taubin(verts, faces, config.smooth_iterations)
    if len(faces) > config.target_faces:
        verts, faces = decimate(verts, faces, config.target_faces)
    corner = np.array([s.start - 1 for s in box], float)
    zyx_nm = (verts + corner) * np.asarray(voxel_size_nm) + np.asarray(origin_nm)
    return trimesh.Trimesh(zyx_nm[:, ::-1] * 10.0, faces[:, ::-1], process=False)


def taubin(vertices: np.ndarray, faces: np.ndarray, iterations: int, lamb: float = 0.5,
           nu: float = 0.5) -> np.ndarray:
    """Taubin's smoothing (a Laplacian step of ``lamb``, then one back of ``nu``, alternating;
    trimesh's ``filter_taubin`` with equal weights) as one sparse matrix product per pass.

    The neighbours of a vertex are read off the faces' directed edges, which on the closed
    surfaces of marching cubes name every edge once in each direction.
    """
    from scipy import sparse

    out = np.array(vertices, np.float32)
    if iterations == 0 or len(faces) == 0:
        return out
    n = len(out)
    to = np.asarray(faces)[:, [1, 2, 0]].ravel()
    adjacency = sparse.csr_matrix((np.ones(to.size, np.float32), (np.asarray(faces).ravel(), to)),
                                  shape=(n, n))
    adjacency.data[:] = 1.0  # an edge met twice (a non-manifold fan) still counts once
    degree = np.asarray(adjacency.sum(axis=1), np.float32).ravel()
    mean = sparse.diags(1.0 / np.maximum(degree, 1.0)) @ adjacency
    for k in range(iterations):
        step = mean @ out - out
        out += lamb * step if k % 2 == 0 else -nu * step
    return out


def decimate(vertices: np.ndarray, faces: np.ndarray, target_faces: int,
             aggression: float = DECIMATION_AGGRESSION) -> tuple[np.ndarray, np.ndarray]:
    """Quadric edge collapse to about ``target_faces`` (fast-simplification)."""
    import fast_simplification

    verts, out = fast_simplification.simplify(np.asarray(vertices, np.float64), faces,
                                              target_count=int(target_faces), agg=aggression)
    return verts, out.astype(np.int64)


def _box(labels: np.ndarray, class_id: int) -> tuple[slice, ...]:
    """The bounding box of ``class_id``, found slab by slab (a memory map stays on disk)."""
    lo = np.array(labels.shape)
    hi = np.zeros(3, int)
    step = max(1, (64 << 20) // max(1, labels[0].size))
    for z0 in range(0, labels.shape[0], step):
        slab = np.asarray(labels[z0:z0 + step]) == class_id
        if not slab.any():
            continue
        for axis in range(3):
            other = tuple(a for a in range(3) if a != axis)
            where = np.flatnonzero(slab.any(axis=other)) + (z0 if axis == 0 else 0)
            lo[axis] = min(lo[axis], where[0])
            hi[axis] = max(hi[axis], where[-1] + 1)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


class _ThicknessColours:
    """SEI thickness of the nearest measured metal-surface point, and its colour."""

    def __init__(self, surface, range_nm: tuple[float, float] | None) -> None:
        from scipy.spatial import cKDTree

        ok = surface.measured
        self.values = surface.thickness_nm[ok]
        self.tree = cKDTree(surface.points_nm[ok]) if ok.any() else None
        if range_nm is None or None in range_nm:
            lo, hi = 0.0, float(np.percentile(self.values, 95)) if self.values.size else 1.0
        else:
            lo, hi = range_nm
        self.range_nm = (float(lo), max(float(hi), float(lo) + 1e-3))

    def thickness_at(self, vertices_A: np.ndarray, h, origin) -> np.ndarray:
        """Thickness per vertex (NaN farther than two voxels from any measured point)."""
        out = np.full(len(vertices_A), np.nan)
        if self.tree is None:
            return out
        zyx_nm = np.asarray(vertices_A)[:, ::-1] / 10.0 - np.asarray(origin)
        dist, nearest = self.tree.query(zyx_nm, distance_upper_bound=2.0 * max(h))
        hit = np.isfinite(dist)
        out[hit] = self.values[nearest[hit]]
        return out

    def colours(self, thickness: np.ndarray, base: np.ndarray) -> np.ndarray:
        from matplotlib import colormaps

        cmap = colormaps[THICKNESS_COLORMAP]
        out = base.copy()
        hit = np.isfinite(thickness)
        lo, hi = self.range_nm
        scaled = np.clip((thickness[hit] - lo) / (hi - lo), 0.0, 1.0)
        out[hit] = np.round(cmap(scaled) * 255).astype(np.uint8)
        return out


def mesh_segmentation(
    path: str | os.PathLike,
    config: MeshConfig = MeshConfig(),
    *,
    report: str | os.PathLike | None = None,
    stop: threading.Event | None = None,
) -> Job[Meshes | None]:
    """Mesh a segmentation file: the job of ``napari-cryoli mesh``.

    For the thickness colours the segmentation is measured with the settings of ``report`` (a
    REPORT.json of the same segmentation; its 95th-percentile thickness tops the colour scale),
    or with the default settings when none is given.
    """
    from ..io import read_labels
    from ..measure.report import MeasureSettings, read_report

    volume = read_labels(path)
    if volume.kind != "volume":
        raise InputError(f"{volume.path.name} is not a 3D label volume")
    settings, span = MeasureSettings(), None
    if report is not None:
        data = read_report(report)
        same_shape = list(data.get("shape", volume.data.shape)) == list(volume.data.shape)
        if not same_shape or not np.allclose(data["voxel_size_nm"], volume.voxel_size_nm,
                                             rtol=1e-3):
            raise InputError(f"{Path(report).name} is the report of another segmentation "
                             "(shape or voxel size differ)")
        known = {k: v for k, v in data.get("settings", {}).items()
                 if k in MeasureSettings.__dataclass_fields__}
        settings = MeasureSettings(**known)
        span = (0.0, data["sei_thickness_nm"].get("p95"))
    classes_to_mesh(volume.data, config)  # unknown or absent classes: before measuring
    return _mesh_file(volume, config, settings, span, stop)


def _mesh_file(volume, config, settings, span, stop) -> Job[Meshes | None]:
    from ..measure.report import measure

    surface = None
    if config.thickness:
        job = measure(volume.data, volume.voxel_size_nm, settings, stop=stop)
        while True:
            try:
                p = next(job)
            except StopIteration as done:
                report = done.value
                break
            yield Progress(0, 0, f"measuring SEI thickness: {p.message}")
        if report.stopped:
            return None
        surface = report.surface
    meshes = yield from mesh_labels(volume.data, volume.voxel_size_nm, volume.origin_nm, config,
                                    surface=surface, thickness_range_nm=span, stop=stop)
    return meshes


def write_meshes(meshes: Meshes, out: str | os.PathLike) -> list[Path]:
    """Write the meshes atomically: one GLB holding every class (named nodes, vertex colours,
    ``_thickness_nm``), or one OBJ/STL per class (``OUT_<class>.obj``). Returns the paths."""
    import trimesh

    from ..io import atomic_write_bytes

    out = Path(out)
    check_mesh_path(out)
    suffix = out.suffix.lower()
    if suffix == ".glb":
        scene = trimesh.Scene()
        for m in meshes.meshes:
            scene.add_geometry(_trimesh(m), node_name=m.name, geom_name=m.name)
        atomic_write_bytes(out, scene.export(file_type="glb"))
        return [out]
    written = []
    for m in meshes.meshes:
        path = out.with_name(f"{out.stem}_{_safe(m.name)}{suffix}")
        data = _trimesh(m).export(file_type=suffix[1:])
        atomic_write_bytes(path, data.encode() if isinstance(data, str) else data)
        written.append(path)
    return written


def _trimesh(m: ClassMesh):
    import trimesh

    mesh = trimesh.Trimesh(m.vertices_A, m.faces, vertex_colors=m.vertex_colors, process=False)
    if m.thickness_nm is not None:
        mesh.vertex_attributes["_thickness_nm"] = np.nan_to_num(m.thickness_nm, nan=-1.0).astype(
            np.float32)
    return mesh


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def export_meshes(
    labels: np.ndarray,
    voxel_size_nm: Sequence[float],
    origin_nm: Sequence[float] | None,
    out: str | os.PathLike,
    *,
    surface=None,
    map_path: str | os.PathLike | None = None,
    config: MeshConfig = MeshConfig(),
    stop: threading.Event | None = None,
) -> Job[list[Path] | None]:
    """Mesh, write the meshes and a ChimeraX command file next to them (``OUT.cxc``); a job
    returning the paths written (None when stopped). What the Measure widget's export runs."""
    from .chimerax import write_chimerax_script

    check_mesh_path(out)
    meshes = yield from mesh_labels(labels, voxel_size_nm, origin_nm, config, surface=surface,
                                    stop=stop)
    if meshes is None:
        return None
    written = write_meshes(meshes, out)
    script = write_chimerax_script(meshes, written, map_path, Path(out).with_suffix(".cxc"))
    return [*written, script]
