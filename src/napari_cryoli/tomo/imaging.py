"""Image formation of a bright-field (zero-loss filtered) cryo-TEM tilt series.

The specimen is a map of mass density (g/cm³), optionally weighted per material by its scattering
per mass. Electrons scattered outside the objective aperture or losing energy are removed, so the
transmitted fraction of each ray follows Beer-Lambert with an attenuation length inversely
proportional to density:

    I / I0 = exp(-∫ρ dl / Λ),   Λ = ``ATTENUATION_LENGTH_NM`` (nm at 1 g/cm³)

(about 350 nm for vitreous ice at 0.92 g/cm³ and 300 kV, i.e. Λ ≈ 320 nm·g/cm³). With a defocus,
phase contrast is added in the weak-phase approximation: the projected mass also sets a phase
(scaled so that a weak object shows ``AMPLITUDE_CONTRAST`` of amplitude contrast), and each image's
spectrum is filtered by the contrast transfer function of a 300 kV microscope with Cs 2.7 mm
(amplitude part × cos χ, phase part × -2 sin χ). Images are then blurred by the microscope's point
spread and recorded with Poisson counting noise at the stated dose. They are returned as contrast,
I / I0 - 1: vacuum is 0, matter is negative (dense = dark), which a linear reconstruction keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .projection import project

#: Thickness (nm) of a 1 g/cm³ material that transmits 1/e of the beam.
ATTENUATION_LENGTH_NM = 320.0
#: Square ångström per square nanometre.
A2_PER_NM2 = 100.0
#: Microscope of the phase-contrast model.
VOLTAGE_KV = 300.0
CS_MM = 2.7
#: Fraction of amplitude contrast a weak object shows (ice-embedded matter: 0.07 is usual).
AMPLITUDE_CONTRAST = 0.07


def electrons_per_pixel(dose_e_per_A2: float, pixel_nm: float, n_views: int) -> float:
    """Mean electrons per pixel and view when the total dose is spread evenly over the views."""
    return dose_e_per_A2 * A2_PER_NM2 * pixel_nm**2 / n_views


def wavelength_nm(voltage_kv: float = VOLTAGE_KV) -> float:
    """Relativistic electron wavelength (nm) at ``voltage_kv``."""
    v = voltage_kv * 1e3
    return 1.226426 / np.sqrt(v * (1 + 0.978476e-6 * v))


def ctf_phase(k_per_nm: np.ndarray, defocus_nm: float, cs_mm: float = CS_MM) -> np.ndarray:
    """Aberration phase χ(k) for an underfocus ``defocus_nm`` (positive) and spherical aberration."""
    lam = wavelength_nm()
    k2 = np.asarray(k_per_nm) ** 2
    return np.pi * lam * defocus_nm * k2 - 0.5 * np.pi * cs_mm * 1e6 * lam**3 * k2**2


def ctf(k_per_nm: np.ndarray, defocus_nm: float) -> np.ndarray:
    """The usual CTF, -(√(1-A²) sin χ + A cos χ): what a weak object's spectrum is multiplied by."""
    chi = ctf_phase(k_per_nm, defocus_nm)
    a = AMPLITUDE_CONTRAST
    return -(np.sqrt(1 - a * a) * np.sin(chi) + a * np.cos(chi))


@dataclass(frozen=True)
class FilmEdge:
    """The edge of a hole in a support film: film where ``normal · (y, x) ≥ offset_nm``.

    Positions are in nm from the volume's centre (voxel centres, (n - 1) / 2), in the film's
    mid-plane, ``height_nm`` above the volume's centre along z.
    """

    normal_y: float
    normal_x: float
    offset_nm: float
    height_nm: float

    def signed_distance(self, y_nm: np.ndarray, x_nm: np.ndarray) -> np.ndarray:
        """Distance (nm) into the film (negative over the hole)."""
        return self.normal_y * y_nm + self.normal_x * x_nm - self.offset_nm


def _slab_coverage(edge: FilmEdge, ny: int, nx: int, pixel_nm: float, angles_deg) -> np.ndarray:
    """Fraction of each ray (view, y, x) whose crossing of the film plane lies on the film."""
    u = (np.arange(nx) - (nx - 1) / 2) * pixel_nm
    y = (np.arange(ny) - (ny - 1) / 2) * pixel_nm
    a = np.deg2rad(np.asarray(angles_deg, float))
    # a ray at detector u crosses the plane z = height at x = (u - height sin θ) / cos θ
    x = (u[None, :] - edge.height_nm * np.sin(a)[:, None]) / np.cos(a)[:, None]
    d = edge.signed_distance(y[None, :, None], x[:, None, :])
    return np.clip(d / pixel_nm + 0.5, 0.0, 1.0).astype(np.float32)


