"""Uncertain regions: found, measured and ranked exactly on volumes with known blobs."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.errors import InputError
from napari_cryoli.segment.uncertain_regions import RegionSettings, uncertain_regions


def blobs() -> np.ndarray:
    """Three boxes of known size and uncertainty in a confident volume."""
    u = np.full((20, 30, 40), 0.1, np.float32)
    u[2:4, 2:12, 2:12] = 0.9  # 200 voxels x 0.9 = 180
    u[10:16, 10:20, 10:20] = 0.6  # 600 voxels x 0.6 = 360: ranked first
    u[15:17, 25:27, 30:32] = 0.95  # 8 voxels: below min_voxels
    u[3, 7, 7] = 1.0  # the first box's peak
    return u


def test_regions_are_ranked_by_size_times_mean_uncertainty():
    regions = uncertain_regions(blobs(), RegionSettings(threshold=0.5, min_voxels=20))
    assert [r.rank for r in regions] == [1, 2]
    big, small = regions
    assert big.n_voxels == 600 and big.mean_uncertainty == pytest.approx(0.6)
    assert big.bbox == ((10, 16), (10, 20), (10, 20))
    assert big.centroid == pytest.approx((12.5, 14.5, 14.5))
    assert small.n_voxels == 200 and small.peak == (3, 7, 7)
    assert small.mean_uncertainty == pytest.approx((199 * 0.9 + 1.0) / 200)
    assert big.score > small.score


def test_threshold_min_size_and_count():
    u = blobs()
    assert len(uncertain_regions(u, RegionSettings(threshold=0.5, min_voxels=5))) == 3
    assert len(uncertain_regions(u, RegionSettings(threshold=0.7, min_voxels=20))) == 1
    assert len(uncertain_regions(u, RegionSettings(threshold=0.5, max_regions=1))) == 1
    assert uncertain_regions(np.zeros((8, 8, 8), np.float32)) == ()


def test_diagonal_neighbours_are_separate_regions():
    u = np.zeros((3, 3, 3), np.float32)
    u[0, 0, 0] = u[1, 1, 1] = 1.0
    assert len(uncertain_regions(u, RegionSettings(min_voxels=1))) == 2


def test_nan_counts_as_confident():
    u = np.full((4, 4, 4), np.nan, np.float32)
    u[1:3, 1:3, 1:3] = 0.8
    (region,) = uncertain_regions(u, RegionSettings(min_voxels=1))
    assert region.n_voxels == 8


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"threshold": 1.5}, {"min_voxels": 0},
                                    {"max_regions": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(InputError):
        RegionSettings(**kwargs)


def test_bad_array_is_refused():
    with pytest.raises(InputError):
        uncertain_regions(np.zeros(5, np.float32))
