"""Synthetic HRTEM micrographs with known truth, for validation and the sample data.

A kinematic lattice model: inside a crystal the image is 1 + sum over the reflections of its zone
of A_g cos(2 pi g.r + phi_g), with A_g = contrast * exp(-(|g| / envelope)^2) standing in for the
crystal's structure factors and the microscope's damping envelope, and random phases phi_g (a
random position of the lattice). Amorphous material is a Gaussian random field whose spectrum is a
ring at the first maximum of amorphous scattering (here 3.3 Å), so it adds the diffuse ring real
micrographs show and no reflection. Counts are Poisson at the dose (electrons per Å^2) times the
pixel area. Regions have edges smoothed over a few pixels, as real grains do not end in one pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .phases import AMORPHOUS, HKL, Phase, PhaseTable, canonical_zone, default_table

PIXEL_SIZE_A = 0.41
DOSE_E_PER_A2 = 45.0
#: Zone axes low enough in index to show two or more non-parallel reflections for every phase.
ZONES: tuple[HKL, ...] = ((0, 0, 1), (0, 1, 1), (1, 1, 1))
VACUUM = 0  # label of pixels with neither lattice nor amorphous material


@dataclass(frozen=True)
class Grain:
    """A crystal of one phase at a zone axis, in-plane rotation in degrees."""

    phase: str
    zone: HKL
    rotation_deg: float


@dataclass(frozen=True)
class MicrographSpec:
    """What to simulate. ``layout``: "single" (one grain fills the field), "two" (two grains
    either side of a straight boundary through the centre at ``boundary_deg``), "amorphous"
    (amorphous material only), "layer" (a grain, an amorphous layer ``layer_nm`` thick parallel to
    the boundary, then vacuum)."""

    layout: str = "single"
    grains: tuple[Grain, ...] = ()
    shape: tuple[int, int] = (512, 512)
    pixel_size_A: float = PIXEL_SIZE_A
    dose_e_per_A2: float = DOSE_E_PER_A2
    contrast: float = 0.10  # fringe amplitude of a reflection at |g| = 0
    envelope_per_A: float = 1.0  # 1/e fall-off of fringe amplitude with |g|
    amorphous_contrast: float = 0.10  # r.m.s. of the amorphous texture
    layer_nm: float = 10.0
    boundary_deg: float = 0.0  # direction of the boundary line from +x
    layer_intensity: float = -0.08  # mean of the amorphous layer relative to vacuum (darker)
    crystal_intensity: float = -0.15  # mean of a crystal relative to vacuum
    edge_px: float = 2.0  # smoothing of region edges
    seed: int = 0


@dataclass(frozen=True, eq=False)
class SyntheticMicrograph:
    """Counts image and everything true about it."""

    image: np.ndarray  # float32 counts
    noise_free: np.ndarray  # expected counts
    pixel_size_A: float
    labels: np.ndarray  # uint8: phase label per pixel, AMORPHOUS, or VACUUM
    spec: MicrographSpec
    reflections: tuple[tuple[str, HKL, float, float], ...] = field(default=())
    # per grain reflection: (phase, hkl, gy, gx) in 1/Å, one of each +-g

    @property
    def boundary_offsets_nm(self) -> tuple[float, float]:
        """Layer layout: signed distances of the layer's two edges from the image centre."""
        return (0.0, self.spec.layer_nm)


def random_grain(rng: np.random.Generator, table: PhaseTable, phase: str | None = None) -> Grain:
    name = phase or str(rng.choice([p.name for p in table.phases]))
    zone = ZONES[int(rng.integers(len(ZONES)))]
    return Grain(name, zone, float(rng.uniform(0, 180)))


def lattice(
    phase: Phase, grain: Grain, shape: tuple[int, int], pixel_size_A: float, contrast: float,
    envelope: float, rng: np.random.Generator, d_min_A: float,
) -> tuple[np.ndarray, list[tuple[str, HKL, float, float]]]:
    """Fringe pattern (mean 0) of a grain and its reflections (gy, gx in 1/Å)."""
    inside, xy = phase.zone(grain.zone)
    t = math.radians(grain.rotation_deg)
    c, s = math.cos(t), math.sin(t)
    g2 = xy @ np.array([[c, s], [-s, c]])  # rotated (first, second) = (gy, gx)
    y = (np.arange(shape[0], dtype=np.float64) * pixel_size_A)[:, None]
    x = (np.arange(shape[1], dtype=np.float64) * pixel_size_A)[None, :]
    image = np.zeros(shape, np.float64)
    truth = []
    for hkl, (gy, gx) in zip(inside, g2):
        g = math.hypot(gy, gx)
        if 1.0 / g < d_min_A:
            continue
        amp = contrast * math.exp(-((g / envelope) ** 2))
        phi = rng.uniform(0, 2 * math.pi)
        # separable: cos(a + b) = cos a cos b - sin a sin b, cheap for large images
        ay, ax = 2 * math.pi * gy * y + phi, 2 * math.pi * gx * x
        image += amp * (np.cos(ay) * np.cos(ax) - np.sin(ay) * np.sin(ax))
        truth.append((phase.name, tuple(int(v) for v in hkl), float(gy), float(gx)))
    return image, truth


