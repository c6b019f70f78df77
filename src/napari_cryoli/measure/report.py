"""The measurement report: one job from a label volume to every number the study needs.

``measure`` is a job (a generator yielding ``Progress``) that returns a :class:`Report` made of
typed frozen records (:class:`SeiStatistics`, :class:`DendriteRow`, :class:`Particle`).
``Report.to_dict`` turns it into the JSON of docs/architecture.md (``REPORT.json``) and
``Report.from_dict`` back; ``write_report`` writes it (and the per-dendrite table as CSV)
atomically, ``read_report`` reads the JSON back as a dict, ``load_report`` as a :class:`Report`.
Thickness statistics are area-weighted: each surface point counts by the metal area it stands for,
so a face seen edge-on by the voxel grid weighs the same as one seen face-on.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from ..classes import BACKGROUND, CU, LI, LIH, PHASE_NAMES, PHASES, UNLABELED
from ..errors import FileFormatError, InputError
from ..jobs import Job, Progress, stop_requested
from . import dendrites as dendrites_mod
from .particles import Particle, cu_particles
from .phases import check_labels, check_voxel_size, phase_volumes_nm3, scan_labels
from .sei import SurfaceThickness, surface_job
from .settings import MeasureSettings

#: Version of the report layout (bumped when keys change meaning). 2: ``trusted`` keeps the faces
#: a tilt series sees edge-on, and dendrites have ``tilt_axis_angle_deg``.
REPORT_VERSION = 2

#: The note on dendrites across the tilt axis names those holding at least this share of the
#: dendrites' volume: streaks of the missing wedge leave small pieces along x in predictions.
ACROSS_NOTE_MIN_SHARE = 0.05

#: Columns of the per-dendrite CSV table, in order.
CSV_COLUMNS = (
    "id",
    "volume_nm3",
    "li_volume_nm3",
    "lih_volume_nm3",
    "cu_volume_nm3",
    "lih_volume_fraction",
    "length_nm",
    "diameter_nm",
    "width_xy_nm",
    "width_z_nm",
    "tilt_axis_angle_deg",
    "centroid_z_nm",
    "centroid_y_nm",
    "centroid_x_nm",
    "n_cu_particles",
    "sei_median_nm",
    "sei_mean_nm",
    "sei_p95_nm",
    "sei_on_li_median_nm",
    "sei_on_lih_median_nm",
    "sei_trusted_median_nm",
    "extended_share_li",
    "extended_share_lih",
    "n_surface_points",
)


# --- records -----------------------------------------------------------------------------------
# Field names follow the JSON keys; ``metadata={"json": KEY}`` names a key spelled otherwise
# ("on_Li" is the field ``on_li``) and ``{"json": None}`` keeps a field out of the JSON.


@dataclass(frozen=True)
class ThicknessStats:
    """Area-weighted SEI thickness (nm) over some surface points; None where there is no point."""

    median: float | None
    mean: float | None
    p5: float | None
    p25: float | None
    p75: float | None
    p95: float | None
    n_points: int


@dataclass(frozen=True)
class PhaseThickness(ThicknessStats):
    """Statistics over some surface points, then over those on Li and those on LiH."""

    on_li: ThicknessStats = field(metadata={"json": "on_Li"})
    on_lih: ThicknessStats = field(metadata={"json": "on_LiH"})


@dataclass(frozen=True)
class TrustedThickness(PhaseThickness):
    """Statistics over the points whose face a tilt series to ±``max_normal_tilt_deg`` about y
    sees edge-on (``SurfaceThickness.trusted``; the missing wedge blurs the rest). Reports of
    version 1 kept faces whose normal lay within that angle of the x-y plane, the same along the
    tilt axis but more across it."""

    _json_first: ClassVar[tuple[str, ...]] = ("max_normal_tilt_deg",)
    max_normal_tilt_deg: float


@dataclass(frozen=True)
class ByMetal:
    """One number for the surface of Li and one for the surface of LiH (None: no such surface)."""

    li: float | None = field(metadata={"json": "Li"})
    lih: float | None = field(metadata={"json": "LiH"})


@dataclass(frozen=True)
class ThicknessHistogram:
    """Area (nm²) of the measured surface per thickness bin, on Li and on LiH."""

    bin_edges_nm: tuple[float, ...]
    on_li_area_nm2: tuple[float, ...] = field(metadata={"json": "on_Li_area_nm2"})
    on_lih_area_nm2: tuple[float, ...] = field(metadata={"json": "on_LiH_area_nm2"})


@dataclass(frozen=True)
class SeiStatistics(PhaseThickness):
    """The report's SEI thickness section: all measured points, trusted normals, compact and
    extended SEI, surface areas and shares per metal, normal tilts and the histogram."""

    trusted: TrustedThickness
    extended_threshold_nm: float
    compact: PhaseThickness
    extended: PhaseThickness
    surface_area_nm2: ByMetal
    covered_share: ByMetal
    extended_share: ByMetal
    trusted_extended_share: ByMetal
    n_unresolved: int  # points covered by SEI whose ray found no end (thicker than the limit)
    normal_tilt_deg: ThicknessStats  # the same statistics of the normals' tilt (degrees)
    histogram: ThicknessHistogram


@dataclass(frozen=True)
class DendriteSei(PhaseThickness):
    """SEI thickness on one dendrite's own surface."""

    trusted: PhaseThickness
    extended_share: ByMetal


