"""Image formation of a bright-field (zero-loss filtered) cryo-TEM tilt series.

The specimen is a map of mass density (g/cm³). Electrons scattered outside the objective aperture
or losing energy are removed, so the transmitted fraction of each ray follows Beer-Lambert with an
attenuation length inversely proportional to density:

    I / I0 = exp(-∫ρ dl / Λ),   Λ = ``ATTENUATION_LENGTH_NM`` (nm at 1 g/cm³)

(about 350 nm for vitreous ice at 0.92 g/cm³ and 300 kV, i.e. Λ ≈ 320 nm·g/cm³). Images are
blurred by the microscope's point spread and recorded with Poisson counting noise at the stated
dose. They are returned as contrast, I / I0 - 1: vacuum is 0, matter is negative (dense = dark),
which a linear reconstruction keeps. Phase contrast and the CTF are left out: the model aims at
realistic densities, contrast-to-noise and missing-wedge artefacts, not at defocus fringes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .projection import project

#: Thickness (nm) of a 1 g/cm³ material that transmits 1/e of the beam.
ATTENUATION_LENGTH_NM = 320.0
#: Square ångström per square nanometre.
A2_PER_NM2 = 100.0


def electrons_per_pixel(dose_e_per_A2: float, pixel_nm: float, n_views: int) -> float:
    """Mean electrons per pixel and view when the total dose is spread evenly over the views."""
    return dose_e_per_A2 * A2_PER_NM2 * pixel_nm**2 / n_views


def tilt_series(
    density: np.ndarray,
    voxel_nm: float,
    angles_deg: Sequence[float],
    *,
    dose_e_per_A2: float,
    psf_fwhm_nm: float,
    rng: np.random.Generator,
    slab_mass_nm: float = 0.0,
    device: str = "auto",
) -> np.ndarray:
    """Noisy bright-field contrast images (view, y, x) of ``density`` (z, y, x, g/cm³).

    ``slab_mass_nm`` (g/cm³ · nm) is a uniform slab as wide as the specimen grid (a support film
    reaching far beyond the field of view): it adds ρt / cos θ to every ray.
    """
    from scipy.ndimage import gaussian_filter

    angles = np.asarray(angles_deg, dtype=np.float64)
    mass = project(density, angles, device=device) * np.float32(voxel_nm)  # g/cm³ · nm
    mass += (slab_mass_nm / np.cos(np.deg2rad(angles))).astype(np.float32)[:, None, None]
    transmitted = np.exp(-mass / np.float32(ATTENUATION_LENGTH_NM))
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
