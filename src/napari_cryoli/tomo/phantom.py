"""The synthetic Li dendrite phantom: exact labels, design truths and a realistic tomogram.

Geometry is in nm at a chosen voxel size. Dendrites of 100-200 nm diameter lie on a carbon
support film near the bottom of the volume, at a set in-plane angle to the tilt axis (y; 0 along
it, 90 across it), covered everywhere by a compact SEI shell of set thickness. Aging presets add
LiH: ``fresh`` none, ``24h`` an irregular region reaching the surface (15-35 % of a dendrite's
metal), ``7d`` a larger one (40-60 %) plus porous extended-SEI clusters on the Li portion. An
optional Cu nanoparticle sits inside the metal next to the LiH, mid-dendrite. Each of these
choices can be overridden (LiH in 0-3 pieces, buried or at the surface; extended SEI on Li, LiH
or both; Cu anywhere in the metal) so that simulated data need not carry the presets' pattern.
The film can be whole, absent or end at a hole's edge; gold fiducials and ice contamination
(both labelled background) can be scattered around. Everything is drawn from one seed.

The specimen is a density map (g/cm³: Li 0.534, LiH 0.78, compact SEI 1.1 by default with
granular texture, extended SEI about 0.6 and porous, amorphous carbon 1.9, Cu 8.96, gold 19.3,
ice 0.93), imaged as a bright-field tilt series with Poisson noise and, optionally, phase
contrast through a CTF and scattering weighted per element (``imaging``), and reconstructed with
the weighted back-projection of this package, so the missing wedge, streaks and noise are those of
real data. The tomogram's grey values are about minus the density in g/cm³ (dense = dark,
IMOD-like) unless the contrast is inverted. Labels are exact (ids of ``classes``; film, gold and
ice are background) and the truth dictionary is measured on them.
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
Film = Literal["full", "none", "holey"]
ExtendedOn = Literal["Li", "LiH", "both", "none"]
Scattering = Literal["density", "elemental"]

#: Mass densities (g/cm³) of the phases; the contrast of the tomogram follows them.
DENSITY_G_CM3: dict[str, float] = {
    "Li": 0.534,
    "LiH": 0.78,
    "Cu": 8.96,
    "SEI": 1.1,
    "extended SEI": 0.6,
    "carbon": 1.9,
    "gold": 19.3,
    "ice": 0.93,
}

#: What each material is made of (atoms per formula unit), for its scattering per mass.
COMPOSITION: dict[str, dict[str, int]] = {
    "Li": {"Li": 1},
    "LiH": {"Li": 1, "H": 1},
    "Cu": {"Cu": 1},
    "SEI": {"Li": 2, "C": 1, "O": 3},  # Li2CO3, the SEI's main inorganic part
    "extended SEI": {"Li": 2, "C": 1, "O": 3},
    "carbon": {"C": 1},
    "gold": {"Au": 1},
    "ice": {"H": 2, "O": 1},
}
_ATOMS = {"H": (1, 1.008), "Li": (3, 6.94), "C": (6, 12.011), "O": (8, 15.999),
          "Cu": (29, 63.546), "Au": (79, 196.967)}  # fmt: skip


def scattering_per_mass(material: str) -> float:
    """Elastic scattering per unit mass of ``material`` relative to carbon's.

    Elastic cross sections grow about as Z^3/2 per atom (Langmore, Wall & Isaacson 1973), so
    per mass heavy atoms scatter more: Cu about 2.0 and gold 2.9 times carbon, Li 0.61, LiH
    0.64 (its H adds electrons for little mass). Carbon, hence the film, is unchanged.
    """

    def per_mass(formula: dict[str, int]) -> float:
        z = sum(n * _ATOMS[a][0] ** 1.5 for a, n in formula.items())
        return z / sum(n * _ATOMS[a][1] for a, n in formula.items())

    return per_mass(COMPOSITION[material]) / per_mass(COMPOSITION["carbon"])


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


@dataclass(frozen=True)
class _Frame:
    """The dendrites' in-plane frame: v (nm) along their mean axis, u across it.

    At angle 0 it is the volume's own (v = y, u = x). Otherwise the field is turned by the
    angle about its centre and v, u run from 0 across the turned field's bounding box, whose
    corners the dendrites keep away from (``corner_nm``) so each crosses much of the field.
    """

    angle_deg: float
    ny: int
    nx: int
    h: float

    @property
    def turned(self) -> bool:
        return self.angle_deg % 180.0 != 0.0

    @property
    def _cos_sin(self) -> tuple[float, float]:
        a = math.radians(self.angle_deg)
        return math.cos(a), math.sin(a)

    @property
    def length(self) -> float:
        if not self.turned:
            return self.ny * self.h
        c, s = self._cos_sin
        return (abs(c) * self.ny + abs(s) * self.nx) * self.h

    @property
    def width(self) -> float:
        if not self.turned:
            return self.nx * self.h
        c, s = self._cos_sin
        return (abs(s) * self.ny + abs(c) * self.nx) * self.h

    @property
    def corner_nm(self) -> float:
        a = math.radians(self.angle_deg)
        return 0.3 * min(self.ny, self.nx) * self.h * abs(math.sin(2 * a)) if self.turned else 0.0

    @property
    def n_along(self) -> int:
        return self.ny if not self.turned else math.ceil(self.length / self.h)

    def at(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(v, u) of volume positions (y, x) in nm."""
        if not self.turned:
            return y, x
        c, s = self._cos_sin
        dy, dx = y - (self.ny - 1) * self.h / 2, x - (self.nx - 1) * self.h / 2
        return dy * c + dx * s + self.length / 2, -dy * s + dx * c + self.width / 2

    def to_volume(self, v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(y, x) in nm of frame positions (v, u)."""
        if not self.turned:
            return v, u
        c, s = self._cos_sin
        dv, du = v - self.length / 2, u - self.width / 2
        return (self.ny - 1) * self.h / 2 + dv * c - du * s, (
            self.nx - 1
        ) * self.h / 2 + dv * s + du * c

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(v, u) of every (y, x) voxel centre, as arrays broadcasting to (ny, nx)."""
        y, x = np.arange(self.ny) * self.h, np.arange(self.nx) * self.h
        return self.at(y[:, None], x[None, :])


def _frame(spec: PhantomSpec) -> _Frame:
    return _Frame(float(spec.axis_angle_deg), int(spec.shape[1]), int(spec.shape[2]),
                  float(spec.voxel_size_nm))  # fmt: skip


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
    """Largest sideways excursion of an axis: 4° off its mean for rods, a 15 % sagitta bent."""
    length = _frame(spec).length
    return 0.15 * length * 2 / 3 if spec.bent else math.tan(math.radians(4)) * length / 2


def _room(spec: PhantomSpec, frame: _Frame) -> float:
    """Width (nm) across their axis that the dendrites are laid side by side in."""
    room = frame.width - 2 * _MARGIN_NM
    if frame.corner_nm or spec.overhang_nm:
        room += 2 * spec.overhang_nm - frame.corner_nm
    return room


def required_thickness_nm(
    diameter_nm: float, sei_nm: float, film_thickness_nm: float, voxel_size_nm: float
) -> float:
    """Least z extent (nm) that holds a dendrite of ``diameter_nm`` on the film in its shell."""
    h = float(voxel_size_nm)
    wobble = 1 + _RADIUS_WOBBLE_AXIAL + _RADIUS_WOBBLE_AROUND
    k0 = max(1, round(_MARGIN_NM / h))
    film_top = (k0 + max(1, round(film_thickness_nm / h)) - 0.5) * h
    return diameter_nm * wobble + 2 * sei_nm + film_top + _MARGIN_NM + 2.5 * h


def _check_room(spec: PhantomSpec) -> None:
    """Raise ``InputError`` unless the dendrites fit the volume (checked before any work)."""
    r_lo, _ = _radius_range(spec)
    n = int(spec.n_dendrites)
    frame = _frame(spec)
    room = _room(spec, frame)
    if 2 * n * float(_half_widths(spec, r_lo, _worst_excursion(spec))) > room:
        where = (
            f"in {spec.shape[2]} voxels of {spec.voxel_size_nm:g} nm along x"
            if not frame.turned
            else f"in the {room:.0f} nm the field holds across them at {spec.axis_angle_deg:g}°"
        )
        raise InputError(f"{n} dendrites of {2 * r_lo:.0f} nm do not fit side by side {where}")


@dataclass(frozen=True)
class PhantomSpec:
    """What to simulate. The defaults give the sample: a 24 h dendrite in a few seconds.

    ``shape`` is (z, y, x) in voxels of ``voxel_size_nm``; ``diameter_nm`` the range dendrite
    diameters are drawn from (capped by what the thickness holds). ``None`` for
    ``sei_thickness_nm`` and ``lih_fraction`` means the aging preset's value (the LiH fraction
    is then drawn per dendrite); ``sei_thickness_on_lih_nm`` defaults to the thickness on Li.
    The tilt series covers ±``tilt_range_deg`` in ``tilt_step_deg`` steps with a total dose of
    ``dose_e_per_A2`` and is reconstructed with ``wbp`` (its thickness is the phantom's).

    Beyond the presets (the defaults reproduce them): ``axis_angle_deg`` turns the dendrites
    in-plane away from the tilt axis (90: across it, the worst case for the missing wedge);
    ``film`` is ``full``, ``none`` or ``holey`` (a hole's edge crosses the field);
    ``sei_density_g_cm3`` is the compact SEI's density; ``extended_sei_on`` puts the porous
    clusters on ``Li``, ``LiH``, ``both`` or ``none`` (``None``: the preset's, Li for 7 d);
    ``cu_anywhere`` buries the Cu anywhere in the metal rather than beside the LiH;
    ``lih_pieces`` (0-3) splits each dendrite's LiH into separate regions, buried when
    ``lih_interior``; ``fiducials`` gold beads of 5-15 nm and ``ice_blobs`` ice contaminations
    lie on the film or in the vacuum (all background). Imaging: ``scattering`` ``elemental``
    weights each material by its scattering per mass (``scattering_per_mass``); ``defocus_um``
    > 0 adds phase contrast through the CTF; ``denoise_sigma_nm`` smooths the tomogram as a
    denoiser would; ``inverted`` flips its sign (dense = bright). ``overhang_nm`` lets the
    outermost dendrites reach that far beyond the field's sides (a field inside a bundle).
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
    axis_angle_deg: float = 0.0
    film: Film = "full"
    sei_density_g_cm3: float = 1.1
    extended_sei_on: ExtendedOn | None = None
    cu_anywhere: bool = False
    lih_pieces: int | None = None
    lih_interior: bool = False
    fiducials: int = 0
    ice_blobs: int = 0
    scattering: Scattering = "density"
    defocus_um: float = 0.0
    denoise_sigma_nm: float = 0.0
    inverted: bool = False
    overhang_nm: float = 0.0

    def __post_init__(self) -> None:
        if not self.overhang_nm >= 0:
            raise InputError("the overhang cannot be negative")
        if not math.isfinite(self.axis_angle_deg):
            raise InputError("the axis angle must be a number of degrees")
        if self.film not in ("full", "none", "holey"):
            raise InputError(f"unknown film {self.film!r}: use full, none or holey")
        if self.scattering not in ("density", "elemental"):
            raise InputError(f"unknown scattering {self.scattering!r}: use density or elemental")
        if self.extended_sei_on not in (None, "Li", "LiH", "both", "none"):
            raise InputError(
                f"extended SEI on {self.extended_sei_on!r}: use Li, LiH, both or none"
            )
        if self.lih_pieces is not None and not 0 <= int(self.lih_pieces) <= 3:
            raise InputError("the LiH comes in 0 to 3 pieces")
        if not self.sei_density_g_cm3 > 0:
            raise InputError("the SEI density must be positive")
        if int(self.fiducials) < 0 or int(self.ice_blobs) < 0:
            raise InputError("the numbers of fiducials and ice blobs cannot be negative")
        if self.defocus_um < 0 or self.denoise_sigma_nm < 0:
            raise InputError("the defocus and the denoising width cannot be negative")
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
    def extended_sei_phases(self) -> tuple[int, ...]:
        """Label ids of the metal the extended SEI grows on (empty: none)."""
        on = self.extended_sei_on
        if on is None:
            on = "Li" if self.preset.extended_sei else "none"
        return {"Li": (LI,), "LiH": (LIH,), "both": (LI, LIH), "none": ()}[on]

    @property
    def angles_deg(self) -> np.ndarray:
        from .geometry import tilt_series_angles

        return tilt_series_angles(self.tilt_range_deg, self.tilt_step_deg)


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
    elemental = specimen.scattering is not None
    tilts = imaging.tilt_series(
        specimen.scattering if elemental else specimen.density,
        h,
        angles,
        dose_e_per_A2=spec.dose_e_per_A2,
        psf_fwhm_nm=spec.psf_fwhm_nm,
        rng=rng,
        slab_mass_nm=specimen.slab_mass_nm,
        slab_edge=specimen.film_edge,
        defocus_nm=1000.0 * spec.defocus_um,
        phase_density=specimen.density if elemental else None,
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
    if spec.denoise_sigma_nm > 0:
        from scipy.ndimage import gaussian_filter

        tomogram = gaussian_filter(tomogram, spec.denoise_sigma_nm / h, mode="nearest")
    if spec.inverted:
        tomogram = -tomogram
    truth = {**specimen.truth, "imaging": _imaging_truth(spec, len(angles))}
    if not rec.stopped:
        truth["grey_values"] = grey_values(
            tomogram, specimen.labels, specimen.regions, h, inverted=spec.inverted
        )
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
    regions: dict[str, np.ndarray]  # boolean masks of unlabelled parts: film, extended SEI, ...
    truth: dict
    film_edge: imaging.FilmEdge | None = None  # where the film's slab ends (holey film)
    scattering: np.ndarray | None = None  # density × scattering per mass (elemental imaging)


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
    frame = _frame(spec)
    v, u = frame.grid()
    t_li, t_lih = spec.thickness_on_li_nm, spec.thickness_on_lih_nm
    t_max = max(t_li, t_lih)

    # Carbon film: whole voxels near the bottom; its top surface is where the shell rests.
    k0, n_film, film_top = _film_layers(spec)
    film = np.zeros(nz, bool)
    film[k0 : k0 + n_film] = True

    dendrites = _draw_dendrites(spec, frame, rng, film_top)
    labels = np.full((nz, ny, nx), BACKGROUND, np.uint8)
    owner = np.zeros((nz, ny, nx), np.uint8)  # which dendrite (1..n) a metal voxel belongs to
    depth = np.full((nz, ny, nx), np.inf, np.float32)  # beyond the nearest metal surface, nm
    for i, d in enumerate(dendrites, start=1):
        depth_i = _depth_outside(d, z, v, u, frame.length, reach=t_max + 2 * h)
        owner[depth_i <= 0] = i
        np.minimum(depth, depth_i, out=depth)
    metal = owner > 0
    labels[metal] = LI

    # LiH: irregular regions per dendrite (by default one), grown from points on its surface.
    targets = _lih_targets(spec, rng)
    pieces = 1 if spec.lih_pieces is None else int(spec.lih_pieces)
    for i, d in enumerate(dendrites, start=1):
        if targets[i - 1] > 0:
            _grow_lih(
                labels, owner == i, d, targets[i - 1], z, frame, rng, pieces, spec.lih_interior
            )

    cu_truth = []
    if spec.cu:
        cu_truth = _place_cu(
            labels, owner, dendrites, rng, h, frame, spec.cu_anywhere,
            inside=spec.cu_anywhere or spec.overhang_nm > 0,
        )  # fmt: skip

    # The film: everywhere, nowhere, or on one side of a hole's edge.
    film_edge = None
    if spec.film == "full":
        film3 = np.broadcast_to(film[:, None, None], labels.shape)
    elif spec.film == "none":
        film3 = np.zeros(labels.shape, bool)
    else:
        height = (k0 + (n_film - 1) / 2 - (nz - 1) / 2) * h
        film_edge = _draw_film_edge(frame, dendrites, _side_rng(spec, "film"), height)
        yc, xc = ((np.arange(n) - (n - 1) / 2) * h for n in (ny, nx))
        cover = film_edge.signed_distance(yc[:, None], xc[None, :]) >= 0
        film3 = film[:, None, None] & cover[None]

    # Compact SEI: every voxel within the set thickness of the metal surface; where the
    # thickness differs on Li and LiH, the phase of the nearest metal voxel decides.
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
    phases = spec.extended_sei_phases
    ext_truth = {"n_clusters": 0, "volume_nm3": 0.0, "max_extent_nm": 0.0}
    if phases:
        extended, ext_truth = _extended_sei(labels, film3, dendrites, rng, h, z, frame, phases)
        labels[extended] = SEI
    ext_truth["on"] = [PHASE_NAMES[p] for p in phases]

    texture = _smooth_noise(rng, labels.shape, h, correlation_nm=2 * h)
    pores = _smooth_noise(rng, labels.shape, h, correlation_nm=4 * h)  # also the film's grain
    rho = {**DENSITY_G_CM3, "SEI": float(spec.sei_density_g_cm3)}
    density = np.zeros(labels.shape, np.float32)
    density[labels == LI] = rho["Li"]
    density[labels == LIH] = rho["LiH"]
    density[labels == CU] = rho["Cu"]
    density[shell] = rho["SEI"] * (1 + 0.1 * texture[shell])
    density[extended] = rho["extended SEI"] * np.clip(1 + 0.5 * pores[extended], 0.1, 1.8)
    # The film's uniform part is a slab reaching beyond the field of view (added per ray by the
    # imaging); only its granular texture is in the volume, where it shows the film's height.
    density[film3] = rho["carbon"] * 0.3 * pores[film3]

    regions = {"film": film3, "extended SEI": extended}
    scattering = None
    if spec.scattering == "elemental":
        weight = np.ones(labels.shape, np.float32)  # carbon's 1 stays on film and vacuum
        for mask, name in (
            (labels == LI, "Li"),
            (labels == LIH, "LiH"),
            (labels == CU, "Cu"),
            (shell, "SEI"),
            (extended, "extended SEI"),
        ):
            weight[mask] = scattering_per_mass(name)
        scattering = density * weight
    extras = {"fiducials": [], "ice": []}
    if spec.fiducials or spec.ice_blobs:
        occupancy, extras = _contaminants(spec, labels, film3, film_top, k0)
        for name, occ in occupancy.items():
            density += np.float32(rho[name]) * occ
            if scattering is not None:
                scattering += np.float32(rho[name] * scattering_per_mass(name)) * occ
            regions[name] = occ >= 0.5

    truth = _truth(
        spec,
        frame,
        labels,
        dendrites,
        owner,
        targets,
        cu_truth,
        thickness_truth,
        ext_truth,
        film_top,
        n_film * h,
        rho,
    )
    truth["field"]["film_edge"] = (
        None
        if film_edge is None
        else {
            "normal_yx": [film_edge.normal_y, film_edge.normal_x],
            "offset_nm": film_edge.offset_nm,
            "definition": "film where normal · (y, x) ≥ offset, nm from the volume's centre",
        }
    )
    truth.update(extras)
    slab = 0.0 if spec.film == "none" else rho["carbon"] * n_film * h
    return Specimen(labels, density, slab, regions, truth, film_edge, scattering)


def _side_rng(spec: PhantomSpec, what: str) -> np.random.Generator:
    """A generator of its own for an optional part, so switching it on changes nothing else."""
    return np.random.default_rng([int(spec.seed), *what.encode()])


def _draw_dendrites(spec: PhantomSpec, frame: _Frame, rng, film_top: float) -> list[_Dendrite]:
    h = float(spec.voxel_size_nm)
    length = frame.length
    t_max = max(spec.thickness_on_li_nm, spec.thickness_on_lih_nm)
    r_lo, r_hi = _radius_range(spec)
    n = int(spec.n_dendrites)
    radii = rng.uniform(r_lo, r_hi, n)
    slopes = np.zeros(n) if spec.bent else np.tan(np.deg2rad(rng.uniform(-4, 4, n)))
    sagittas = (
        rng.uniform(0.08, 0.15, n) * length * rng.choice([-1, 1], n) if spec.bent else np.zeros(n)
    )
    excursion = np.abs(slopes) * length / 2 + np.abs(sagittas) * 2 / 3
    room = _room(spec, frame)
    free = room - 2 * _half_widths(spec, radii, excursion).sum()
    if free < 0:  # too wide together: shrink towards the smallest diameter (fits, see spec)
        radii = np.full(n, r_lo)
        free = room - 2 * _half_widths(spec, radii, excursion).sum()
    gaps = rng.dirichlet(np.ones(n + 1)) * free
    widths = 2 * _half_widths(spec, radii, excursion)
    left = _MARGIN_NM + np.cumsum(gaps[:-1]) + np.concatenate(([0], np.cumsum(widths)[:-1]))
    if frame.corner_nm or spec.overhang_nm:
        left = left + frame.corner_nm / 2 - spec.overhang_nm
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
    return [_rest_on_film(d, film_top, t_max, h, frame) for d in dendrites]


def _rest_on_film(d: _Dendrite, film_top, t_max, h, frame: _Frame) -> _Dendrite:
    """Set the axis height so that the SEI shell's lowest point touches the film."""
    from dataclasses import replace

    v = np.arange(frame.n_along) * h
    return replace(d, z0=film_top + t_max + h / 2 + float(d.lowest_offset(v).max()))


def _depth_outside(d: _Dendrite, z, v, u, length: float, reach: float) -> np.ndarray:
    """Radial distance (nm) of each voxel centre beyond the dendrite's metal surface.

    ``v``, ``u`` are the frame's coordinates of the (y, x) voxel centres (broadcasting to
    (ny, nx)). Negative inside the metal; +inf farther out than ``reach``. Measured across the
    axis (nearly straight on the scale of a radius), so a shell of thickness t around the
    metal is exactly the voxels with 0 < depth ≤ t.
    """
    xc = d.x_axis(v, length)[None]
    cos = (1 / np.sqrt(1 + d.axis_slope(v, length) ** 2))[None]
    dx = (u[None] - xc) * cos
    dz = (z - d.z0)[:, None, None]
    rho = np.hypot(dx, dz)
    near = rho <= d.radius * (1 + _RADIUS_WOBBLE_AXIAL + _RADIUS_WOBBLE_AROUND) + reach
    depth = np.full(rho.shape, np.inf, np.float32)
    vv = np.broadcast_to(v[None], rho.shape)[near]
    phi = np.arctan2(np.broadcast_to(dz, rho.shape)[near], np.broadcast_to(dx, rho.shape)[near])
    depth[near] = rho[near] - d.radius_at(vv, phi)
    return depth


def _lih_targets(spec: PhantomSpec, rng) -> list[float]:
    lo, hi = spec.preset.lih_fraction
    if spec.lih_pieces == 0:
        return [0.0] * int(spec.n_dendrites)
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


def _grow_lih(
    labels, metal, d: _Dendrite, fraction, z, frame: _Frame, rng, pieces=1, interior=False
) -> None:
    """Turn ``fraction`` of this dendrite's metal into ``pieces`` irregular LiH regions.

    Each piece grows from a point on the surface (or, ``interior``, inside the metal, and then
    keeps two voxels from it, so no LiH voxel touches the SEI), in its own stretch along the
    axis; pieces keep a voxel apart so they stay separate regions.
    """
    from scipy import ndimage

    h = frame.h
    length = frame.length
    idx = np.nonzero(metal)
    v, u = frame.at(idx[1] * h, idx[2] * h)
    coords = np.stack([z[idx[0]], v, u], axis=1)
    n_metal = idx[0].size
    allowed = np.ones(n_metal, bool)
    if interior:
        box = _box(metal, pad=1)
        inside = ndimage.distance_transform_edt(metal[box], sampling=h)
        allowed = inside[tuple(i - b.start for i, b in zip(idx, box))] >= 2 * h
    whole = np.ones((3, 3, 3), bool)
    for j in range(pieces):
        lo, hi = (
            (0.3, 0.7) if pieces == 1 else (0.1 + 0.8 * j / pieces, 0.1 + 0.8 * (j + 1) / pieces)
        )
        ys = rng.uniform(lo, hi) * length
        phi = rng.uniform(np.deg2rad(-10), np.deg2rad(190))  # anywhere but the contact with film
        r = float(d.radius_at(np.array(ys), np.array(phi)))
        if interior:
            r *= rng.uniform(0.0, 0.5)
        seed = np.array(
            [d.z0 + r * np.sin(phi), ys, float(d.x_axis(np.array(ys), length)) + r * np.cos(phi)]
        )
        noise = _smooth_noise(rng, metal.shape, h, correlation_nm=35.0, at=idx)
        score = np.linalg.norm(coords - seed, axis=1) / d.radius + 0.4 * noise
        if j == 0 and not interior:
            chosen = score <= np.quantile(score, fraction / pieces)
        else:
            n_allowed = np.count_nonzero(allowed)
            if n_allowed == 0:
                break
            q = min(1.0, fraction / pieces * n_metal / n_allowed)
            chosen = allowed & (score <= np.quantile(score[allowed], q))
        region = np.zeros(metal.shape, bool)
        region[tuple(i[chosen] for i in idx)] = True
        parts, n = ndimage.label(region)
        if n > 1:  # one connected region: keep the largest piece
            sizes = np.bincount(parts.ravel())[1:]
            region = parts == (1 + int(np.argmax(sizes)))
        labels[region] = LIH
        if j + 1 < pieces:  # the next pieces keep a voxel away from this one
            allowed &= ~ndimage.binary_dilation(region, whole)[idx]


def _place_cu(
    labels, owner, dendrites, rng, h, frame: _Frame, anywhere=False, inside=False
) -> list[dict]:
    """One Cu particle (radius 8-15 nm) inside the metal: next to the LiH mid-dendrite, or
    (``anywhere``) anywhere it is buried in some dendrite's metal; ``inside``: whole in the field."""
    from scipy import ndimage

    radius = float(rng.uniform(8.0, 15.0))
    lih_counts = [
        np.count_nonzero((owner == i) & (labels == LIH)) for i in range(1, len(dendrites) + 1)
    ]
    host = 1 + (int(rng.integers(len(dendrites))) if anywhere else int(np.argmax(lih_counts)))
    box = _box(owner == host, pad=1)
    metal = owner[box] == host
    depth = ndimage.distance_transform_edt(metal, sampling=h)
    fits = depth >= radius + h
    if inside:
        edge = math.ceil(radius / h) + 1
        far = np.zeros(labels.shape, bool)
        far[tuple(slice(edge, n - edge) for n in labels.shape)] = True
        fits &= far[box]
    if not anywhere:
        n_along = frame.n_along
        if not frame.turned:
            y0 = box[1].start
            mid = np.zeros(metal.shape, bool)
            mid[:, max(0, int(0.3 * n_along) - y0) : max(0, int(0.7 * n_along) + 1 - y0), :] = True
        else:
            v = np.broadcast_to(frame.grid()[0], labels.shape[1:])[box[1], box[2]]
            lo, hi = int(0.3 * n_along) * h, int(0.7 * n_along) * h
            mid = np.broadcast_to(((v >= lo) & (v <= hi))[None], metal.shape)
        fits &= mid
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
            "placement": "anywhere in the metal" if anywhere else "beside the LiH, mid-dendrite",
        }
    ]


