"""The synthetic Li dendrite phantom: exact labels, design truths and a realistic tomogram.

Geometry is in nm at a chosen voxel size. Dendrites of 100-200 nm diameter lie along the tilt
axis (y) on a carbon support film near the bottom of the volume, covered everywhere by a compact
SEI shell of set thickness. Aging presets add LiH: ``fresh`` none, ``24h`` an irregular region
reaching the surface (15-35 % of a dendrite's metal), ``7d`` a larger one (40-60 %) plus porous
extended-SEI clusters on the Li portion only. An optional Cu nanoparticle sits inside the metal
next to the LiH, mid-dendrite. Everything is drawn from one seed.

The specimen is a density map (g/cm³: Li 0.534, LiH 0.78, compact SEI 1.1 with granular texture,
extended SEI about 0.6 and porous, amorphous carbon 1.9, Cu 8.96), imaged as a bright-field tilt
series with Poisson noise (``imaging``) and reconstructed with the weighted back-projection of
this package, so the missing wedge, streaks and noise are those of real data. The tomogram's
grey values are about minus the density in g/cm³ (dense = dark, IMOD-like). Labels are exact
(ids of ``classes``; the film is background) and the truth dictionary is measured on them.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..classes import BACKGROUND, CU, LI, LIH, PHASE_NAMES, SEI
from ..errors import FileFormatError, InputError
from ..jobs import Job, Progress, stop_requested
from . import geometry, imaging
from .wbp import SLICES_PER_STEP, WBPSettings, reconstruct

Aging = Literal["fresh", "24h", "7d"]

#: Mass densities (g/cm³) of the phases; the contrast of the tomogram follows them.
DENSITY_G_CM3: dict[str, float] = {
    "Li": 0.534,
    "LiH": 0.78,
    "Cu": 8.96,
    "SEI": 1.1,
    "extended SEI": 0.6,
    "carbon": 1.9,
}


@dataclass(frozen=True)
class AgingPreset:
    """What a state of aging looks like: SEI thickness, LiH fraction range, extended SEI."""

    sei_thickness_nm: float
    lih_fraction: tuple[float, float]
    extended_sei: bool


PRESETS: dict[str, AgingPreset] = {
    "fresh": AgingPreset(10.0, (0.0, 0.0), False),
    "24h": AgingPreset(12.0, (0.15, 0.35), False),
    "7d": AgingPreset(14.0, (0.40, 0.60), True),
}

# Relative modulation of a dendrite's radius: along its axis and around it (bounds).
_RADIUS_WOBBLE_AXIAL = 0.04
_RADIUS_WOBBLE_AROUND = 0.03
_MARGIN_NM = 10.0


def _film_layers(spec: PhantomSpec) -> tuple[int, int, float]:
    """First voxel layer of the film, its number of layers, and its top surface in nm."""
    h = float(spec.voxel_size_nm)
    k0 = max(1, round(_MARGIN_NM / h))
    n_film = max(1, round(spec.film_thickness_nm / h))
    return k0, n_film, (k0 + n_film - 0.5) * h


def _radius_range(spec: PhantomSpec) -> tuple[float, float]:
    """Dendrite radii (nm) to draw from: the spec's range, capped by what the thickness holds."""
    h = float(spec.voxel_size_nm)
    nz = int(spec.shape[0])
    t_max = max(spec.thickness_on_li_nm, spec.thickness_on_lih_nm)
    film_top = _film_layers(spec)[2]
    wobble = 1 + _RADIUS_WOBBLE_AXIAL + _RADIUS_WOBBLE_AROUND
    top = (nz - 0.5) * h - _MARGIN_NM
    r_fit = (top - film_top - 2 * t_max - h) / (2 * wobble)
    r_lo, r_hi = spec.diameter_nm[0] / 2, min(spec.diameter_nm[1] / 2, r_fit)
    if r_hi < r_lo:
        need = math.ceil((2 * r_lo * wobble + 2 * t_max + film_top + _MARGIN_NM + 2 * h) / h)
        raise InputError(
            f"a dendrite of {2 * r_lo:.0f} nm does not fit in {nz} voxels of {h:g} nm along z; "
            f"use at least {need}"
        )
    return r_lo, r_hi


def _half_widths(spec: PhantomSpec, radii, excursion) -> np.ndarray:
    """Room (nm) each dendrite needs on either side of its mean axis, shell included."""
    wobble = 1 + _RADIUS_WOBBLE_AXIAL + _RADIUS_WOBBLE_AROUND
    t_max = max(spec.thickness_on_li_nm, spec.thickness_on_lih_nm)
    return np.asarray(radii) * wobble + t_max + np.asarray(excursion) + spec.voxel_size_nm


