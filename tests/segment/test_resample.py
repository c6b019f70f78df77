"""Resampling between a tomogram's grid and a model's working voxel size."""

import numpy as np
import pytest

from napari_cryoli.classes import BACKGROUND, LI
from napari_cryoli.io import read_mrc, write_mrc
from napari_cryoli.jobs import run_job
from napari_cryoli.segment import (
    Normalisation,
    PredictConfig,
    PredictOutputs,
    SegmentationModel,
    predict,
)
from napari_cryoli.segment.calibration import Calibration
from napari_cryoli.segment.resample import (
    WorkingGrid,
    from_blocks,
    needs_resampling,
    to_original_grid,
    to_working_grid,
    working_shape,
)
from napari_cryoli.segment.training import labels_to_working_grid


def test_fine_voxels_are_binned_to_the_working_size():
    rng = np.random.default_rng(0)
    fine = rng.normal(size=(40, 40, 40)).astype(np.float32)
    coarse = to_working_grid(fine, 1.0, 2.0)
    assert coarse.shape == (20, 20, 20)
    np.testing.assert_allclose(coarse, fine.reshape(20, 2, 20, 2, 20, 2).mean(axis=(1, 3, 5)),
                               atol=1e-5)
    assert not needs_resampling((2.02, 2.0, 1.98), 2.0) and needs_resampling(0.84, 2.0)
    assert working_shape((100, 200, 300), 0.84, 2.0) == (42, 84, 126)


def test_block_means_come_back_at_block_centres():
    coarse = np.arange(48, dtype=np.float32).reshape(4, 3, 4)
    fine = from_blocks(coarse, (2, 2, 2), (9, 6, 8))  # one voxel left over along z
    assert fine.shape == (9, 6, 8)
    # away from the edges, each 2x2x2 block of a linear ramp averages to its coarse value
    blocks = fine[:8].reshape(4, 2, 3, 2, 4, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(blocks[1:-1, 1:-1, 1:-1], coarse[1:-1, 1:-1, 1:-1], atol=1e-5)
    np.testing.assert_allclose(fine[8], fine[7])  # held constant beyond the last block



def test_a_smooth_field_survives_the_round_trip():
    z, y, x = np.meshgrid(*(np.arange(n) for n in (30, 50, 50)), indexing="ij")
    field = np.sin(x / 9.0) + np.cos(y / 7.0) + z / 30.0
    work = to_working_grid(field.astype(np.float32), 1.0, 2.5)
    back = to_original_grid(work[None], 0, 30, field.shape, 1.0, 2.5)[0]
    assert back.shape == field.shape
    inner = (slice(3, -3),) * 3
    assert np.abs(back - field)[inner].max() < 0.12


def test_sparse_labels_keep_their_classes_on_the_working_grid():
    labels = np.zeros((40, 40, 40), np.uint8)
    labels[10:14, 5:35, 20:23] = LI
    labels[30:32, :, :] = BACKGROUND
    work = labels_to_working_grid(labels, 1.0, 2.0)
    assert work.shape == (20, 20, 20)
    assert set(np.unique(work)) == {0, BACKGROUND, LI}
    assert (work == LI).sum() == pytest.approx((labels == LI).sum() / 8, rel=0.35)


def test_prediction_on_finer_voxels_comes_back_on_the_image_grid(tmp_path):
    from napari_cryoli.segment.network import Architecture, UNet3d

    net = UNet3d(Architecture(5, 4, 2, (1.0,)))
    model = SegmentationModel(net, normalisation=Calibration(0.0, -1.0), voxel_size_nm=(2.0,) * 3,
                              patch_size=16)
    rng = np.random.default_rng(1)
    image = rng.normal(size=(24, 40, 36)).astype(np.float32)
    image[8:16, 10:30, 10:26] -= 1.0
    out = PredictOutputs(labels=tmp_path / "seg.mrc", voxel_size_nm=(1.0, 1.0, 1.0))
    result = run_job(predict(image, model, PredictConfig(tile=16, uncertainty=True), outputs=out))
    assert result.resampled_from_nm == (1.0, 1.0, 1.0)
    assert result.labels.shape == image.shape and result.uncertainty.shape == image.shape
    assert result.intensity["kind"] == "calibration"
    seg = read_mrc(tmp_path / "seg.mrc")
    np.testing.assert_allclose(seg.voxel_size_nm, (1.0, 1.0, 1.0), rtol=1e-5)
    assert any("napari-cryoli intensity vacuum" in t for t in seg.header["labels"])


@pytest.mark.parametrize("voxel", [1.0, 2.5, (1.5, 0.8, 0.8), 0.84, 3.1])
def test_working_grid_sections_equal_the_whole_resampled_volume(tmp_path, voxel):
    image = np.random.default_rng(2).normal(size=(41, 37, 30)).astype(np.float32)
    write_mrc(tmp_path / "t.mrc", image, voxel_size_nm=voxel)
    mapped = read_mrc(tmp_path / "t.mrc").data
    whole = to_working_grid(image, voxel, 2.0)
    grid = WorkingGrid(mapped, voxel, 2.0)
    assert grid.shape == whole.shape
    for z0, z1 in [(0, 5), (3, 17), (whole.shape[0] - 6, whole.shape[0])]:
        np.testing.assert_array_equal(grid[z0:z1, 2:9, 1:], whole[z0:z1, 2:9, 1:])


def test_a_resampled_prediction_holds_neither_grid_whole(tmp_path):
    """Upsampled for the network and interpolated back a few sections at a time: the memory
    allocated stays below the working grid's class probabilities (float16), which grow with the
    depth of the tomogram."""
    import tracemalloc

    from napari_cryoli.segment.network import Architecture, UNet3d

    net = UNet3d(Architecture(5, 4, 2, (1.0,)))
    model = SegmentationModel(net, normalisation=Normalisation(0.0, 1.0, per_image=False),
                              voxel_size_nm=(2.0,) * 3, patch_size=16)
    image = np.random.default_rng(3).normal(size=(160, 48, 48)).astype(np.float32)
    write_mrc(tmp_path / "t.mrc", image, voxel_size_nm=2.5)
    mapped = read_mrc(tmp_path / "t.mrc").data
    out = PredictOutputs(labels=tmp_path / "seg.mrc", voxel_size_nm=(2.5,) * 3)
    held = 5 * np.prod(working_shape(image.shape, 2.5, 2.0)) * 2
    tracemalloc.start()
    try:
        result = run_job(predict(mapped, model, PredictConfig(tile=16, phase_sigma_nm=0),
                                 outputs=out))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.resampled_from_nm == (2.5, 2.5, 2.5)
    assert peak < held, f"{peak / 2**20:.1f} MiB allocated, {held / 2**20:.1f} MiB held"