def _draw_film_edge(frame: _Frame, dendrites, rng, height_nm: float) -> imaging.FilmEdge:
    """A straight hole edge in a random direction through a point near a dendrite's axis."""
    d = dendrites[int(rng.integers(len(dendrites)))]
    v = rng.uniform(0.3, 0.7) * frame.length
    u = float(d.x_axis(np.array(v), frame.length)) + rng.uniform(-0.5, 0.5) * d.radius
    y, x = frame.to_volume(np.array(v), np.array(u))
    y, x = float(y) - (frame.ny - 1) * frame.h / 2, float(x) - (frame.nx - 1) * frame.h / 2
    beta = rng.uniform(0, 2 * np.pi)
    ny_, nx_ = math.cos(beta), math.sin(beta)
    return imaging.FilmEdge(ny_, nx_, ny_ * y + nx_ * x, height_nm)


def _contaminants(spec: PhantomSpec, labels, film3, film_top: float, k0: int):
    """Gold beads (5-15 nm) and ice blobs on the film or in the vacuum, clear of the specimen.

    Returns their occupancy (0-1 per voxel, partial at the surface) by material and their
    truths. Each object keeps at least two voxels from labelled matter and from the others.
    """
    from scipy import ndimage

    rng = _side_rng(spec, "contaminants")
    h = float(spec.voxel_size_nm)
    shape = labels.shape
    top = (np.asarray(shape) - 1) * h
    # distance to labelled matter, measured near it only: farther out it exceeds what is asked
    reach = 50.0
    near_box = _box(labels != BACKGROUND, pad=math.ceil(reach / h))
    near = ndimage.distance_transform_edt(labels[near_box] == BACKGROUND, sampling=h)

    def clearance(i: tuple[int, ...]) -> float:
        j = tuple(k - b.start for k, b in zip(i, near_box))
        if all(0 <= k < b.stop - b.start for k, b in zip(j, near_box)):
            return float(near[j])
        return reach

    film_bottom = (k0 - 0.5) * h
    film_any = bool(film3.any())
    placed: list[tuple[np.ndarray, float]] = []  # bounding spheres so far

    def film_under(c) -> bool:
        i = np.clip(np.round(c[1:] / h).astype(int), 0, np.asarray(shape[1:]) - 1)
        return film_any and bool(film3[k0, i[0], i[1]])

    def clear(c, r) -> bool:
        if np.any(c - r < -h / 2) or np.any(c + r > top + h / 2):
            return False
        i = tuple(np.clip(np.round(c / h).astype(int), 0, np.asarray(shape) - 1))
        if clearance(i) < r + 2 * h:
            return False
        if film_any and c[0] - r < film_top - 1e-6 and c[0] + r > film_bottom + 1e-6:
            return False  # in the film's layer (resting on it is touching, not in)
        return all(np.linalg.norm(c - p) >= r + q + 2 * h for p, q in placed)

    def spot(r) -> tuple[np.ndarray, str]:
        yx = rng.uniform(r, top[1:] - r)
        if film_any and rng.random() < 0.6:
            c = np.array([film_top + r, *yx])
            if film_under(c):
                if rng.random() < 0.3:
                    return np.array([film_bottom - r, *yx]), "film underside"
                return c, "film top"
        return np.array([rng.uniform(film_top + r + h, top[0] - r), *yx]), "vacuum"

    occupancy = {"gold": np.zeros(shape, np.float32), "ice": np.zeros(shape, np.float32)}
    truths: dict[str, list] = {"fiducials": [], "ice": []}
    for kind, count in (("ice", int(spec.ice_blobs)), ("gold", int(spec.fiducials))):
        for _ in range(count):
            for _attempt in range(200):
                if kind == "gold":
                    r = rng.uniform(2.5, 7.5)
                    c, where = spot(r)
                    spheres = [(c, r)]
                else:
                    r = rng.uniform(15.0, 40.0)
                    c, where = spot(r)
                    spheres = [(c, r)]
                    for _s in range(int(rng.integers(0, 4))):
                        rs = r * rng.uniform(0.5, 0.9)
                        a = rng.uniform(0, 2 * np.pi)
                        off = r * rng.uniform(0.5, 1.0) * np.array([0.0, np.cos(a), np.sin(a)])
                        cs = c + off
                        if where == "film top":
                            cs[0] = film_top + rs
                        elif where == "film underside":
                            cs[0] = film_bottom - rs
                        spheres.append((cs, rs))
                if all(clear(cs, rs) for cs, rs in spheres):
                    break
            else:
                continue  # no room left for this one
            before = float(occupancy[kind].sum())
            for cs, rs in spheres:
                _paint_sphere(occupancy[kind], cs, rs, h)
            bound = max(np.linalg.norm(cs - c) + rs for cs, rs in spheres)
            placed.append((c, bound))
            entry = {"centre_nm": [float(t) for t in c], "on": where}
            if kind == "gold":
                truths["fiducials"].append({**entry, "diameter_nm": 2 * r})
            else:
                volume = (float(occupancy[kind].sum()) - before) * h**3
                truths["ice"].append(
                    {
                        **entry,
                        "spheres": len(spheres),
                        "extent_nm": 2 * bound,
                        "volume_nm3": volume,
                    }
                )
    return {k: o for k, o in occupancy.items() if o.any()}, truths