def _worst_excursion(spec: PhantomSpec) -> float:
    """Largest sideways excursion of an axis: 4° off y for rods, a 15 % sagitta when bent."""
    length = spec.shape[1] * spec.voxel_size_nm
    return 0.15 * length * 2 / 3 if spec.bent else math.tan(math.radians(4)) * length / 2


def _check_room(spec: PhantomSpec) -> None:
    """Raise ``InputError`` unless the dendrites fit the volume (checked before any work)."""
    r_lo, _ = _radius_range(spec)
    n = int(spec.n_dendrites)
    room = spec.shape[2] * spec.voxel_size_nm - 2 * _MARGIN_NM
    if 2 * n * float(_half_widths(spec, r_lo, _worst_excursion(spec))) > room:
        raise InputError(
            f"{n} dendrites of {2 * r_lo:.0f} nm do not fit side by side in {spec.shape[2]} "
            f"voxels of {spec.voxel_size_nm:g} nm along x"
        )


@dataclass(frozen=True)
class PhantomSpec:
    """What to simulate. The defaults give the sample: a 24 h dendrite in a few seconds.

    ``shape`` is (z, y, x) in voxels of ``voxel_size_nm``; ``diameter_nm`` the range dendrite
    diameters are drawn from (capped by what the thickness holds). ``None`` for
    ``sei_thickness_nm`` and ``lih_fraction`` means the aging preset's value (the LiH fraction
    is then drawn per dendrite); ``sei_thickness_on_lih_nm`` defaults to the thickness on Li.
    The tilt series covers ±``tilt_range_deg`` in ``tilt_step_deg`` steps with a total dose of
    ``dose_e_per_A2`` and is reconstructed with ``wbp`` (its thickness is the phantom's).
    """

    shape: tuple[int, int, int] = (96, 160, 160)
    voxel_size_nm: float = 2.0
    aging: Aging = "24h"
    seed: int = 0
    n_dendrites: int = 1
    bent: bool = False
    cu: bool = True
    sei_thickness_nm: float | None = None
    sei_thickness_on_lih_nm: float | None = None
    lih_fraction: float | None = None
    diameter_nm: tuple[float, float] = (100.0, 200.0)
    film_thickness_nm: float = 15.0
    dose_e_per_A2: float = 400.0
    tilt_range_deg: float = 60.0
    tilt_step_deg: float = 1.0
    psf_fwhm_nm: float = 2.0
    wbp: WBPSettings = field(default_factory=WBPSettings)

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or min(int(n) for n in self.shape) < 16:
            raise InputError(f"the phantom shape must be 3 sizes of at least 16, not {self.shape}")
        if not self.voxel_size_nm > 0:
            raise InputError("the voxel size must be positive")
        if self.aging not in PRESETS:
            raise InputError(f"unknown aging {self.aging!r}: use fresh, 24h or 7d")
        if int(self.n_dendrites) < 1:
            raise InputError("the phantom needs at least one dendrite")
        for name in ("sei_thickness_nm", "sei_thickness_on_lih_nm"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"{name.replace('_', ' ')} must be positive")
        if self.lih_fraction is not None and not 0.0 <= self.lih_fraction <= 0.9:
            raise InputError("the LiH fraction must lie between 0 and 0.9")
        lo, hi = self.diameter_nm
        if not 0 < lo <= hi:
            raise InputError(f"the diameter range {self.diameter_nm} is not a range")
        if not self.film_thickness_nm > 0:
            raise InputError("the film thickness must be positive")
        if not self.dose_e_per_A2 > 0:
            raise InputError("the dose must be positive")
        if not 0 < self.tilt_range_deg <= 90 or not self.tilt_step_deg > 0:
            raise InputError("the tilt range must lie in (0, 90] degrees and the step be positive")
        if self.psf_fwhm_nm < 0:
            raise InputError("the point-spread width cannot be negative")
        _check_room(self)

    @property
    def preset(self) -> AgingPreset:
        return PRESETS[self.aging]

    @property
    def thickness_on_li_nm(self) -> float:
        return self.sei_thickness_nm or self.preset.sei_thickness_nm

    @property
    def thickness_on_lih_nm(self) -> float:
        return self.sei_thickness_on_lih_nm or self.thickness_on_li_nm

    @property
    def angles_deg(self) -> np.ndarray:
        n = math.floor(2 * self.tilt_range_deg / self.tilt_step_deg + 1e-9)
        return -self.tilt_range_deg + self.tilt_step_deg * np.arange(n + 1)


