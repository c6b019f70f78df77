"""Image formation: Beer-Lambert attenuation, Poisson noise at the stated dose, the film slab."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.tomo import imaging


def _images(density, **kwargs):
    options = {"dose_e_per_A2": 100.0, "psf_fwhm_nm": 0.0, "rng": np.random.default_rng(0)}
    return imaging.tilt_series(density, 2.0, [-60.0, 0.0, 60.0], **{**options, **kwargs})


def test_vacuum_images_show_only_counting_noise_at_the_stated_dose():
    images = _images(np.zeros((8, 64, 64), np.float32))
    n0 = imaging.electrons_per_pixel(100.0, 2.0, 3)
    assert n0 == pytest.approx(100.0 * 100 * 4 / 3)  # e/Å² × Å²/nm² × pixel area / views
    assert images.mean() == pytest.approx(0.0, abs=3 / np.sqrt(n0 * images.size))
    assert images.std() == pytest.approx(1 / np.sqrt(n0), rel=0.03)


def test_slab_attenuates_by_beer_lambert_along_each_ray():
    density = np.zeros((20, 32, 400), np.float32)
    density[5:15] = 0.78  # 20 nm of LiH
    images = _images(density, dose_e_per_A2=1e7)  # practically noiseless
    for view, angle in zip(images, (-60.0, 0.0, 60.0)):
        path_nm = 20.0 / np.cos(np.deg2rad(angle))
        expected = np.exp(-0.78 * path_nm / imaging.ATTENUATION_LENGTH_NM) - 1
        assert view[:, 150:250].mean() == pytest.approx(expected, rel=0.01)


def test_support_slab_darkens_every_ray_by_its_mass_over_cos_theta():
    images = _images(np.zeros((4, 16, 16), np.float32), dose_e_per_A2=1e7, slab_mass_nm=30.0)
    for view, angle in zip(images, (-60.0, 0.0, 60.0)):
        expected = np.exp(-30.0 / np.cos(np.deg2rad(angle)) / imaging.ATTENUATION_LENGTH_NM) - 1
        assert view.mean() == pytest.approx(expected, rel=1e-3)


def test_point_spread_blurs_without_changing_the_mean():
    density = np.zeros((4, 64, 64), np.float32)
    density[:, 30:34, 30:34] = 5.0
    sharp = _images(density, dose_e_per_A2=1e7)
    blurred = _images(density, dose_e_per_A2=1e7, psf_fwhm_nm=8.0)
    assert blurred.min() > sharp.min()  # the dark spot spreads out
    assert blurred.mean() == pytest.approx(sharp.mean(), rel=1e-3)


def test_contrast_to_density_factor():
    assert imaging.contrast_to_density(2.0) == pytest.approx(imaging.ATTENUATION_LENGTH_NM / 2)


def test_ctf_zeros_where_the_aberration_phase_predicts():
    """A noiseless weak object of white spectrum imaged at 3 µm: power vanishes at the CTF's zeros."""
    rng = np.random.default_rng(1)
    density = np.zeros((4, 256, 256), np.float32)
    density[1] = rng.random((256, 256)).astype(np.float32)  # flat spectrum
    pixel, defocus = 1.0, 3000.0
    images = imaging.tilt_series(
        density, pixel, [0.0], dose_e_per_A2=1e9, psf_fwhm_nm=0.0, rng=rng, defocus_nm=defocus
    )
    power = np.abs(np.fft.fft2(images[0] - images[0].mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(256, pixel), np.fft.fftfreq(256, pixel)))
    transfer = imaging.ctf(k, defocus) ** 2
    zeros = (transfer < 1e-3) & (k > 0.05)
    peaks = (transfer > 0.9) & (k > 0.05)
    assert zeros.sum() > 100 and peaks.sum() > 100
    assert power[zeros].mean() < 0.02 * power[peaks].mean()
    # the first zero after k = 0 lies at χ = π (minus the small amplitude part)
    chi = imaging.ctf_phase(k, defocus)
    first = (chi > 0.9 * np.pi) & (chi < 1.0 * np.pi)
    assert power[first].mean() < 0.1 * power[(chi > 0.4 * np.pi) & (chi < 0.6 * np.pi)].mean()


def test_no_defocus_is_pure_amplitude_contrast():
    density = np.zeros((4, 32, 32), np.float32)
    density[:, 10:20, 10:20] = 1.0
    a = _images(density, dose_e_per_A2=1e9)
    b = _images(density, dose_e_per_A2=1e9, defocus_nm=0.0)
    assert np.array_equal(a, b)


def test_film_edge_covers_rays_on_its_side_only():
    edge = imaging.FilmEdge(0.0, 1.0, 0.0, 0.0)  # film at x ≥ 0, in the volume's mid-plane
    images = _images(
        np.zeros((8, 16, 64), np.float32), dose_e_per_A2=1e9, slab_mass_nm=30.0, slab_edge=edge
    )
    for view, angle in zip(images, (-60.0, 0.0, 60.0)):
        full = np.exp(-30.0 / np.cos(np.deg2rad(angle)) / imaging.ATTENUATION_LENGTH_NM) - 1
        assert view[:, 40:].mean() == pytest.approx(full, rel=1e-3)
        assert view[:, :24].mean() == pytest.approx(0.0, abs=1e-3)