@dataclass(frozen=True)
class DendriteRow:
    """One dendrite: volumes, LiH fraction, shape (nm), where it is, its SEI and Cu particles."""

    id: int
    volume_nm3: float
    li_volume_nm3: float
    lih_volume_nm3: float
    cu_volume_nm3: float
    lih_volume_fraction: float | None
    length_nm: float
    diameter_nm: float
    width_xy_nm: float
    width_z_nm: float
    centroid_nm: tuple[float, float, float]  # (z, y, x)
    touches_border: bool
    sei_thickness_nm: DendriteSei
    n_cu_particles: int
    #: In-plane angle of its footprint's long axis to the tilt axis (y); NaN for a round piece
    #: and in reports written before it.
    tilt_axis_angle_deg: float = math.nan


@dataclass(frozen=True)
class Report:
    """Everything measured on one segmentation (numbers in nm, nm², nm³)."""

    voxel_size_nm: tuple[float, float, float]
    shape: tuple[int, int, int]
    settings: MeasureSettings
    volumes_nm3: dict[str, float]
    lih_volume_fraction: float | None
    sei_thickness_nm: SeiStatistics
    dendrites: tuple[DendriteRow, ...]
    cu_particles: tuple[Particle, ...]
    notes: tuple[str, ...] = ()
    stopped: bool = False
    #: The layout it was measured in (a report read from an older file keeps its own).
    version: int = REPORT_VERSION
    #: Per-point SEI thickness (for overlays); not part of the JSON.
    surface: SurfaceThickness | None = field(default=None, repr=False, compare=False)
    #: Dendrite ids (unsigned) in the box around the battery phases, and that box; not in the JSON.
    dendrite_crop: np.ndarray | None = field(default=None, repr=False, compare=False)
    dendrite_box: tuple[slice, ...] | None = field(default=None, repr=False, compare=False)

    def dendrite_ids(self) -> np.ndarray | None:
        """Dendrite id per voxel of the whole volume (0 elsewhere and on specks; the smallest
        unsigned type that holds the ids), e.g. for a Labels layer; None for a stopped report."""
        if self.dendrite_crop is None or self.dendrite_box is None:
            return None
        ids = np.zeros(self.shape, dtype=self.dendrite_crop.dtype)
        ids[self.dendrite_box] = self.dendrite_crop
        return ids

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able report: the architecture keys and more (NaN becomes null)."""
        return {
            "report_version": self.version,
            "voxel_size_nm": to_json(self.voxel_size_nm),
            "shape": to_json(self.shape),
            "settings": to_json(self.settings),
            "volumes_nm3": to_json(self.volumes_nm3),
            "lih_volume_fraction": to_json(self.lih_volume_fraction),
            "sei_thickness_nm": to_json(self.sei_thickness_nm),
            "n_cu_particles": len(self.cu_particles),
            "cu_particles": to_json(self.cu_particles),
            "n_dendrites": len(self.dendrites),
            "dendrites": to_json(self.dendrites),
            "notes": list(self.notes),
            "stopped": self.stopped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """The report of a JSON dict written by :meth:`to_dict` (keys it does not know, such as
        a batch's provenance, are left aside); ``FileFormatError`` if a key is missing."""
        try:
            settings = from_json(MeasureSettings, data["settings"])
            return cls(
                voxel_size_nm=from_json(tuple[float, float, float], data["voxel_size_nm"]),
                shape=from_json(tuple[int, int, int], data["shape"]),
                settings=settings,
                volumes_nm3=from_json(dict[str, float], data["volumes_nm3"]),
                lih_volume_fraction=from_json(float | None, data["lih_volume_fraction"]),
                sei_thickness_nm=from_json(SeiStatistics, data["sei_thickness_nm"]),
                dendrites=from_json(tuple[DendriteRow, ...], data["dendrites"]),
                cu_particles=from_json(tuple[Particle, ...], data["cu_particles"]),
                notes=tuple(data.get("notes", ())),
                stopped=bool(data.get("stopped", False)),
                version=int(data.get("report_version", 1)),
            )
        except (KeyError, TypeError, ValueError, InputError) as e:
            raise FileFormatError(f"not a napari-cryoli measurement report ({e!r})") from None


# --- JSON at the edge ---------------------------------------------------------------------------


def to_json(obj: Any) -> Any:
    """Plain JSON types of a record (its fields under their JSON keys, in order), tuple, dict or
    number: NaN and infinities become null, numpy scalars become Python numbers."""
    if is_dataclass(obj) and not isinstance(obj, type):
        first = getattr(obj, "_json_first", ())
        named = [(f.metadata.get("json", f.name), f.name) for f in fields(obj)]
        named = [(k, n) for k, n in named if k is not None]
        named.sort(key=lambda kn: kn[1] not in first)  # stable: the rest keep their order
        return {k: to_json(getattr(obj, n)) for k, n in named}
    if isinstance(obj, Mapping):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [to_json(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


_T = TypeVar("_T")


def from_json(kind: type[_T] | Any, value: Any) -> _T:
    """The value of type ``kind`` (a record, tuple, dict, optional or number type) that
    :func:`to_json` turned into ``value`` (a null float reads as NaN)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None  # type: ignore[return-value]
        (inner,) = [a for a in args if a is not type(None)]
        return from_json(inner, value)
    if is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        given = {}
        for f in fields(kind):
            key = f.metadata.get("json", f.name)
            if key is not None and f.init and (key in value or f.default is MISSING):
                given[f.name] = from_json(hints[f.name], value[key])
        return kind(**given)  # type: ignore[return-value]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], v) for v in value)  # type: ignore[return-value]
        if len(args) != len(value):
            raise ValueError(f"expected {len(args)} values, got {len(value)}")
        return tuple(from_json(a, v) for a, v in zip(args, value))  # type: ignore[return-value]
    if origin is dict:
        return {str(k): from_json(args[1], v) for k, v in value.items()}  # type: ignore[return-value]
    if kind is float:
        return math.nan if value is None else float(value)  # type: ignore[return-value]
    if kind in (int, bool, str):
        if not isinstance(value, kind):
            raise TypeError(f"expected {kind.__name__}, got {value!r}")
        return value
    raise TypeError(f"no JSON reading for {kind!r}")


def measure(
    labels: np.ndarray,
    voxel_size_nm: float | Sequence[float],
    settings: MeasureSettings = MeasureSettings(),
    stop: threading.Event | None = None,
    notes: Sequence[str] = (),
) -> Job[Report]:
    """Measure a segmentation: a job yielding progress, returning the :class:`Report`.

    ``labels`` uses the class ids of the architecture doc (ids 0, 1 and 6+ count as outside,
    which a note says); ``voxel_size_nm`` is (z, y, x) or one number; ``notes`` are what the
    input said about itself (e.g. a file's warnings) and lead the report's notes. When ``stop``
    is set the job returns early with what it has, marked ``stopped``. ``labels`` is read as it
    is (a memory-mapped file stays on disk): one pass slab by slab for the volumes, then only the
    box around the battery phases.
    """
    h = check_voxel_size(voxel_size_nm)
    total = 6
    labels = check_labels(labels)
    shape = tuple(int(n) for n in labels.shape)
    scan = scan_labels(labels)
    volumes = phase_volumes_nm3(scan.counts, h)
    notes = [*dict.fromkeys(notes), *user_class_notes(scan.counts)]
    metal = volumes["Li"] + volumes["LiH"]
    lih_fraction = volumes["LiH"] / metal if metal > 0 else None
    if metal == 0:
        notes.append("no Li or LiH in the segmentation: no metal surface, no LiH fraction")
    if volumes["SEI"] == 0:
        notes.append("no SEI in the segmentation: no thickness to measure")
    if volumes["Cu"] == 0:
        notes.append("no Cu in the segmentation: no particles")
    partial = {
        "voxel_size_nm": h,
        "shape": shape,
        "settings": settings,
        "volumes_nm3": volumes,
        "lih_volume_fraction": lih_fraction,
    }
    yield Progress(1, total, "phase volumes")

    # Everything else happens in the box around the battery phases (with a margin, so that only
    # the true volume border can cut a shape).
    box = scan.box(PHASES, 3, shape)
    if box is None:
        return Report(
            **partial,
            sei_thickness_nm=_sei_section(None, settings),
            dendrites=(),
            cu_particles=(),
            notes=tuple(notes),
        )
    if stop_requested(stop):
        return _stopped(partial, settings, notes)
    found = dendrites_mod.dendrite_pieces(
        labels, h, settings.min_dendrite_volume_nm3, box=box
    )
    if found.n_specks:
        notes.append(
            f"{found.n_specks} solid pieces under {settings.min_dendrite_volume_nm3:g} nm³ "
            f"({found.speck_voxels * float(np.prod(h)):.4g} nm³ in all) are specks: counted in "
            "the phase volumes, but neither dendrites nor measured for SEI thickness"
        )
    if stop_requested(stop):
        return _stopped(partial, settings, notes)
    yield Progress(2, total, f"{found.n} dendrites")

    job = surface_job(
        labels,
        h,
        names=(found.ids, found.box),
        only_named=True,
        max_thickness_nm=settings.max_thickness_nm,
        stop=stop,
    )
    while True:
        try:
            p = next(job)
        except StopIteration as done:
            surface = done.value
            break
        yield Progress(2, total, p.message)
    if surface is None:
        return _stopped(partial, settings, notes)
    notes.extend(n for n in surface.notes if n not in notes)
    yield Progress(3, total, "SEI thickness")

    dendrite_rows, axes = [], {}
    points_of = _points_by_dendrite(surface.dendrite, found.n)
    bodies = dendrites_mod.Bodies(found.ids, h)
    corner = found.corner
    voxel = float(np.prod(h))
    for i, box_i in enumerate(found.boxes(), start=1):
        if stop_requested(stop):
            return _stopped(partial, settings, notes)
        if box_i is None:
            continue
        grown = tuple(
            slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box_i, found.ids.shape)
        )
        mask = found.ids[grown] == i
        origin = corner + [s.start for s in grown]
        in_volume = tuple(slice(o, o + n) for o, n in zip(origin, mask.shape))
        ids_here = np.bincount(labels[in_volume][mask], minlength=256)
        v = {PHASE_NAMES[pid]: float(ids_here[pid]) * voxel for pid in (LI, LIH, CU)}
        form = dendrites_mod.shape(mask, h, offset=origin)
        axes[i] = form.axis
        on = surface.select(points_of[i])
        if math.isnan(form.tilt_axis_angle_deg):
            form = replace(form, tilt_axis_angle_deg=bodies.angle_under(mask, grown))
        dendrite_rows.append(_dendrite_row(i, v, form, mask, origin, h, shape, on, settings))
        if len(dendrite_rows) % 10 == 0:
            yield Progress(4, total, f"dendrite shapes: {len(dendrite_rows)}")
    yield Progress(4, total, "dendrite shapes")
    solid = sum(r.volume_nm3 for r in dendrite_rows)
    across = [r for r in dendrite_rows
              if r.tilt_axis_angle_deg >= dendrites_mod.ACROSS_TILT_AXIS_DEG
              and r.volume_nm3 >= ACROSS_NOTE_MIN_SHARE * solid]
    if across:
        notes.append(across_tilt_axis_note(across))

    particles, cu_specks = cu_particles(
        labels,
        h,
        found,
        axes,
        cu_box=scan.box([CU], 1, shape),
        lih_box=scan.boxes[LIH],
        min_volume_nm3=settings.min_particle_volume_nm3,
    )
    if cu_specks:
        notes.append(
            f"{cu_specks} Cu pieces under {settings.min_particle_volume_nm3:g} nm³ are specks: "
            "counted in the Cu volume, not reported as particles"
        )
    dendrite_rows = [
        replace(row, n_cu_particles=sum(1 for p in particles if p.dendrite == row.id))
        for row in dendrite_rows
    ]
    yield Progress(5, total, f"{len(particles)} Cu particles")

    sei = _sei_section(surface, settings)
    if particles and all(p.distance_to_lih_nm is None for p in particles):
        notes.append("no LiH in the segmentation: Cu particles have no distance to LiH")
    report = Report(
        **partial,
        sei_thickness_nm=sei,
        dendrites=tuple(dendrite_rows),
        cu_particles=tuple(particles),
        notes=tuple(notes),
        surface=surface,
        dendrite_box=found.box,
        dendrite_crop=found.ids,
    )
    yield Progress(6, total, "done")
    return report


def across_tilt_axis_note(rows: Sequence[DendriteRow]) -> str:
    """The warning for dendrites lying ``ACROSS_TILT_AXIS_DEG`` or more from the tilt axis."""
    which = ", ".join(f"{r.id} ({r.tilt_axis_angle_deg:.0f}°)" for r in rows)
    many = len(rows) > 1
    return (
        f"dendrite{'s' if many else ''} {which} lie{'' if many else 's'} "
        f"{dendrites_mod.ACROSS_TILT_AXIS_DEG:g}° or more from the tilt axis (y): the missing "
        f"wedge hides most of {'their' if many else 'its'} top and bottom, so "
        f"{'their' if many else 'its'} LiH fraction, height and SEI are less sure than along "
        "the axis (docs/measurements.md, 'Dendrites across the tilt axis')"
    )


def user_class_notes(counts: np.ndarray) -> list[str]:
    """A note naming the ids present (``counts`` per id 0..255) that are neither battery phases
    nor background: they are measured as background."""
    others = [str(i) for i in np.flatnonzero(counts) if i not in (UNLABELED, BACKGROUND, *PHASES)]
    if not others:
        return []
    which = f"id {others[0]} is" if len(others) == 1 else f"ids {', '.join(others)} are"
    return [f"{which} not Li, LiH, Cu or SEI: measured as background"]


def _points_by_dendrite(dendrite: np.ndarray, n: int) -> list[np.ndarray]:
    """Indices of the surface points of each dendrite 0..n (one sort, not a pass per dendrite)."""
    order = np.argsort(dendrite, kind="stable")
    bounds = np.searchsorted(dendrite[order], np.arange(n + 2))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n + 1)]


# --- sections ----------------------------------------------------------------------------------


def summarize(values: np.ndarray, weights: np.ndarray | None = None) -> ThicknessStats:
    """Area-weighted median, mean, p5, p25, p75, p95 and the number of points (None if none)."""
    v = np.asarray(values, dtype=float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=float)
    ok = np.isfinite(v) & (w > 0)
    v, w = v[ok], w[ok]
    if v.size == 0:
        return ThicknessStats(None, None, None, None, None, None, 0)
    order = np.argsort(v)
    v, w = v[order], w[order]
    cum = np.cumsum(w) - 0.5 * w
    cum /= w.sum()

    def q(p: float) -> float:
        return float(np.interp(p, cum, v))

    return ThicknessStats(
        median=q(0.5),
        mean=float(np.average(v, weights=w)),
        p5=q(0.05),
        p25=q(0.25),
        p75=q(0.75),
        p95=q(0.95),
        n_points=int(v.size),
    )


def _on_phase(st: SurfaceThickness, keep: np.ndarray) -> dict[str, Any]:
    """Overall, on-Li and on-LiH statistics of the measured points among ``keep``, as the
    fields of a :class:`PhaseThickness`."""
    measured = keep & st.measured

    def on(sel: np.ndarray) -> ThicknessStats:
        return summarize(st.thickness_nm[sel], st.area_nm2[sel])

    overall = on(measured)
    return {
        **{f.name: getattr(overall, f.name) for f in fields(ThicknessStats)},
        "on_li": on(measured & (st.phase == LI)),
        "on_lih": on(measured & (st.phase == LIH)),
    }


def _phase_block(st: SurfaceThickness, keep: np.ndarray) -> PhaseThickness:
    return PhaseThickness(**_on_phase(st, keep))


def _by_metal(value: Callable[[int], float | None]) -> ByMetal:
    """``value(pid)`` for Li and for LiH."""
    return ByMetal(li=value(LI), lih=value(LIH))


def _sei_section(st: SurfaceThickness | None, settings: MeasureSettings) -> SeiStatistics:
    thr = settings.extended_threshold_nm
    if st is None:
        st = _no_surface()
    everywhere = np.ones(len(st), dtype=bool)
    trusted = st.trusted(settings.trusted_max_normal_tilt_deg)
    with np.errstate(invalid="ignore"):
        extended = st.measured & (st.thickness_nm > thr)
    return SeiStatistics(
        **_on_phase(st, everywhere),
        trusted=TrustedThickness(
            max_normal_tilt_deg=settings.trusted_max_normal_tilt_deg, **_on_phase(st, trusted)
        ),
        extended_threshold_nm=thr,
        compact=_phase_block(st, st.measured & ~extended),
        extended=_phase_block(st, extended),
        surface_area_nm2=_by_metal(lambda pid: float(st.area_nm2[st.phase == pid].sum())),
        covered_share=_by_metal(
            lambda pid: _share(st.area_nm2, (st.phase == pid) & st.covered, st.phase == pid)
        ),
        extended_share=_by_metal(
            lambda pid: _share(st.area_nm2, (st.phase == pid) & extended, st.phase == pid)
        ),
        trusted_extended_share=_by_metal(
            lambda pid: _share(
                st.area_nm2, (st.phase == pid) & extended & trusted, (st.phase == pid) & trusted
            )
        ),
        n_unresolved=int((st.covered & ~st.measured).sum()),
        normal_tilt_deg=summarize(st.normal_tilt_deg[st.measured], st.area_nm2[st.measured]),
        histogram=_histogram(st, settings.histogram_bin_nm),
    )


def _share(area: np.ndarray, part: np.ndarray, whole: np.ndarray) -> float | None:
    total = float(area[whole].sum())
    return float(area[part].sum()) / total if total > 0 else None


def _histogram(st: SurfaceThickness, bin_nm: float) -> ThicknessHistogram:
    """Area (nm²) of the surface per thickness bin, on Li and on LiH, for plots of saved reports."""
    t = st.thickness_nm[st.measured]
    top = float(np.max(t)) if t.size else 0.0
    edges = np.arange(0.0, max(top, bin_nm) + bin_nm, bin_nm)

    def areas(pid: int) -> tuple[float, ...]:
        sel = st.measured & (st.phase == pid)
        counts, _ = np.histogram(st.thickness_nm[sel], bins=edges, weights=st.area_nm2[sel])
        return tuple(counts.tolist())

    return ThicknessHistogram(tuple(edges.tolist()), areas(LI), areas(LIH))


def _dendrite_row(
    i: int,
    v: Mapping[str, float],
    form: dendrites_mod.Shape,
    mask: np.ndarray,
    origin: np.ndarray,
    h: Sequence[float],
    shape: Sequence[int],
    surface: SurfaceThickness,
    settings: MeasureSettings,
) -> DendriteRow:
    """One dendrite's row; ``surface`` holds its own surface points only."""
    metal = v["Li"] + v["LiH"]
    centroid = (_centroid(mask) + origin) * np.asarray(h)
    on = np.ones(len(surface), dtype=bool)
    with np.errstate(invalid="ignore"):
        extended = surface.measured & (surface.thickness_nm > settings.extended_threshold_nm)
    trusted = surface.trusted(settings.trusted_max_normal_tilt_deg)
    sei = DendriteSei(
        **_on_phase(surface, on),
        trusted=_phase_block(surface, trusted),
        extended_share=_by_metal(
            lambda pid: _share(
                surface.area_nm2, extended & (surface.phase == pid), surface.phase == pid
            )
        ),
    )
    return DendriteRow(
        id=int(i),
        volume_nm3=v["Li"] + v["LiH"] + v["Cu"],
        li_volume_nm3=v["Li"],
        lih_volume_nm3=v["LiH"],
        cu_volume_nm3=v["Cu"],
        lih_volume_fraction=v["LiH"] / metal if metal > 0 else None,
        length_nm=form.length_nm,
        diameter_nm=form.diameter_nm,
        width_xy_nm=form.width_xy_nm,
        width_z_nm=form.width_z_nm,
        centroid_nm=(float(centroid[0]), float(centroid[1]), float(centroid[2])),
        touches_border=_touches_border(mask, origin, shape),
        sei_thickness_nm=sei,
        n_cu_particles=0,
        tilt_axis_angle_deg=form.tilt_axis_angle_deg,
    )


def _centroid(mask: np.ndarray) -> np.ndarray:
    """Mean voxel index of ``mask`` per axis, from its marginals (no list of voxels)."""
    zy = mask.sum(axis=2, dtype=np.int64)
    marginals = (zy.sum(axis=1), zy.sum(axis=0), mask.sum(axis=(0, 1), dtype=np.int64))
    total = max(int(marginals[0].sum()), 1)
    return np.array([float(np.arange(m.size) @ m) / total for m in marginals])


def _touches_border(mask: np.ndarray, origin: np.ndarray, shape: Sequence[int]) -> bool:
    """Whether the dendrite ``mask`` (a crop at ``origin``) reaches a face of the volume."""
    for axis in range(3):
        if origin[axis] == 0 and mask.take(0, axis=axis).any():
            return True
        if origin[axis] + mask.shape[axis] == shape[axis] and mask.take(-1, axis=axis).any():
            return True
    return False


def _no_surface() -> SurfaceThickness:
    e = np.zeros(0)
    return SurfaceThickness(
        points_zyx=np.zeros((0, 3), dtype=np.int64),
        points_nm=np.zeros((0, 3)),
        normals=np.zeros((0, 3)),
        thickness_nm=e,
        phase=np.zeros(0, dtype=np.uint8),
        covered=np.zeros(0, dtype=bool),
        area_nm2=e,
        normal_tilt_deg=e,
        dendrite=np.zeros(0, dtype=np.int32),
    )


def _stopped(partial: dict[str, Any], settings: MeasureSettings, notes: list[str]) -> Report:
    return Report(
        **partial,
        sei_thickness_nm=_sei_section(None, settings),
        dendrites=(),
        cu_particles=(),
        notes=(*notes, "stopped before the end: only phase volumes were measured"),
        stopped=True,
    )


# --- files -------------------------------------------------------------------------------------


def write_report(
    report: Report | Mapping[str, Any],
    json_path: str | os.PathLike,
    csv_path: str | os.PathLike | None = None,
) -> None:
    """Write the report (or its JSON dict with more keys, e.g. a batch's provenance) as JSON,
    and the per-dendrite table as CSV, each file atomically."""
    from ..io.atomic import atomic_write_bytes

    data = report.to_dict() if isinstance(report, Report) else to_json(report)
    text = json.dumps(data, indent=1, allow_nan=False)
    atomic_write_bytes(json_path, (text + "\n").encode())
    if csv_path is not None:
        atomic_write_bytes(csv_path, dendrite_table(data).encode())


def dendrite_table(report: Report | Mapping[str, Any]) -> str:
    """The per-dendrite CSV table of a report or its JSON dict (one row per dendrite,
    ``CSV_COLUMNS``); a dict may come from a file of an older layout, so keys may be missing."""
    if isinstance(report, Report):
        report = report.to_dict()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for d in report.get("dendrites", []):
        sei = d.get("sei_thickness_nm", {})
        cz, cy, cx = d.get("centroid_nm") or [None] * 3
        row = {
            **{k: d.get(k) for k in CSV_COLUMNS},
            "centroid_z_nm": cz,
            "centroid_y_nm": cy,
            "centroid_x_nm": cx,
            "sei_median_nm": sei.get("median"),
            "sei_mean_nm": sei.get("mean"),
            "sei_p95_nm": sei.get("p95"),
            "sei_on_li_median_nm": sei.get("on_Li", {}).get("median"),
            "sei_on_lih_median_nm": sei.get("on_LiH", {}).get("median"),
            "sei_trusted_median_nm": sei.get("trusted", {}).get("median"),
            "extended_share_li": sei.get("extended_share", {}).get("Li"),
            "extended_share_lih": sei.get("extended_share", {}).get("LiH"),
            "n_surface_points": sei.get("n_points"),
        }
        writer.writerow(["" if row[k] is None else row[k] for k in CSV_COLUMNS])
    return buf.getvalue()


def read_report(path: str | os.PathLike) -> dict[str, Any]:
    """A report written by :func:`write_report`, as its JSON dict; ``FileFormatError`` if it is
    not one."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(f"no report at {p}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"could not read the report {p}: {e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{p} is not a JSON report (line {e.lineno}: {e.msg})") from None
    required = ("voxel_size_nm", "volumes_nm3", "sei_thickness_nm", "dendrites", "cu_particles")
    if not isinstance(data, dict) or any(k not in data for k in required):
        raise FileFormatError(f"{p} is not a napari-cryoli measurement report")
    return data


def load_report(path: str | os.PathLike) -> Report:
    """A report written by :func:`write_report`, as a :class:`Report` (without the per-point
    overlays); ``FileFormatError`` if it is not one."""
    try:
        return Report.from_dict(read_report(path))
    except FileFormatError as e:
        raise FileFormatError(f"{path}: {e}") from None