def _paint_sphere(occupancy: np.ndarray, centre, radius: float, h: float) -> None:
    """Raise ``occupancy`` to a ball's partial volume (a one-voxel ramp at its surface)."""
    lo = np.maximum(np.floor((centre - radius) / h - 1).astype(int), 0)
    hi = np.minimum(np.ceil((centre + radius) / h + 2).astype(int), occupancy.shape)
    if np.any(hi <= lo):
        return
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
    dist = np.sqrt(sum((g * h - c) ** 2 for g, c in zip(grids, centre)))
    occ = np.clip((radius - dist) / h + 0.5, 0.0, 1.0).astype(np.float32)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    np.maximum(occupancy[box], occ, out=occupancy[box])


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


def _extended_sei(
    labels, film3, dendrites, rng, h, z, frame: _Frame, phases: tuple[int, ...]
) -> tuple[np.ndarray, dict]:
    """Porous SEI clusters (up to ~100 nm) grown outward from the shell over ``phases`` only."""
    from scipy import ndimage

    metal = (labels == LI) | (labels == LIH) | (labels == CU)
    d_metal, nearest = ndimage.distance_transform_edt(~metal, sampling=h, return_indices=True)
    nearest_label = labels[tuple(nearest)]
    free = (labels == BACKGROUND) & ~film3
    over = np.isin(nearest_label, phases)
    on = free & over
    # anchors: free voxels just outside the compact shell, above the chosen phases
    outer = free & ndimage.binary_dilation(labels == SEI) & over
    anchors = np.argwhere(outer)
    clusters = np.zeros(labels.shape, bool)
    length = frame.length
    n_clusters = 0
    if len(anchors):
        wanted = int(rng.integers(3, 6)) * len(dendrites)
        picks = anchors[rng.choice(len(anchors), size=min(wanted, len(anchors)), replace=False)]
        zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in labels.shape)]
        for p in picks:
            pv, pu = frame.at(p[1] * h, p[2] * h)
            i = int(np.argmin([abs(pu - d.x_axis(np.array(pv), length)) for d in dendrites]))
            d = dendrites[i]
            axis = np.array([d.z0, pv, float(d.x_axis(np.array(pv), length))])
            pos = np.array([z[p[0]], pv, pu])
            out = pos - axis
            out[1] = 0.0
            out /= np.linalg.norm(out) + 1e-9
            reach = rng.uniform(40.0, 100.0)
            blob = np.zeros(labels.shape, bool)
            for s in np.linspace(0.15, 0.8, int(rng.integers(3, 7))) * reach:
                r = rng.uniform(10.0, 25.0)
                c = pos + out * s + rng.normal(0, 8.0, 3)
                cy, cx = frame.to_volume(c[1], c[2])
                c_vox = np.array([c[0], cy, cx]) / h
                blob |= (
                    (zz - c_vox[0]) ** 2 + (yy - c_vox[1]) ** 2 + (xx - c_vox[2]) ** 2
                ) * h**2 <= r**2
            clusters |= blob
            n_clusters += 1
    clusters &= on
    # keep only what is attached to the compact shell
    parts = ndimage.label(clusters | (labels == SEI))[0]
    attached = np.unique(parts[labels == SEI])
    clusters &= np.isin(parts, attached[attached > 0])
    volume = float(np.count_nonzero(clusters)) * h**3
    extent = float(d_metal[clusters].max()) if clusters.any() else 0.0
    under = nearest_label[clusters]
    return clusters, {
        "n_clusters": n_clusters,
        "volume_nm3": volume,
        "max_extent_nm": extent,
        "volume_over_nm3": {
            PHASE_NAMES[p]: float(np.count_nonzero(under == p)) * h**3 for p in phases
        },
    }


