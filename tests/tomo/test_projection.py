"""Forward projection: line integrals through analytic shapes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.errors import InputError
from napari_cryoli.tomo import geometry
from napari_cryoli.tomo.projection import project


def test_slab_projects_to_its_thickness_over_cos_theta():
    vol = np.zeros((40, 3, 200), np.float32)
    vol[15:25] = 1.0  # a slab 10 voxels thick, wide enough that central rays cross all of it
    angles = [-60.0, -30.0, 0.0, 45.0, 60.0]
    tilts = project(vol, angles)
    for view, a in zip(tilts, angles):
        centre = view[:, 90:110]
        assert centre == pytest.approx(10.0 / np.cos(np.deg2rad(a)), rel=1e-2)


def test_gaussian_projects_to_its_analytic_line_integral_at_every_angle():
    n, sigma, x0, z0 = 101, 4.0, 12.0, -7.0
    c = geometry.volume_centre(n)
    z, x = np.mgrid[:n, :n] - c
    blob = np.exp(-((x - x0) ** 2 + (z - z0) ** 2) / (2 * sigma**2)).astype(np.float32)
    angles = np.arange(-90.0, 90.0, 7.0)
    tilts = project(blob[:, None, :], angles)[:, 0, :]
    u = np.arange(n) - geometry.detector_centre(n)
    for row, a in zip(tilts, np.deg2rad(angles)):
        centre = x0 * np.cos(a) + z0 * np.sin(a)
        exact = np.sqrt(2 * np.pi) * sigma * np.exp(-((u - centre) ** 2) / (2 * sigma**2))
        assert np.abs(row - exact).max() < 0.01 * exact.max()


def test_projection_keeps_the_mass_at_every_angle():
    n = 101
    c = geometry.volume_centre(n)
    z, x = np.mgrid[:n, :n] - c
    disk = (np.hypot(x, z) <= 30).astype(np.float32)
    tilts = project(disk[:, None, :], np.arange(-90.0, 90.0, 7.0))[:, 0, :]
    assert tilts.sum(axis=1) == pytest.approx(disk.sum(), rel=2e-3)


def test_wider_detector_sees_rays_beside_the_volume():
    vol = np.ones((4, 2, 10), np.float32)
    tilts = project(vol, [0.0], n_det=16)
    assert tilts.shape == (1, 2, 16)
    assert np.all(tilts[0, :, 3:13] == pytest.approx(4.0))
    assert np.all(tilts[0, :, :3] == 0) and np.all(tilts[0, :, 13:] == 0)


def test_project_rejects_a_2d_array():
    with pytest.raises(InputError, match="3D"):
        project(np.zeros((4, 4)), [0.0])
