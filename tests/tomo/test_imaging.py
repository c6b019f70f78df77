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
