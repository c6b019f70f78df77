"""Missing-wedge restoration against three cylinders of known density, side by side."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.errors import InputError
from napari_cryoli.tomo.projection import project
from napari_cryoli.tomo.restoration import RestorationSettings, restore_missing_wedge
from napari_cryoli.tomo.wbp import WBPSettings, reconstruct_volume

H = 4.0  # nm
SHAPE = (48, 8, 160)
CENTRES_NM = (-124.0, 0.0, 124.0)  # 100 nm cylinders along the tilt axis, 24 nm apart
WEDGE = np.arange(-60.0, 61.0, 2.0)
FULL = np.arange(-89.0, 90.0, 2.0)
# The raw reconstruction reads Li at about half its density, so dense matter starts lower.
SETTINGS = RestorationSettings(dense_level=0.25, device="cpu")


def _zx() -> tuple[np.ndarray, np.ndarray]:
    z = (np.arange(SHAPE[0]) - (SHAPE[0] - 1) / 2) * H
    x = (np.arange(SHAPE[2]) - (SHAPE[2] - 1) / 2) * H
    return np.meshgrid(z, x, indexing="ij")


def _in_slices(mask_zx: np.ndarray) -> np.ndarray:
    return np.repeat(mask_zx[:, None, :], SHAPE[1], axis=1)


def _reconstruction(angles: np.ndarray) -> np.ndarray:
    z, x = _zx()
    density = np.zeros(SHAPE, np.float32)
    for c in CENTRES_NM:
        density[_in_slices(z**2 + (x - c) ** 2 <= 50.0**2)] = 1.0
    tilts = project(density, angles, device="cpu")
    return reconstruct_volume(tilts, angles, WBPSettings(thickness=SHAPE[0], device="cpu"))


def _levels(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each cylinder's inner level, and the vacuum 6-18 nm beside it at its own heights."""
    z, x = _zx()
    cores = [volume[_in_slices(z**2 + (x - c) ** 2 <= 35.0**2)].mean() for c in CENTRES_NM]
    beside = [volume[_in_slices((np.abs(z) < 30) & (np.abs(np.abs(x - c) - 62) < 6))].mean()
              for c in CENTRES_NM]
    return np.array(cores), np.array(beside)


@pytest.fixture(scope="module")
def wedge_reconstruction() -> np.ndarray:
    return _reconstruction(WEDGE)


def test_the_wedge_shades_the_middle_cylinder_and_darkens_the_vacuum_beside(wedge_reconstruction):
    cores, beside = _levels(wedge_reconstruction)
    assert cores[1] < cores[0] - 0.08  # the same density reads lower between neighbours
    assert np.all(beside < -0.3)


def test_restoration_evens_the_cylinders_and_clears_the_vacuum_beside(wedge_reconstruction):
    result = restore_missing_wedge(wedge_reconstruction, H, WEDGE, SETTINGS)
    restored = result.sections(wedge_reconstruction)
    cores, beside = _levels(restored)
    assert np.ptp(cores) < 0.05 * cores.mean()
    assert cores.mean() == pytest.approx(1.0, abs=0.2)
    assert np.all(np.abs(beside) < 0.05)
    assert result.factors == (2, 2, 2)
    assert restored.shape == SHAPE and restored.dtype == np.float32
    assert result.correction.shape == (24, 4, 80)  # kept coarse


def test_sections_restored_a_few_at_a_time_equal_the_whole(wedge_reconstruction):
    result = restore_missing_wedge(wedge_reconstruction, H, WEDGE, SETTINGS)
    whole = result.sections(wedge_reconstruction)
    parts = [result.sections(wedge_reconstruction[z0 : z0 + 5], z0) for z0 in range(0, SHAPE[0], 5)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)


def test_a_full_tilt_range_leaves_little_to_restore():
    rec = _reconstruction(FULL)
    restored = restore_missing_wedge(rec, H, FULL, SETTINGS).sections(rec)
    np.testing.assert_allclose(_levels(restored)[0], _levels(rec)[0], atol=0.01)


def test_a_field_without_dense_matter_comes_back_unchanged():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.05, SHAPE).astype(np.float32)
    result = restore_missing_wedge(noise, H, WEDGE, SETTINGS)
    np.testing.assert_array_equal(result.sections(noise), noise)
    assert result.support_share == 0.0


@pytest.mark.parametrize(
    ("volume", "angles", "message"),
    [
        (np.zeros((8, 8), np.float32), WEDGE, "must be 3D"),
        (np.zeros(SHAPE, np.float32), [0.0], "two or more"),
        (np.full(SHAPE, np.nan, np.float32), WEDGE, "not finite"),
    ],
)
def test_bad_input_is_refused_in_one_line(volume, angles, message):
    with pytest.raises(InputError, match=message):
        restore_missing_wedge(volume, H, angles, SETTINGS)