@dataclass(frozen=True, eq=False)
class Phantom:
    """A simulated tomogram (float32, z y x, ≈ minus density in g/cm³) and its exact labels."""

    tomogram: np.ndarray
    labels: np.ndarray
    voxel_size_nm: tuple[float, float, float]
    truth: dict
    spec: PhantomSpec
    tilt_series: np.ndarray  # contrast images I/I0 - 1 (view, y, x) the tomogram came from
    angles_deg: np.ndarray
    stopped: bool = False


def simulate(
    spec: PhantomSpec = PhantomSpec(), stop: threading.Event | None = None
) -> Job[Phantom]:
    """Build the specimen, image it and reconstruct it; a job yielding progress per step."""
    h = float(spec.voxel_size_nm)
    shape = tuple(int(n) for n in spec.shape)
    angles = spec.angles_deg
    n_chunks = math.ceil(shape[1] / SLICES_PER_STEP) * len(
        geometry.backprojection_blocks(shape[2], shape[0], len(angles))
    )
    total = 2 + n_chunks
    yield Progress(0, total, "building the specimen")
    rng = np.random.default_rng(spec.seed)
    specimen = build_specimen(spec, rng)
    empty = np.zeros(shape, np.float32)

    def result(tomogram, tilts, stopped, truth=specimen.truth):
        return Phantom(tomogram, specimen.labels, (h, h, h), truth, spec, tilts, angles, stopped)

    if stop_requested(stop):
        return result(empty, np.zeros((0, *shape[1:]), np.float32), True)
    yield Progress(1, total, "imaging the tilt series")
    tilts = imaging.tilt_series(
        specimen.density,
        h,
        angles,
        dose_e_per_A2=spec.dose_e_per_A2,
        psf_fwhm_nm=spec.psf_fwhm_nm,
        rng=rng,
        slab_mass_nm=specimen.slab_mass_nm,
        device=spec.wbp.device,
    )
    if stop_requested(stop):
        return result(empty, tilts, True)
    yield Progress(2, total, "reconstructing")
    job = reconstruct(
        tilts, angles, WBPSettings(**{**asdict(spec.wbp), "thickness": shape[0]}), stop
    )
    while True:
        try:
            p = next(job)
        except StopIteration as end:
            rec = end.value
            break
        yield Progress(2 + p.done, total, f"reconstructing {p.message}")
    tomogram = rec.volume * np.float32(imaging.contrast_to_density(h))
    truth = {**specimen.truth, "imaging": _imaging_truth(spec, len(angles))}
    if not rec.stopped:
        truth["grey_values"] = grey_values(tomogram, specimen.labels, specimen.regions, h)
    return result(tomogram, tilts, rec.stopped, truth)