def amorphous_texture(shape, pixel_size_A, rms, rng, ring_A=3.3, width_per_A=0.08) -> np.ndarray:
    """Gaussian random field whose power is a ring at 1/ring_A (amorphous scattering)."""
    noise = rng.standard_normal(shape)
    f = np.fft.rfft2(noise)
    ky = np.fft.fftfreq(shape[0], pixel_size_A)[:, None]
    kx = np.fft.rfftfreq(shape[1], pixel_size_A)[None, :]
    k = np.sqrt(ky**2 + kx**2)
    ring = np.exp(-0.5 * ((k - 1.0 / ring_A) / width_per_A) ** 2)
    field_ = np.fft.irfft2(f * ring, s=shape)
    return field_ * (rms / max(field_.std(), 1e-12))


def _smooth_step(distance_px: np.ndarray, edge_px: float) -> np.ndarray:
    """0 -> 1 across a boundary (signed distance in pixels), error-function edge."""
    from scipy.special import erf

    return 0.5 * (1 + erf(distance_px / (max(edge_px, 1e-6) * math.sqrt(2))))


def simulate_micrograph(spec: MicrographSpec, table: PhaseTable | None = None) -> SyntheticMicrograph:
    """One synthetic micrograph with its truth (see :class:`MicrographSpec`)."""
    table = table or default_table()
    rng = np.random.default_rng(spec.seed)
    shape = tuple(spec.shape)
    px = spec.pixel_size_A
    d_min = 2.05 * px  # reflections the pixel grid can carry, below Nyquist
    yy, xx = np.mgrid[0: shape[0], 0: shape[1]].astype(np.float64)
    t = math.radians(spec.boundary_deg)
    # signed distance (pixels) from the line through the centre along boundary_deg
    signed = -(yy - (shape[0] - 1) / 2) * math.cos(t) - (xx - (shape[1] - 1) / 2) * math.sin(t)
    mean = np.ones(shape)
    labels = np.full(shape, VACUUM, np.uint8)
    truth: list = []
    if spec.layout not in ("single", "two", "amorphous", "layer"):
        raise ValueError(f"unknown layout {spec.layout!r}")
    needed = {"single": 1, "two": 2, "amorphous": 0, "layer": 1}[spec.layout]
    grains = list(spec.grains[:needed])
    while len(grains) < needed:
        grains.append(random_grain(rng, table))
    weights: list[np.ndarray] = []
    if spec.layout == "single":
        weights = [np.ones(shape)]
    elif spec.layout == "two":
        w = _smooth_step(signed, spec.edge_px)
        weights = [1 - w, w]
    elif spec.layout == "layer":
        weights = [1 - _smooth_step(signed, spec.edge_px)]
    for grain, w in zip(grains, weights):
        phase = table.by_name(grain.phase)
        fringes, refl = lattice(phase, grain, shape, px, spec.contrast, spec.envelope_per_A, rng,
                                d_min)
        mean += w * (fringes + spec.crystal_intensity)
        labels[w >= 0.5] = phase.label
        truth += refl
    if spec.layout in ("amorphous", "layer"):
        texture = amorphous_texture(shape, px, spec.amorphous_contrast, rng)
        if spec.layout == "amorphous":
            a = np.ones(shape)
        else:
            layer_px = spec.layer_nm * 10 / px
            a = _smooth_step(signed, spec.edge_px) * (1 - _smooth_step(signed - layer_px,
                                                                        spec.edge_px))
        mean += a * (texture + spec.layer_intensity)
        labels[a >= 0.5] = AMORPHOUS
    expected = np.clip(mean, 0.05, None) * spec.dose_e_per_A2 * px * px
    counts = rng.poisson(expected).astype(np.float32)
    return SyntheticMicrograph(counts, expected.astype(np.float32), px, labels, spec, tuple(truth))


def zone_of(grain: Grain) -> HKL:
    return canonical_zone(grain.zone)


def grains_for(spec: MicrographSpec, table: PhaseTable | None = None) -> Sequence[Grain]:
    """The grains a spec simulates (random ones drawn as simulate_micrograph draws them)."""
    table = table or default_table()
    rng = np.random.default_rng(spec.seed)
    needed = {"single": 1, "two": 2, "amorphous": 0, "layer": 1}[spec.layout]
    grains = list(spec.grains[:needed])
    while len(grains) < needed:
        grains.append(random_grain(rng, table))
    return grains
