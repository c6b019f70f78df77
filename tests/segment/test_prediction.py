"""Sliding-window prediction: shapes, seamless blending, streaming to files, stopping, memory."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_cryoli.errors import InputError
from napari_cryoli.io import read_mrc, write_mrc
from napari_cryoli.jobs import run_job
from napari_cryoli.segment import (
    Normalisation,
    PredictConfig,
    PredictOutputs,
    SegmentationModel,
    predict,
)
from napari_cryoli.segment.prediction import TileGrid, pool_phases, release_pages

LOGITS = torch.tensor([0.0, 1.0, 2.0, 3.0, 0.5])


def constant_model(depth: int = 2) -> SegmentationModel:
    """A model whose every output voxel has the same logits (zero weights, fixed head bias)."""
    model = SegmentationModel.create(base_channels=4, depth=depth, patch_size=16,
                                     normalisation=Normalisation(0.0, 1.0), device="cpu")
    with torch.no_grad():
        for p in model.network.parameters():
            p.zero_()
        model.network.head.bias.copy_(LOGITS)
    return model


def random_model(seed: int = 0) -> SegmentationModel:
    torch.manual_seed(seed)
    model = SegmentationModel.create(base_channels=4, depth=2, patch_size=16,
                                     normalisation=Normalisation(0.0, 1.0, per_image=False),
                                     device="cpu")
    with torch.no_grad():  # give batch norm statistics that make the output vary
        for m in model.network.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_var.fill_(0.05)
    return model


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("shape", [(21, 40, 35), (9, 16, 70)])
def test_constant_model_gives_constant_output(shape, overlap):
    image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    cfg = PredictConfig(tile=16, overlap=overlap, probabilities=True, device="cpu")
    pred = run_job(predict(image, constant_model(), cfg))
    expected = torch.softmax(LOGITS, 0).numpy()
    assert pred.labels.shape == shape and pred.labels.dtype == np.uint8
    assert np.all(pred.labels == 4)  # channel 3 is Cu, id 4
    for p, e in zip(pred.probabilities, expected):
        assert p.dtype == np.float16 and p.shape == shape
        np.testing.assert_allclose(p.astype(np.float32), e, atol=2e-3)
    entropy = -(expected * np.log(expected)).sum() / np.log(5)
    np.testing.assert_allclose(pred.uncertainty, entropy, atol=3e-3)


def test_tta_and_batching_do_not_change_a_flip_invariant_result():
    image = np.random.default_rng(1).normal(size=(20, 30, 30)).astype(np.float32)
    model = random_model()
    a = run_job(predict(image, model, PredictConfig(tile=16, batch_size=1, probabilities=True)))
    b = run_job(predict(image, model, PredictConfig(tile=16, batch_size=5, probabilities=True)))
    for pa, pb in zip(a.probabilities, b.probabilities):
        np.testing.assert_allclose(pa.astype(np.float32), pb.astype(np.float32), atol=3e-3)
    c = run_job(predict(image, model, PredictConfig(tile=16, tta=True)))
    assert c.labels.shape == image.shape


def test_tiled_prediction_agrees_with_the_network_on_the_whole_volume():
    image = np.random.default_rng(2).normal(size=(16, 64, 64)).astype(np.float32)
    model = random_model()
    with torch.no_grad():
        whole = model.network(torch.from_numpy(image)[None, None])[0].argmax(0).numpy()
    raw = PredictConfig(tile=32, overlap=0.5, phase_sigma_nm=0.0)
    tiled = run_job(predict(image, model, raw)).labels
    agree = (model.class_ids[whole] == tiled).mean()
    assert agree > 0.97


def _two_grains(seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Probabilities (1, 5, z, y, x) of a block whose left half is LiH and right half Li, each
    voxel's own evidence weak and noisy (log-odds 0.4 ± 1), framed by background."""
    rng = np.random.default_rng(seed)
    shape = (16, 32, 32)
    truth = np.zeros(shape, np.int64)
    truth[2:-2, 2:-2, 2:16], truth[2:-2, 2:-2, 16:-2] = 2, 1  # channels: LiH 2, Li 1
    log_odds = np.where(truth == 2, 0.4, -0.4) + rng.normal(0, 1, shape)
    p = np.zeros((5, *shape), np.float32)
    metal = truth > 0
    p[2] = np.where(metal, 0.9 / (1 + np.exp(-log_odds)), 0.0)
    p[1] = np.where(metal, 0.9 - p[2], 0.0)
    p[0] = np.where(metal, 0.1, 1.0)
    return torch.from_numpy(p)[None], truth


def test_pooling_phases_keeps_their_sum_and_the_other_classes():
    p, _ = _two_grains()
    pooled = pool_phases(p, (1, 2), 2.0)
    torch.testing.assert_close(pooled[:, 1] + pooled[:, 2], p[:, 1] + p[:, 2])
    torch.testing.assert_close(pooled[:, [0, 3, 4]], p[:, [0, 3, 4]])
    assert torch.equal(pool_phases(p, (1, 2), 2.0), pooled)