def _truth(
    spec, frame, labels, dendrites, owner, targets, cu_truth, thickness, extended, film_top,
    film_nm, rho,
) -> dict:  # fmt: skip
    from scipy import ndimage

    h = float(spec.voxel_size_nm)
    voxel = h**3
    counts = {name: int(np.count_nonzero(labels == cid)) for cid, name in PHASE_NAMES.items()}
    metal_all = counts["Li"] + counts["LiH"]
    ny = labels.shape[1]
    y = np.arange(ny) * h
    length = frame.length
    v_grid = np.broadcast_to(frame.grid()[0], labels.shape[1:])
    per_dendrite = []
    for i, d in enumerate(dendrites, start=1):
        box = _box(owner == i, pad=1)
        mine = owner[box] == i
        lab = labels[box]
        li = int(np.count_nonzero(mine & (lab == LI)))
        lih_mask = mine & (lab == LIH)
        lih = int(np.count_nonzero(lih_mask))
        cu = int(np.count_nonzero(mine & (lab == CU)))
        # metal and Cu per slice across the axis, turned perpendicular to the (bent) axis
        if not frame.turned:
            cos = 1 / np.sqrt(1 + d.axis_slope(y, length) ** 2)
            area = np.count_nonzero(owner == i, axis=(0, 2)) * h**2 * cos
            axis_v = y[:: max(1, ny // 16)]
        else:
            where = np.nonzero(mine)
            vv = v_grid[box[1], box[2]][where[1], where[2]]
            bins = np.floor(vv / h).astype(int)
            first = bins.min() if bins.size else 0
            count = np.bincount(bins - first)
            centres = (np.arange(count.size) + first + 0.5) * h
            cos = 1 / np.sqrt(1 + d.axis_slope(centres, length) ** 2)
            area = count * h**2 * cos
            if area.any():  # not the field's clipped ends
                area = area[area >= 0.5 * np.median(area[area > 0])]
            axis_v = np.linspace(0.0, length, 17)
        axis_y, axis_x = frame.to_volume(axis_v, d.x_axis(axis_v, length))
        surface = ndimage.binary_dilation(lih_mask) & ~mine
        per_dendrite.append(
            {
                "id": i,
                "diameter_nm": 2 * d.radius,
                "diameter_measured_nm": (
                    float(np.mean(2 * np.sqrt(area / np.pi))) if area.any() else None
                ),
                "volume_nm3": (li + lih + cu) * voxel,
                "lih_volume_fraction": lih / (li + lih) if li + lih else 0.0,
                "lih_fraction_target": targets[i - 1],
                "lih_pieces": int(ndimage.label(lih_mask)[1]),
                "lih_reaches_surface": bool(surface.any()),
                "bent": bool(spec.bent),
                "axis_nm": {
                    "y": [float(t) for t in axis_y],
                    "x": [float(t) for t in axis_x],
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
        "densities_g_cm3": dict(rho),
        "film": {"thickness_nm": film_nm, "top_nm": film_top, "label": BACKGROUND},
        "field": {
            "axis_angle_deg": float(spec.axis_angle_deg),
            "film": spec.film,
            "metal_volume_fraction": (metal_all + counts["Cu"]) / labels.size,
            "n_dendrites": len(dendrites),
        },
        "volumes_nm3": {name: n * voxel for name, n in counts.items()},
        "lih_volume_fraction": counts["LiH"] / metal_all if metal_all else 0.0,
        "lih_placement": {
            "pieces_per_dendrite": 1 if spec.lih_pieces is None else int(spec.lih_pieces),
            "interior": bool(spec.lih_interior),
        },
        "sei_thickness_nm": thickness,
        "extended_sei": extended,
        "cu_particles": cu_truth,
        "dendrites": per_dendrite,
    }


def _imaging_truth(spec: PhantomSpec, n_views: int) -> dict:
    return {
        "scattering": spec.scattering,
        "scattering_per_mass": (
            {k: scattering_per_mass(k) for k in COMPOSITION}
            if spec.scattering == "elemental"
            else None
        ),
        "defocus_um": spec.defocus_um,
        "ctf": (
            {
                "voltage_kv": imaging.VOLTAGE_KV,
                "cs_mm": imaging.CS_MM,
                "amplitude_contrast": imaging.AMPLITUDE_CONTRAST,
            }
            if spec.defocus_um > 0
            else None
        ),
        "denoise_sigma_nm": spec.denoise_sigma_nm,
        "inverted": bool(spec.inverted),
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


def grey_values(tomogram, labels, regions, h: float, inverted: bool = False) -> dict:
    """Mean grey value per material, the noise in empty vacuum and the LiH/Li contrast-to-noise."""
    from scipy import ndimage

    film, extended = regions["film"], regions["extended SEI"]
    vacuum = (labels == BACKGROUND) & ~film
    for name in ("gold", "ice"):
        if name in regions:
            vacuum &= ~regions[name]
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
        **{k: regions[k] for k in ("gold", "ice") if k in regions},
    }
    mean = {k: float(tomogram[m].mean()) if m.any() else None for k, m in means.items()}
    noise = float(tomogram[far].std()) if far.any() else None
    cnr = None
    if noise and mean["Li"] is not None and mean["LiH"] is not None:
        cnr = (mean["Li"] - mean["LiH"]) / noise * (-1 if inverted else 1)
    return {
        "convention": (
            "about the density in g/cm³ (inverted contrast): vacuum 0, denser is brighter"
            if inverted
            else "about minus the density in g/cm³: vacuum 0, denser is darker"
        ),
        "mean": mean,
        "noise_sd": noise,
        "cnr_lih_li": cnr,
    }