def write_phantom(phantom: Phantom, outdir: str | Path) -> dict[str, Path]:
    """Write tomogram.mrc, labels.mrc, truth.json, tiltseries.mrc and tiltseries.tlt (atomically)."""
    from ..io import atomic_write_bytes, write_angles, write_mrc
    from ..io.tiltseries import TiltSeries, write_tilt_series

    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise FileFormatError(f"{outdir} exists and is not a folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileFormatError(f"could not create {outdir}: {e.strerror or e}") from e
    paths = {
        "tomogram": outdir / "tomogram.mrc",
        "labels": outdir / "labels.mrc",
        "truth": outdir / "truth.json",
        "tilt_series": outdir / "tiltseries.mrc",
        "angles": outdir / "tiltseries.tlt",
    }
    h = phantom.voxel_size_nm
    write_mrc(paths["tomogram"], phantom.tomogram, voxel_size_nm=h)
    write_mrc(paths["labels"], phantom.labels, voxel_size_nm=h, labels=True)
    write_tilt_series(
        paths["tilt_series"],
        TiltSeries(phantom.tilt_series, np.asarray(phantom.angles_deg, float), float(h[-1])),
    )
    write_angles(paths["angles"], phantom.angles_deg)
    atomic_write_bytes(paths["truth"], (json.dumps(phantom.truth, indent=2) + "\n").encode())
    return paths


# --- the specimen ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Specimen:
    """Labels, density (without the uniform part of the film), film slab mass, truths."""

    labels: np.ndarray
    density: np.ndarray
    slab_mass_nm: float
    regions: dict[str, np.ndarray]  # boolean masks of sub-classes: film, extended SEI
    truth: dict


@dataclass(frozen=True)
class _Dendrite:
    """Axis and radius of one dendrite, all in nm; the axis runs along y."""

    radius: float
    x0: float
    slope: float  # straight: dx/dy of the axis (a few degrees off y)
    sagitta: float  # bent: lateral excursion of a parabolic arc
    axial: tuple[tuple[float, float, float], ...]  # (amplitude, wavelength, phase) along y
    around: tuple[tuple[int, float, float], ...]  # (order, amplitude, phase) around the axis
    z0: float = 0.0  # set once the film is known: the shell then rests on it

    def x_axis(self, y: np.ndarray, length: float) -> np.ndarray:
        s = 2 * (y - length / 2) / length
        return self.x0 + self.slope * (y - length / 2) + self.sagitta * (s**2 - 1 / 3)

    def axis_slope(self, y: np.ndarray, length: float) -> np.ndarray:
        s = 2 * (y - length / 2) / length
        return self.slope + self.sagitta * 4 * s / length

    def radius_at(self, y: np.ndarray, phi: np.ndarray) -> np.ndarray:
        r = np.ones(np.broadcast(y, phi).shape)
        for amp, wavelength, phase in self.axial:
            r = r + amp * np.sin(2 * np.pi * y / wavelength + phase)
        for order, amp, phase in self.around:
            r = r + amp * np.cos(order * phi + phase)
        return self.radius * r

    def lowest_offset(self, y: np.ndarray) -> np.ndarray:
        """Depth of the metal's lowest point below the axis, per y."""
        phi = np.linspace(-np.pi, 0, 73)
        r = self.radius_at(y[:, None], phi[None, :])
        return -(r * np.sin(phi)[None, :]).min(axis=1)


def build_specimen(spec: PhantomSpec, rng: np.random.Generator) -> Specimen:
    """Labels, density and truths of the specimen described by ``spec``."""
    from scipy import ndimage

    h = float(spec.voxel_size_nm)
    nz, ny, nx = (int(n) for n in spec.shape)
    z = np.arange(nz) * h
    y = np.arange(ny) * h
    x = np.arange(nx) * h
    t_li, t_lih = spec.thickness_on_li_nm, spec.thickness_on_lih_nm
    t_max = max(t_li, t_lih)

    # Carbon film: whole voxels near the bottom; its top surface is where the shell rests.
    k0, n_film, film_top = _film_layers(spec)
    film = np.zeros(nz, bool)
    film[k0 : k0 + n_film] = True

    dendrites = _draw_dendrites(spec, rng, film_top)
    labels = np.full((nz, ny, nx), BACKGROUND, np.uint8)
    owner = np.zeros((nz, ny, nx), np.uint8)  # which dendrite (1..n) a metal voxel belongs to
    depth = np.full((nz, ny, nx), np.inf, np.float32)  # beyond the nearest metal surface, nm
    for i, d in enumerate(dendrites, start=1):
        depth_i = _depth_outside(d, z, y, x, reach=t_max + 2 * h)
        owner[depth_i <= 0] = i
        np.minimum(depth, depth_i, out=depth)
    metal = owner > 0
    labels[metal] = LI

    # LiH: one irregular region per dendrite, grown from a point on its surface.
    targets = _lih_targets(spec, rng)
    for i, d in enumerate(dendrites, start=1):
        if targets[i - 1] > 0:
            _grow_lih(labels, owner == i, d, targets[i - 1], z, y, x, rng)

    cu_truth = []
    if spec.cu:
        cu_truth = _place_cu(labels, owner, dendrites, rng, h, ny)

    # Compact SEI: every voxel within the set thickness of the metal surface; where the
    # thickness differs on Li and LiH, the phase of the nearest metal voxel decides.
    film3 = np.broadcast_to(film[:, None, None], labels.shape)
    free = (labels == BACKGROUND) & ~film3
    if t_li == t_lih:
        shell = free & (depth <= t_li)
    else:
        box = _box(metal, pad=math.ceil(t_max / h) + 2)
        _, nearest = ndimage.distance_transform_edt(~metal[box], return_indices=True)
        on_lih = np.zeros(labels.shape, bool)
        on_lih[box] = labels[box][tuple(nearest)] == LIH
        shell = free & (depth <= np.where(on_lih, t_lih, t_li))
    labels[shell] = SEI
    thickness_truth = _shell_thickness(labels, h, t_li, t_lih)

    extended = np.zeros(labels.shape, bool)
    ext_truth = {"n_clusters": 0, "volume_nm3": 0.0, "max_extent_nm": 0.0}
    if spec.preset.extended_sei:
        extended, ext_truth = _extended_sei(labels, film3, dendrites, rng, h, z, y, x)
        labels[extended] = SEI

    texture = _smooth_noise(rng, labels.shape, h, correlation_nm=2 * h)
    pores = _smooth_noise(rng, labels.shape, h, correlation_nm=4 * h)  # also the film's grain
    rho = DENSITY_G_CM3
    density = np.zeros(labels.shape, np.float32)
    density[labels == LI] = rho["Li"]
    density[labels == LIH] = rho["LiH"]
    density[labels == CU] = rho["Cu"]
    density[shell] = rho["SEI"] * (1 + 0.1 * texture[shell])
    density[extended] = rho["extended SEI"] * np.clip(1 + 0.5 * pores[extended], 0.1, 1.8)
    # The film's uniform part is a slab reaching beyond the field of view (added per ray by the
    # imaging); only its granular texture is in the volume, where it shows the film's height.
    density[film3] = rho["carbon"] * 0.3 * pores[film3]

    truth = _truth(
        spec,
        labels,
        dendrites,
        owner,
        targets,
        cu_truth,
        thickness_truth,
        ext_truth,
        film_top,
        n_film * h,
    )
    return Specimen(
        labels,
        density,
        rho["carbon"] * n_film * h,
        {"film": film3, "extended SEI": extended},
        truth,
    )


def _draw_dendrites(spec: PhantomSpec, rng, film_top: float) -> list[_Dendrite]:
    h = float(spec.voxel_size_nm)
    ny, nx = (int(n) for n in spec.shape[1:])
    length = ny * h
    t_max = max(spec.thickness_on_li_nm, spec.thickness_on_lih_nm)
    r_lo, r_hi = _radius_range(spec)
    n = int(spec.n_dendrites)
    radii = rng.uniform(r_lo, r_hi, n)
    slopes = np.zeros(n) if spec.bent else np.tan(np.deg2rad(rng.uniform(-4, 4, n)))
    sagittas = (
        rng.uniform(0.08, 0.15, n) * length * rng.choice([-1, 1], n) if spec.bent else np.zeros(n)
    )
    excursion = np.abs(slopes) * length / 2 + np.abs(sagittas) * 2 / 3
    room = nx * h - 2 * _MARGIN_NM
    free = room - 2 * _half_widths(spec, radii, excursion).sum()
    if free < 0:  # too wide together: shrink towards the smallest diameter (fits, see spec)
        radii = np.full(n, r_lo)
        free = room - 2 * _half_widths(spec, radii, excursion).sum()
    gaps = rng.dirichlet(np.ones(n + 1)) * free
    widths = 2 * _half_widths(spec, radii, excursion)
    left = _MARGIN_NM + np.cumsum(gaps[:-1]) + np.concatenate(([0], np.cumsum(widths)[:-1]))
    dendrites = []
    for i in range(n):
        axial = tuple(
            (
                rng.uniform(0.3, 1.0) * _RADIUS_WOBBLE_AXIAL / 3,
                rng.uniform(150, 600),
                rng.uniform(0, 2 * np.pi),
            )
            for _ in range(3)
        )
        around = tuple(
            (order, rng.uniform(0.3, 1.0) * _RADIUS_WOBBLE_AROUND / 2, rng.uniform(0, 2 * np.pi))
            for order in (2, 3)
        )
        d = _Dendrite(radii[i], left[i] + widths[i] / 2, slopes[i], sagittas[i], axial, around)
        dendrites.append(d)
    return [_rest_on_film(d, film_top, t_max, h, length, ny) for d in dendrites]


def _rest_on_film(d: _Dendrite, film_top, t_max, h, length, ny) -> _Dendrite:
    """Set the axis height so that the SEI shell's lowest point touches the film."""
    from dataclasses import replace

    y = np.arange(ny) * h
    return replace(d, z0=film_top + t_max + h / 2 + float(d.lowest_offset(y).max()))


def _depth_outside(d: _Dendrite, z, y, x, reach: float) -> np.ndarray:
    """Radial distance (nm) of each voxel centre beyond the dendrite's metal surface.

    Negative inside the metal; +inf farther out than ``reach``. Measured across the axis (the
    axis is nearly straight on the scale of a radius), so a shell of thickness t around the
    metal is exactly the voxels with 0 < depth ≤ t.
    """
    length = y.size * (y[1] - y[0]) if y.size > 1 else 1.0
    xc = d.x_axis(y, length)[None, :, None]
    cos = (1 / np.sqrt(1 + d.axis_slope(y, length) ** 2))[None, :, None]
    dx = (x[None, None, :] - xc) * cos
    dz = (z - d.z0)[:, None, None]
    rho = np.hypot(dx, dz)
    near = rho <= d.radius * (1 + _RADIUS_WOBBLE_AXIAL + _RADIUS_WOBBLE_AROUND) + reach
    depth = np.full(rho.shape, np.inf, np.float32)
    yy = np.broadcast_to(y[None, :, None], rho.shape)[near]
    phi = np.arctan2(np.broadcast_to(dz, rho.shape)[near], np.broadcast_to(dx, rho.shape)[near])
    depth[near] = rho[near] - d.radius_at(yy, phi)
    return depth


def _lih_targets(spec: PhantomSpec, rng) -> list[float]:
    lo, hi = spec.preset.lih_fraction
    if spec.lih_fraction is not None:
        return [float(spec.lih_fraction)] * int(spec.n_dendrites)
    return [float(rng.uniform(lo, hi)) if hi > 0 else 0.0 for _ in range(int(spec.n_dendrites))]


def _smooth_noise(rng, shape, h: float, correlation_nm: float, at=None) -> np.ndarray:
    """Gaussian random field of about unit variance, correlated over about ``correlation_nm``.

    Drawn on a grid coarse enough for the correlation and interpolated: the whole field, or
    only its values at the voxel indices ``at`` (a tuple of index arrays).
    """
    from scipy import ndimage

    sigma = correlation_nm / h
    step = max(1, int(sigma / 2))
    coarse_shape = tuple(math.ceil(n / step) + 2 for n in shape)
    field = ndimage.gaussian_filter(rng.standard_normal(coarse_shape), sigma / step, mode="wrap")
    field = (field - field.mean()) / field.std()
    if at is not None:
        return ndimage.map_coordinates(field, [np.asarray(i) / step for i in at], order=1)
    if step > 1:
        field = ndimage.zoom(field, step, order=1)
    return field[tuple(slice(0, n) for n in shape)].astype(np.float32)


def _grow_lih(labels, metal, d: _Dendrite, fraction, z, y, x, rng) -> None:
    """Turn ``fraction`` of this dendrite's metal into one irregular LiH region at its surface."""
    from scipy import ndimage

    h = y[1] - y[0]
    length = y.size * h
    ys = rng.uniform(0.3, 0.7) * length
    phi = rng.uniform(np.deg2rad(-10), np.deg2rad(190))  # anywhere but the contact with the film
    r = float(d.radius_at(np.array(ys), np.array(phi)))
    seed = np.array(
        [d.z0 + r * np.sin(phi), ys, float(d.x_axis(np.array(ys), length)) + r * np.cos(phi)]
    )
    idx = np.nonzero(metal)
    coords = np.stack([z[idx[0]], y[idx[1]], x[idx[2]]], axis=1)
    noise = _smooth_noise(rng, metal.shape, y[1] - y[0], correlation_nm=35.0, at=idx)
    score = np.linalg.norm(coords - seed, axis=1) / d.radius + 0.4 * noise
    chosen = score <= np.quantile(score, fraction)
    region = np.zeros(metal.shape, bool)
    region[tuple(i[chosen] for i in idx)] = True
    parts, n = ndimage.label(region)
    if n > 1:  # one connected region: keep the largest piece
        sizes = np.bincount(parts.ravel())[1:]
        region = parts == (1 + int(np.argmax(sizes)))
    labels[region] = LIH


def _place_cu(labels, owner, dendrites, rng, h, ny) -> list[dict]:
    """One Cu particle (radius 8-15 nm) inside the metal, next to the LiH, mid-dendrite."""
    from scipy import ndimage

    radius = float(rng.uniform(8.0, 15.0))
    lih_counts = [
        np.count_nonzero((owner == i) & (labels == LIH)) for i in range(1, len(dendrites) + 1)
    ]
    host = 1 + int(np.argmax(lih_counts))
    box = _box(owner == host, pad=1)
    metal = owner[box] == host
    depth = ndimage.distance_transform_edt(metal, sampling=h)
    y0 = box[1].start
    mid = np.zeros(metal.shape, bool)
    mid[:, max(0, int(0.3 * ny) - y0) : max(0, int(0.7 * ny) + 1 - y0), :] = True
    fits = (depth >= radius + h) & mid
    if lih_counts[host - 1]:
        near = ndimage.distance_transform_edt(labels[box] != LIH, sampling=h) <= radius + 8.0
        if np.any(fits & near):
            fits &= near
    candidates = np.argwhere(fits)
    if len(candidates) == 0:
        return []
    centre = candidates[rng.integers(len(candidates))] + [b.start for b in box]
    zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in labels.shape)]
    ball = (
        (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2
    ) * h**2 <= radius**2
    labels[ball] = CU
    volume = float(np.count_nonzero(ball)) * h**3
    return [
        {
            "dendrite": host,
            "radius_nm": radius,
            "volume_nm3": volume,
            "equivalent_diameter_nm": (6 * volume / np.pi) ** (1 / 3),
            "centroid_nm": [float(c) for c in np.argwhere(ball).mean(axis=0) * h],
        }
    ]


def _shell_thickness(labels, h: float, t_li: float, t_lih: float) -> dict:
    """The shell thickness the labels were built with, and a voxel-level check of it.

    The check, at every metal voxel touching the SEI: the distance to the nearest voxel that
    is neither metal, Cu nor SEI, less one voxel (the half voxels between those centres and
    the two interfaces). It reads slightly below the design on curved surfaces.
    """
    from scipy import ndimage

    labels = labels[_box(labels != BACKGROUND, pad=2)]
    distance = ndimage.distance_transform_edt(labels != BACKGROUND, sampling=h) - h
    touches = ndimage.binary_dilation(
        labels == SEI, structure=ndimage.generate_binary_structure(3, 1)
    )
    check = {"definition": "nearest-outside distance from metal voxels next to SEI, minus a voxel"}
    for phase, name in ((LI, "on_Li"), (LIH, "on_LiH")):
        check[name] = _stats(distance[(labels == phase) & touches])
    return {"nominal_on_Li": t_li, "nominal_on_LiH": t_lih, "voxel_check": check}


def _box(mask: np.ndarray, pad: int) -> tuple[slice, ...]:
    """Bounding box of ``mask`` grown by ``pad`` voxels, clipped to the array."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        lo, hi = (hit[0], hit[-1] + 1) if hit.size else (0, 0)
        box.append(slice(max(0, lo - pad), min(mask.shape[axis], hi + pad)))
    return tuple(box)


def _stats(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"median": None, "mean": None, "n_points": 0}
    return {
        "median": float(np.median(values)),
        "mean": float(values.mean()),
        "n_points": int(values.size),
    }


def _extended_sei(labels, film3, dendrites, rng, h, z, y, x) -> tuple[np.ndarray, dict]:
    """Porous SEI clusters (up to ~100 nm) grown outward from the shell on Li, never on LiH."""
    from scipy import ndimage

    metal = (labels == LI) | (labels == LIH) | (labels == CU)
    d_metal, nearest = ndimage.distance_transform_edt(~metal, sampling=h, return_indices=True)
    nearest_label = labels[tuple(nearest)]
    free = (labels == BACKGROUND) & ~film3
    on_li = free & (nearest_label == LI) & (nearest_label != LIH)
    # anchors: free voxels just outside the compact shell, above Li
    outer = free & ndimage.binary_dilation(labels == SEI) & (nearest_label == LI)
    anchors = np.argwhere(outer)
    clusters = np.zeros(labels.shape, bool)
    length = y.size * h
    n_clusters = 0
    if len(anchors):
        wanted = int(rng.integers(3, 6)) * len(dendrites)
        picks = anchors[rng.choice(len(anchors), size=min(wanted, len(anchors)), replace=False)]
        zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in labels.shape)]
        for p in picks:
            i = int(
                np.argmin([abs(x[p[2]] - d.x_axis(np.array(y[p[1]]), length)) for d in dendrites])
            )
            d = dendrites[i]
            axis = np.array([d.z0, y[p[1]], float(d.x_axis(np.array(y[p[1]]), length))])
            pos = np.array([z[p[0]], y[p[1]], x[p[2]]])
            out = pos - axis
            out[1] = 0.0
            out /= np.linalg.norm(out) + 1e-9
            reach = rng.uniform(40.0, 100.0)
            blob = np.zeros(labels.shape, bool)
            for s in np.linspace(0.15, 0.8, int(rng.integers(3, 7))) * reach:
                r = rng.uniform(10.0, 25.0)
                c = pos + out * s + rng.normal(0, 8.0, 3)
                c_vox = c / h
                blob |= (
                    (zz - c_vox[0]) ** 2 + (yy - c_vox[1]) ** 2 + (xx - c_vox[2]) ** 2
                ) * h**2 <= r**2
            clusters |= blob
            n_clusters += 1
    clusters &= on_li
    # keep only what is attached to the compact shell
    parts = ndimage.label(clusters | (labels == SEI))[0]
    attached = np.unique(parts[labels == SEI])
    clusters &= np.isin(parts, attached[attached > 0])
    volume = float(np.count_nonzero(clusters)) * h**3
    extent = float(d_metal[clusters].max()) if clusters.any() else 0.0
    return clusters, {"n_clusters": n_clusters, "volume_nm3": volume, "max_extent_nm": extent}


def _truth(
    spec, labels, dendrites, owner, targets, cu_truth, thickness, extended, film_top, film_nm
) -> dict:
    h = float(spec.voxel_size_nm)
    voxel = h**3
    counts = {name: int(np.count_nonzero(labels == cid)) for cid, name in PHASE_NAMES.items()}
    metal_all = counts["Li"] + counts["LiH"]
    ny = labels.shape[1]
    y = np.arange(ny) * h
    length = ny * h
    per_dendrite = []
    for i, d in enumerate(dendrites, start=1):
        mine = owner == i
        li = int(np.count_nonzero(mine & (labels == LI)))
        lih = int(np.count_nonzero(mine & (labels == LIH)))
        cu = int(np.count_nonzero(mine & (labels == CU)))
        # metal and Cu per y slice, turned perpendicular to the (possibly bent) axis
        cos = 1 / np.sqrt(1 + d.axis_slope(y, length) ** 2)
        area = np.count_nonzero(mine, axis=(0, 2)) * h**2 * cos
        per_dendrite.append(
            {
                "id": i,
                "diameter_nm": 2 * d.radius,
                "diameter_measured_nm": float(np.mean(2 * np.sqrt(area / np.pi))),
                "volume_nm3": (li + lih + cu) * voxel,
                "lih_volume_fraction": lih / (li + lih) if li + lih else 0.0,
                "lih_fraction_target": targets[i - 1],
                "bent": bool(spec.bent),
                "axis_nm": {
                    "y": [float(v) for v in y[:: max(1, ny // 16)]],
                    "x": [float(v) for v in d.x_axis(y[:: max(1, ny // 16)], length)],
                    "z": float(d.z0),
                },
            }
        )
    return {
        "aging": spec.aging,
        "seed": int(spec.seed),
        "shape": [int(n) for n in labels.shape],
        "voxel_size_nm": [h, h, h],
        "positions": "nm from the centre of voxel (0, 0, 0): index × voxel size",
        "label_ids": {"background": BACKGROUND, "Li": LI, "LiH": LIH, "Cu": CU, "SEI": SEI},
        "densities_g_cm3": dict(DENSITY_G_CM3),
        "film": {"thickness_nm": film_nm, "top_nm": film_top, "label": BACKGROUND},
        "volumes_nm3": {name: n * voxel for name, n in counts.items()},
        "lih_volume_fraction": counts["LiH"] / metal_all if metal_all else 0.0,
        "sei_thickness_nm": thickness,
        "extended_sei": extended,
        "cu_particles": cu_truth,
        "dendrites": per_dendrite,
    }


def _imaging_truth(spec: PhantomSpec, n_views: int) -> dict:
    return {
        "tilt_angles_deg": {
            "min": -spec.tilt_range_deg,
            "max": spec.tilt_range_deg,
            "step": spec.tilt_step_deg,
            "n": n_views,
        },
        "dose_e_per_A2": spec.dose_e_per_A2,
        "electrons_per_pixel_per_view": imaging.electrons_per_pixel(
            spec.dose_e_per_A2, spec.voxel_size_nm, n_views
        ),
        "attenuation_length_nm": imaging.ATTENUATION_LENGTH_NM,
        "psf_fwhm_nm": spec.psf_fwhm_nm,
        "wbp": {k: v for k, v in asdict(spec.wbp).items() if k not in ("thickness", "device")},
    }


def grey_values(tomogram, labels, regions, h: float) -> dict:
    """Mean grey value per material, the noise in empty vacuum and the LiH/Li contrast-to-noise."""
    from scipy import ndimage

    film, extended = regions["film"], regions["extended SEI"]
    vacuum = (labels == BACKGROUND) & ~film
    # empty vacuum: over 20 nm from anything, found on a 2× coarser grid (cheap, conservative)
    coarse = ndimage.distance_transform_edt(vacuum[::2, ::2, ::2], sampling=2 * h) > 20.0 + 2 * h
    far = (
        vacuum
        & np.repeat(np.repeat(np.repeat(coarse, 2, 0), 2, 1), 2, 2)[
            tuple(slice(0, n) for n in vacuum.shape)
        ]
    )
    means = {
        "vacuum": vacuum,
        "film": film & (labels == BACKGROUND),
        "Li": labels == LI,
        "LiH": labels == LIH,
        "SEI": (labels == SEI) & ~extended,
        "extended SEI": extended,
        "Cu": labels == CU,
    }
    mean = {k: float(tomogram[m].mean()) if m.any() else None for k, m in means.items()}
    noise = float(tomogram[far].std()) if far.any() else None
    cnr = None
    if noise and mean["Li"] is not None and mean["LiH"] is not None:
        cnr = (mean["Li"] - mean["LiH"]) / noise
    return {
        "convention": "about minus the density in g/cm³: vacuum 0, denser is darker",
        "mean": mean,
        "noise_sd": noise,
        "cnr_lih_li": cnr,
    }