def test_pooling_phases_labels_each_grain_by_its_pooled_evidence():
    p, truth = _two_grains()
    metal = truth > 0
    own = p[0].argmax(0).numpy()
    pooled = pool_phases(p, (1, 2), 2.0)[0].argmax(0).numpy()
    assert (own[metal] == truth[metal]).mean() < 0.7  # each voxel alone: barely better than chance
    assert (pooled[metal] == truth[metal]).mean() > 0.9
    assert np.all(pooled[~metal] == 0)  # the background neither dilutes nor joins the grains


def test_prediction_pools_phases_unless_told_not_to():
    image = np.random.default_rng(3).normal(size=(16, 32, 32)).astype(np.float32)
    model = random_model()
    on = run_job(predict(image, model, PredictConfig(tile=16, probabilities=True)))
    off = run_job(predict(image, model, PredictConfig(tile=16, probabilities=True,
                                                      phase_sigma_nm=0.0)))
    li, lih = model.class_ids.tolist().index(2), model.class_ids.tolist().index(3)
    on_sum = on.probabilities[li].astype(np.float32) + on.probabilities[lih]
    off_sum = off.probabilities[li].astype(np.float32) + off.probabilities[lih]
    np.testing.assert_allclose(on_sum, off_sum, atol=3e-3)
    assert not np.allclose(on.probabilities[lih], off.probabilities[lih], atol=3e-3)
    with pytest.raises(InputError):
        PredictConfig(phase_sigma_nm=-1.0)


def test_grid_covers_volume_and_weights_sum_positive():
    grid = TileGrid.for_volume((50, 33, 7), 16, 0.25, 4)
    for axis, n in enumerate(grid.shape):
        covered = np.zeros(n, bool)
        for s in grid.starts[axis]:
            covered[s : s + grid.tile[axis]] = True
        assert covered.all()
        assert (grid.normaliser(axis) > 0).all()
    assert grid.tile[2] == 8  # a short axis gets one tile, padded to the size multiple


def test_streamed_outputs_keep_geometry(tmp_path):
    image = np.random.default_rng(3).normal(size=(12, 20, 24)).astype(np.float32)
    out = PredictOutputs(labels=tmp_path / "seg.mrc", probabilities=tmp_path / "p.mrc",
                         uncertainty=tmp_path / "u.mrc", voxel_size_nm=(1.5, 0.8, 0.8),
                         origin_nm=(10.0, 20.0, 30.0))
    model = random_model()
    mem = run_job(predict(image, model, PredictConfig(tile=16, probabilities=True),
                          voxel_size_nm=(1.5, 0.8, 0.8)))
    pred = run_job(predict(image, model, PredictConfig(tile=16), outputs=out))
    np.testing.assert_array_equal(np.asarray(pred.labels), mem.labels)
    seg = read_mrc(tmp_path / "seg.mrc")
    np.testing.assert_allclose(seg.voxel_size_nm, (1.5, 0.8, 0.8), rtol=1e-5)
    np.testing.assert_allclose(seg.origin_nm, (10.0, 20.0, 30.0), rtol=1e-5)
    assert seg.data.dtype == np.uint8
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["seg.mrc", "u.mrc", "p_background.mrc", "p_Li.mrc", "p_LiH.mrc",
                            "p_Cu.mrc", "p_SEI.mrc"])
    np.testing.assert_allclose(np.asarray(pred.probabilities[2], np.float32),
                               mem.probabilities[2].astype(np.float32))


def test_stop_mid_prediction_leaves_no_file(tmp_path):
    image = np.random.default_rng(4).normal(size=(40, 40, 40)).astype(np.float32)
    out = PredictOutputs(labels=tmp_path / "seg.mrc", uncertainty=tmp_path / "u.mrc",
                         probabilities=tmp_path / "p.mrc")
    stop = threading.Event()
    job = predict(image, random_model(), PredictConfig(tile=16, batch_size=1), outputs=out,
                  stop=stop)
    records = []
    pred = run_job(job, lambda p: (records.append(p), len(records) == 2 and stop.set()))
    assert pred.stopped and pred.labels is None
    assert 2 <= pred.tiles < records[0].total
    assert list(tmp_path.iterdir()) == []


def test_memory_mapped_input_is_read_and_released(tmp_path):
    image = np.random.default_rng(5).normal(size=(24, 32, 32)).astype(np.float32)
    write_mrc(tmp_path / "t.mrc", image, voxel_size_nm=1.0)
    volume = read_mrc(tmp_path / "t.mrc")
    assert isinstance(volume.data, np.memmap)
    model = random_model()
    a = run_job(predict(volume.data, model, PredictConfig(tile=16))).labels
    b = run_job(predict(image, model, PredictConfig(tile=16))).labels
    np.testing.assert_array_equal(a, b)


def test_release_pages_keeps_written_data(tmp_path):
    mm = np.memmap(tmp_path / "a.bin", dtype=np.float32, mode="w+", shape=(64, 64, 64))
    mm[:] = np.arange(64, dtype=np.float32)[:, None, None]
    release_pages(mm, 0, 40)
    assert np.array_equal(mm[:, 0, 0], np.arange(64))
    del mm
    back = np.memmap(tmp_path / "a.bin", dtype=np.float32, mode="r", shape=(64, 64, 64))
    assert np.array_equal(back[:, 5, 5], np.arange(64))
    release_pages(back, 3, 60)
    assert np.array_equal(back[:, 5, 5], np.arange(64))