def _apply_ctf(transmitted: np.ndarray, phase: np.ndarray, pixel_nm: float, defocus_nm: float):
    """Intensity of each view after the CTF: 1 + F⁻¹[cos χ · F(T - 1) - 2 sin χ · F(φ)].

    Views are mirror-padded so the FFT's wrap-around does not reach the field.
    """
    n_views, ny, nx = transmitted.shape
    pad = 16
    shape = (ny + 2 * pad, nx + 2 * pad)
    ky = np.fft.fftfreq(shape[0], d=pixel_nm)
    kx = np.fft.rfftfreq(shape[1], d=pixel_nm)
    chi = ctf_phase(np.hypot(ky[:, None], kx[None, :]), defocus_nm)
    cos_chi, sin_chi = np.cos(chi).astype(np.float32), (2 * np.sin(chi)).astype(np.float32)
    out = np.empty_like(transmitted)
    for i in range(n_views):
        amp = np.pad(transmitted[i] - 1, pad, mode="reflect")
        ph = np.pad(phase[i], pad, mode="reflect")
        spectrum = np.fft.rfft2(amp) * cos_chi - np.fft.rfft2(ph) * sin_chi
        image = np.fft.irfft2(spectrum, s=shape)[pad : pad + ny, pad : pad + nx]
        out[i] = 1 + image
    return np.clip(out, 0.0, None)


def tilt_series(
    density: np.ndarray,
    voxel_nm: float,
    angles_deg: Sequence[float],
    *,
    dose_e_per_A2: float,
    psf_fwhm_nm: float,
    rng: np.random.Generator,
    slab_mass_nm: float = 0.0,
    slab_edge: FilmEdge | None = None,
    defocus_nm: float = 0.0,
    phase_density: np.ndarray | None = None,
    device: str = "auto",
) -> np.ndarray:
    """Noisy bright-field contrast images (view, y, x) of ``density`` (z, y, x, g/cm³).

    ``slab_mass_nm`` (g/cm³ · nm) is a uniform slab as wide as the specimen grid (a support film
    reaching far beyond the field of view): it adds ρt / cos θ to every ray, or only to the rays
    that cross it on the film's side of ``slab_edge``. ``defocus_nm`` > 0 adds phase contrast
    through the CTF; the phase follows ``phase_density`` (default ``density``; the slab counts
    in both).
    """
    from scipy.ndimage import gaussian_filter

    angles = np.asarray(angles_deg, dtype=np.float64)
    slab = (slab_mass_nm / np.cos(np.deg2rad(angles))).astype(np.float32)[:, None, None]
    if slab_edge is not None:
        slab = slab * _slab_coverage(slab_edge, *density.shape[1:], voxel_nm, angles)
    both = defocus_nm > 0 and phase_density is not None
    if both:  # one projection of the two maps side by side along the tilt axis
        ny = density.shape[1]
        pair = project(np.concatenate([density, phase_density], axis=1), angles, device=device)
        mass, phase_mass = pair[:, :ny], pair[:, ny:] * np.float32(voxel_nm) + slab
        mass = mass * np.float32(voxel_nm)  # g/cm³ · nm
    else:
        mass = project(density, angles, device=device) * np.float32(voxel_nm)  # g/cm³ · nm
    mass += slab
    transmitted = np.exp(-mass / np.float32(ATTENUATION_LENGTH_NM))
    if defocus_nm > 0:
        if both:
            mass = phase_mass
        a = AMPLITUDE_CONTRAST
        # a weak object: amplitude -mass/(2Λ) and phase mass/(2Λ) · √(1-A²)/A
        phase = mass * np.float32(np.sqrt(1 - a * a) / a / (2 * ATTENUATION_LENGTH_NM))
        transmitted = _apply_ctf(transmitted, phase, voxel_nm, defocus_nm)
    if psf_fwhm_nm > 0:
        sigma = psf_fwhm_nm / (2 * np.sqrt(2 * np.log(2))) / voxel_nm
        transmitted = gaussian_filter(transmitted, sigma=(0, sigma, sigma), mode="nearest")
    n0 = electrons_per_pixel(dose_e_per_A2, voxel_nm, len(angles))
    counts = rng.poisson(transmitted * n0).astype(np.float32)
    return counts / np.float32(n0) - np.float32(1.0)


def contrast_to_density(voxel_nm: float) -> float:
    """Factor that turns a reconstruction of contrast images into (minus) density in g/cm³.

    For weak attenuation I / I0 - 1 ≈ -∫ρ dl / Λ, so a reconstruction (values per voxel length)
    times Λ / voxel size is ≈ -ρ: vacuum 0, Li ≈ -0.53, LiH ≈ -0.78 and so on.
    """
    return ATTENUATION_LENGTH_NM / voxel_nm
