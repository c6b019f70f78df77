"""Training on sparse labels: the loss, input checks, stopping, determinism, learning."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI
from napari_cryoli.errors import InputError
from napari_cryoli.jobs import run_job
from napari_cryoli.segment import PredictConfig, SegmentationModel, TrainConfig, predict, train
from napari_cryoli.segment.sampling import (
    ACROSS_TOMOGRAMS,
    IGNORE,
    WITHIN_TOMOGRAM,
    Jitter,
    augment,
)
from napari_cryoli.segment.training import (
    LR_FINE_TUNING,
    LR_FROM_SCRATCH,
    keep_loss,
    sparse_loss,
)

from .synthetic import rod_volume, sparse_strokes

#: The training mechanics on rods in noise, which have no vacuum/Li pair to calibrate on.
TINY = TrainConfig(base_channels=4, depth=2, patch_size=24, batch_size=2, minutes=None,
                   max_steps=4, eval_every=2, device="cpu", intensity="percentiles")


def test_loss_ignores_unlabelled_voxels():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 6, 6, 6, generator=g)
    target = torch.randint(0, 5, (2, 6, 6, 6), generator=g)
    target[:, :3] = IGNORE
    changed = logits.clone()
    changed[:, :, :3] = torch.randn(2, 5, 3, 6, 6, generator=g) * 10
    w = torch.ones(5)
    assert torch.allclose(sparse_loss(logits, target, w), sparse_loss(changed, target, w))
    changed.requires_grad_(True)
    sparse_loss(changed, target, w).backward()
    assert changed.grad[:, :, :3].abs().max() == 0
    assert changed.grad[:, :, 3:].abs().max() > 0


def test_loss_of_nothing_painted_is_zero():
    logits = torch.randn(1, 5, 4, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4, 4), IGNORE)
    loss = sparse_loss(logits, target, torch.ones(5))
    loss.backward()
    assert float(loss) == 0.0


@pytest.mark.parametrize(
    ("labels_fn", "message"),
    [
        (lambda img, lab: lab[:-1], "do not match"),
        (lambda img, lab: np.zeros_like(lab), "nothing is painted"),
        (lambda img, lab: np.where(lab > 0, LI, 0).astype(np.uint8), "only Li is painted"),
        (lambda img, lab: np.where(lab > 0, 9, 0).astype(np.uint8), "not classes"),
    ],
)
def test_bad_labels_raise_before_any_work(labels_fn, message):
    image, truth = rod_volume((16, 24, 24))
    labels = labels_fn(image, sparse_strokes(truth, sections=(8,)))
    with pytest.raises(InputError, match=message):
        train(image, labels, TINY)


def test_nan_in_image_is_refused():
    image, truth = rod_volume((16, 24, 24))
    image[3, 4, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        train(image, sparse_strokes(truth, sections=(8,)), TINY)


def test_config_needs_a_budget():
    with pytest.raises(InputError):
        TrainConfig(minutes=None, max_steps=None)


def test_augmentation_keeps_z_along_z_and_labels_with_image():
    rng = np.random.default_rng(1)
    z = np.arange(8, dtype=np.float32)[:, None, None] * np.ones((8, 8, 8), np.float32)
    labels = z.astype(np.int64)  # labels that mirror the image
    for _ in range(20):
        img, lab = augment(z.copy(), labels.copy(), rng)
        # Each z-section is constant: nothing turned z into y or x.
        assert np.allclose(lab.std(axis=(1, 2)), 0)
        # The image moved with the labels: brightness is monotone in the label everywhere.
        order = np.argsort(lab[:, 0, 0])
        assert np.all(np.diff(img[order].mean(axis=(1, 2))) > 0)


@pytest.mark.parametrize("jitter", [WITHIN_TOMOGRAM, ACROSS_TOMOGRAMS])
def test_intensity_jitter_stays_in_its_ranges(jitter: Jitter):
    rng = np.random.default_rng(2)
    flat = np.full((16, 16, 16), -0.4, np.float32)  # a Li grey level, normalised
    means = [augment(flat, np.zeros(flat.shape, np.int64), rng, jitter)[0].mean()
             for _ in range(200)]
    low = -0.4 * np.exp(jitter.log_gain) - jitter.offset
    high = -0.4 * np.exp(-jitter.log_gain) + jitter.offset
    assert low - 0.01 <= min(means) and max(means) <= high + 0.01
    assert max(means) - min(means) > 0.5 * (high - low)  # and it does vary


def test_training_on_one_tomogram_jitters_less_than_li_and_lih_differ():
    # Normalised Li and LiH grey levels differ by ~0.12 in the simulator (docs/segmentation.md).
    assert WITHIN_TOMOGRAM.offset + 0.4 * (np.exp(WITHIN_TOMOGRAM.log_gain) - 1) < 0.12 / 2
    assert TrainConfig().jitter == WITHIN_TOMOGRAM


def test_training_is_deterministic_for_a_seed():
    image, truth = rod_volume((20, 32, 32))
    labels = sparse_strokes(truth, sections=(6, 14))
    a = run_job(train(image, labels, TINY))
    b = run_job(train(image, labels, TINY))
    assert a.history["loss"] == b.history["loss"]
    assert a.summary["steps"] == TINY.max_steps


def test_stop_ends_training_between_steps(tmp_path):
    image, truth = rod_volume((20, 32, 32))
    labels = sparse_strokes(truth, sections=(6, 14))
    stop = threading.Event()
    cfg = TrainConfig(base_channels=4, depth=2, patch_size=24, minutes=10, device="cpu",
                      preview_z=10, preview_every_s=0.0, intensity="percentiles")
    job = train(image, labels, cfg, checkpoint_path=tmp_path / "m.pt", stop=stop)
    records = []
    result = run_job(job, lambda p: (records.append(p), len(records) == 3 and stop.set()))
    assert result.stopped
    assert result.summary["steps"] == 3
    assert records[0].preview is not None and records[0].preview.shape == image.shape[1:]
    assert records[0].preview.dtype == np.uint8
    assert SegmentationModel.load(tmp_path / "m.pt").summary["stopped"] is True


def test_short_training_beats_chance():
    image, truth = rod_volume((32, 48, 48), seed=3)
    labels = sparse_strokes(truth)
    assert (labels > 0).mean() < 0.02
    cfg = TrainConfig(base_channels=8, depth=2, patch_size=32, batch_size=2, minutes=None,
                      max_steps=80, eval_every=20, lr=1e-2, device="cpu", seed=1,
                      intensity="percentiles")
    result = run_job(train(image, labels, cfg))
    # The returned model is the latest of those with the best held-out Dice (ties go later).
    h = result.history
    best = max(h["val_mean"])
    assert result.summary["best_step"] == max(
        s for s, v in zip(h["val_step"], h["val_mean"]) if v == best)
    pred = run_job(predict(image, result.model, PredictConfig(tile=32, device="cpu"))).labels
    # On a new noise realisation of the same scene: learned structure, not memorised noise.
    other, other_truth = rod_volume((32, 48, 48), seed=4)
    pred_other = run_job(predict(other, result.model, PredictConfig(tile=32))).labels
    for p, t in ((pred, truth), (pred_other, other_truth)):
        accuracy = (p == t).mean()
        majority = np.bincount(t.ravel()).max() / t.size
        assert accuracy > majority + 0.1
        dice = {c: 2 * ((p == c) & (t == c)).sum() / ((p == c).sum() + (t == c).sum())
                for c in (BACKGROUND, LI, SEI)}
        assert min(dice.values()) > 0.5, dice
    assert set(np.unique(pred)) <= {BACKGROUND, LI, LIH, CU, SEI}


def test_keep_loss_counts_only_unpainted_voxels_and_vanishes_at_the_start():
    torch.manual_seed(0)
    teacher = torch.nn.Conv3d(1, 5, 1).eval()
    x = torch.randn(2, 1, 6, 6, 6)
    target = torch.full((2, 6, 6, 6), IGNORE)
    target[:, :3] = LI
    with torch.no_grad():
        same = teacher(x)
    assert float(keep_loss(same, teacher, x, target)) == pytest.approx(0.0, abs=1e-6)
    moved = same.clone()
    moved[:, :, :3] += torch.randn(2, 5, 3, 6, 6) * 10  # painted voxels: no effect
    assert float(keep_loss(moved, teacher, x, target)) == pytest.approx(0.0, abs=1e-6)
    moved[:, :, 3:] += torch.randn(2, 5, 3, 6, 6)
    assert float(keep_loss(moved, teacher, x, target)) > 0.01


def test_keep_loss_holds_sure_background_harder():
    start = torch.zeros(1, 5, 4, 4, 4)
    start[:, 0, :2] = 6.0  # first half: background at p ~ 0.99, above SURE_BACKGROUND
    start[:, 0, 2:] = 1.0  # second half: background at p ~ 0.4
    target = torch.full((1, 4, 4, 4), IGNORE)
    x = torch.zeros(1, 1, 4, 4, 4)
    for half in (slice(0, 2), slice(2, 4)):
        moved = start.clone()
        moved[:, 4, half] += 3.0  # SEI grows in that half only
        plain = float(keep_loss(moved, lambda _: start, x, target))
        held = float(keep_loss(moved, lambda _: start, x, target, background_weight=5.0))
        assert plain > 0.01
        assert held == pytest.approx(5 * plain if half.start == 0 else plain, rel=1e-5)


def test_fine_tuning_scores_the_start_but_returns_a_trained_model():
    image, truth = rod_volume((32, 48, 48), seed=3)
    labels = np.zeros_like(truth)
    labels[6::6] = truth[6::6]  # whole sections: enough of several classes to hold some out
    start = run_job(train(image, labels, TINY)).model
    tuned = run_job(train(image, labels, replace(TINY, patience=None), init=start))
    assert tuned.history["val_step"] == [0, 2, 4] and len(tuned.history["val_dice"][0]) >= 2
    assert tuned.summary["best_step"] > 0


def test_fine_tuning_keeps_the_starting_normalisation_statistics():
    image, truth = rod_volume((20, 32, 32))
    labels = sparse_strokes(truth, sections=(6, 14))
    start = run_job(train(image, labels, TINY)).model
    # the last state returns, not the best; the tiny start may label the strokes poorly
    no_val = replace(TINY, val_fraction=0.0, adapt_wrong_start=False)
    tuned = run_job(train(image, labels, no_val, init=start)).model
    stats = [(a, b) for a, b in zip(start.network.buffers(), tuned.network.buffers())
             if a.dtype.is_floating_point]
    assert stats and all(torch.equal(a, b) for a, b in stats)
    assert tuned.summary["lr"] == LR_FINE_TUNING and start.summary["lr"] == LR_FROM_SCRATCH
    loose = run_job(train(image, labels, replace(no_val, freeze_norm=False), init=start))
    assert not all(torch.equal(a, b) for a, b in zip(start.network.buffers(),
                                                     loose.model.network.buffers())
                   if a.dtype.is_floating_point)


def test_several_tomograms_train_one_model():
    image, truth = rod_volume((20, 32, 32))
    labels = sparse_strokes(truth, sections=(6,))
    other = np.ascontiguousarray(image[:, :, ::-1]) * 2.0 + 1.0  # another gain and offset
    more_labels = sparse_strokes(np.ascontiguousarray(truth[:, :, ::-1]), sections=(14,))
    result = run_job(train(image, labels, TINY, more=[(other, more_labels, None)]))
    assert result.summary["tomograms"] == 2 and len(result.summary["intensities"]) == 2
    both = sum((lab > 0).sum() for lab in (labels, more_labels))
    assert sum(result.summary["painted_voxels"].values()) == both
    with pytest.raises(InputError, match="tomogram 2"):
        train(image, labels, TINY, more=[(other, labels[:, :10], None)])


def test_a_start_that_labels_the_strokes_poorly_is_let_go():
    image, truth = rod_volume((20, 32, 32))
    labels = sparse_strokes(truth, sections=(6, 14))
    start = run_job(train(image, labels, replace(TINY, max_steps=60))).model
    flipped = -image  # the start's grey levels turned over: it mislabels every stroke
    run = train(flipped, labels, replace(TINY, val_fraction=0.0), init=start)
    first = next(run)
    check = first.metrics["start_check"]
    assert check["wrong"] and check["mean"] < 0.5 and "lets go" in check["note"]
    result = run_job(run)
    assert result.summary["start_check"]["wrong"]
    same = run_job(train(image, labels, replace(TINY, val_fraction=0.0), init=start))
    assert not same.summary["start_check"]["wrong"]
