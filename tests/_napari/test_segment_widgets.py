"""Train -> predict -> copy -> fine-tune in a real viewer, with qtbot waiting on the workers."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli._napari.segment import (
    PREDICTION,
    START_CURRENT,
    START_PRETRAINED,
    START_SCRATCH,
    UNCERTAINTY,
    model_store,
)
from napari_cryoli.classes import BACKGROUND, LI, SEI

SCALE = (2.0, 2.0, 2.0)


def two_phase_volume():
    """A dark slab (Li) with a darker rim (SEI) in lighter vacuum, noise, a few strokes."""
    rng = np.random.default_rng(0)
    z, _y, x = np.mgrid[:24, :48, :48]
    truth = np.full(z.shape, BACKGROUND, np.uint8)
    truth[(np.abs(x - 24) < 12)] = SEI
    truth[(np.abs(x - 24) < 8)] = LI
    intensity = {BACKGROUND: 0.0, LI: -1.0, SEI: -2.0}
    image = np.vectorize(intensity.get)(truth).astype(np.float32)
    image += rng.normal(scale=0.3, size=image.shape).astype(np.float32)
    sparse = np.zeros_like(truth)
    for zz in (4, 12, 20):
        sparse[zz, ::3, :] = truth[zz, ::3, :]
    return image, sparse, truth


def train_and_predict_panels(viewer, image, sparse, folder):
    """The Train and Predict panels docked, Train set to ``image`` and its strokes ``sparse``."""
    image_layer = viewer.add_image(image, name="tomo", scale=SCALE)
    labels_layer = viewer.add_labels(sparse, name="tomo labels", scale=SCALE)
    # keep autosaves and checkpoints of this in-memory image inside the test's folder
    labels_layer.metadata["cryoli"] = {"autosave_folder": str(folder)}
    _, train = viewer.window.add_plugin_dock_widget("napari-cryoli", "Train")
    _, predict = viewer.window.add_plugin_dock_widget("napari-cryoli", "Predict")
    train.image_picker.set_layer(image_layer)
    train.labels_picker.set_layer(labels_layer)
    train.size.setCurrentText("small (fastest)")
    return train, predict


@pytest.fixture
def viewer_and_widgets(make_napari_viewer, tmp_path):
    image, sparse, truth = two_phase_volume()
    viewer = make_napari_viewer()
    train, predict = train_and_predict_panels(viewer, image, sparse, tmp_path)
    train.minutes.setValue(10.0)
    train.max_steps.setValue(30)
    return viewer, train, predict, truth, tmp_path


def test_train_predict_copy_finetune(viewer_and_widgets, wait_job, qtbot):
    viewer, train, predict, truth, folder = viewer_and_widgets
    train.intensity.setCurrentIndex(train.intensity.findData("calibrated"))
    wait_job(train.start())
    assert train.result is not None and not train.result.stopped
    assert train.result.model.normalisation.to_dict()["kind"] == "calibration"
    assert "Grey levels: vacuum" in train.status.text()
    assert train.session.losses and len(model_store(viewer).models) == 1
    assert (folder / "tomo.cryoli-labels.mrc").exists()  # labels autosaved at train start
    assert (folder / "tomo.cryoli-model.pt").exists()  # best model checkpointed

    assert predict.model() is not None
    wait_job(predict.start())
    prediction = viewer.layers[PREDICTION]
    assert prediction.data.shape == truth.shape and prediction.data.dtype == np.uint8
    np.testing.assert_allclose(prediction.scale, SCALE)
    assert UNCERTAINTY in viewer.layers
    assert prediction.metadata["cryoli"]["intensity"]["kind"] == "calibration"
    assert "Grey levels: vacuum" in predict.status.text()
    assert "Warning" not in predict.status.text()
    accuracy = (prediction.data == truth).mean()
    assert accuracy > 0.6, accuracy  # three classes: chance is about 1/3

    target = viewer.layers["tomo labels"]
    predict.target_picker.set_layer(target)
    predict.copy_scope.setCurrentText("whole volume")
    predict.copy_button.click()
    np.testing.assert_array_equal(target.data, prediction.data)
    target.undo()  # the copy is one undoable step
    assert (target.data == 0).any()
    target.redo()

    assert train.start_from.currentData() == START_CURRENT  # the newest model, picked for us
    wait_job(train.start())
    assert len(model_store(viewer).models) == 2
    assert "fine_tuned_from" in train.result.model.summary


def test_training_starts_from_the_pretrained_model(viewer_and_widgets, wait_job):
    _, train, *_ = viewer_and_widgets
    train.size.setCurrentText("standard (CPU, minutes)")
    train.max_steps.setValue(2)
    assert train.start_from.currentData() == START_PRETRAINED  # the default before any model
    wait_job(train.start())
    assert "pretrained_on" in train.result.model.summary["fine_tuned_from"]
    assert "Fine-tuning the model pre-trained on simulated tomograms" in train.status.text()


@pytest.mark.parametrize("start", [START_PRETRAINED, START_SCRATCH])
def test_a_network_of_another_size_starts_from_random_weights(viewer_and_widgets, wait_job, start):
    _, train, *_ = viewer_and_widgets  # the small network: not the pre-trained one's shape
    train.max_steps.setValue(2)
    train.start_from.setCurrentIndex(train.start_from.findData(start))
    wait_job(train.start())
    assert "fine_tuned_from" not in train.result.model.summary
    assert ("random weights" in train.status.text()) == (start == START_PRETRAINED)


def test_stop_training_keeps_a_usable_model(viewer_and_widgets, wait_job, qtbot):
    viewer, train, _predict, _truth, folder = viewer_and_widgets
    train.max_steps.setValue(0)
    handle = train.start()
    qtbot.waitUntil(lambda: len(train.session.steps) >= 3, timeout=60_000)
    train.controls.stop_button.click()
    wait_job(handle)
    assert train.result.stopped and len(model_store(viewer).models) == 1
    assert (folder / "tomo.cryoli-model.pt").exists()


def test_refusals(viewer_and_widgets, wait_job, qtbot):
    viewer, train, predict, _truth, _folder = viewer_and_widgets
    assert predict.start() is None  # no model yet
    labels = viewer.layers["tomo labels"]
    labels.data = np.zeros((24, 48, 40), np.uint8)
    assert train.start() is None  # shape mismatch: notification, nothing started
    labels.data = np.zeros((24, 48, 48), np.uint8)
    labels.scale = (4.0, 4.0, 4.0)
    assert train.start() is None  # another voxel size
    labels.scale = SCALE
    wait_job(train.start())  # nothing painted: the worker reports the error
    assert train.result is None


def test_save_and_load_model(viewer_and_widgets, wait_job, qtbot, tmp_path):
    viewer, train, predict, _truth, _folder = viewer_and_widgets
    wait_job(train.start())
    train.save_model(tmp_path / "m.pt")
    from napari_cryoli._napari.segment import load_model_into_store

    name = load_model_into_store(viewer, tmp_path / "m.pt")
    assert name == "m.pt" and predict.model_box.currentText() == "m.pt"
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    assert load_model_into_store(viewer, tmp_path / "bad.pt") is None


def test_training_on_two_tomograms_from_open_layers(viewer_and_widgets, wait_job):
    viewer, train, _predict, _truth, _folder = viewer_and_widgets
    image, labels = viewer.layers["tomo"], viewer.layers["tomo labels"]
    other = viewer.add_image(np.ascontiguousarray(image.data[:, :, ::-1]) * 1.5, name="tomo 2",
                             scale=SCALE)
    other_labels = viewer.add_labels(np.ascontiguousarray(labels.data[:, :, ::-1]),
                                     name="tomo 2 labels", scale=SCALE)
    train.image_picker.set_layer(other)
    train.labels_picker.set_layer(other_labels)
    train.add_pair_button.click()
    train.add_pair_button.click()  # the same pair twice is kept once
    assert train.pairs.count() == 1 and "tomo 2" in train.pairs.item(0).text()
    train.image_picker.set_layer(image)
    train.labels_picker.set_layer(labels)
    train.max_steps.setValue(3)
    wait_job(train.start())
    assert train.result.summary["tomograms"] == 2
    train.pairs.setCurrentRow(0)
    train.remove_pair_button.click()
    assert train.pairs.count() == 0


def test_predict_warns_when_the_calibration_takes_all_the_metal_for_lih(
        make_napari_viewer, wait_job, qtbot, tmp_path):
    """Development seed 8046: its metal cores read as one population (see test_calibration)."""
    from napari_cryoli.jobs import run_job
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    ph = run_job(simulate(PhantomSpec(aging="7d", seed=8046, n_dendrites=2, shape=(96, 160, 240))))
    strokes = np.zeros_like(ph.labels)
    strokes[::16] = ph.labels[::16]
    train, predict = train_and_predict_panels(make_napari_viewer(), ph.tomogram, strokes, tmp_path)
    train.max_steps.setValue(2)
    wait_job(train.start())
    assert "nan" not in train.status.text()  # two steps: no validation score to name it by
    wait_job(predict.start())
    assert "Warning: the metal cores read as one population" in predict.status.text()
    qtbot.waitUntil(predict.regions.find_button.isEnabled, timeout=60_000)  # its worker is done


def test_predict_matches_the_noise_of_the_training_tomogram_unless_unticked(
        make_napari_viewer, wait_job, qtbot, tmp_path):
    """Trained on a noisier copy of a phantom, the model's prediction of the phantom itself adds
    noise, and the status says how much; unticked, none is added."""
    from napari_cryoli.jobs import run_job
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    ph = run_job(simulate(PhantomSpec(aging="7d", seed=5, shape=(96, 96, 160))))
    noisier = ph.tomogram + np.random.default_rng(1).normal(0, 0.15, ph.tomogram.shape)
    strokes = np.zeros_like(ph.labels)
    strokes[::8] = ph.labels[::8]
    viewer = make_napari_viewer()
    train, predict = train_and_predict_panels(viewer, noisier.astype(np.float32), strokes,
                                              tmp_path)
    train.max_steps.setValue(2)
    wait_job(train.start())
    assert "trained on voxel noise" in train.status.text()
    predict.image_picker.set_layer(viewer.add_image(ph.tomogram, name="clean", scale=SCALE))
    assert predict.match_noise.isChecked()
    wait_job(predict.start())
    assert "added" in predict.status.text() and "no noise added" not in predict.status.text()
    qtbot.waitUntil(predict.regions.find_button.isEnabled, timeout=60_000)
    predict.match_noise.setChecked(False)
    wait_job(predict.start())
    assert "no noise added" in predict.status.text()
    qtbot.waitUntil(predict.regions.find_button.isEnabled, timeout=60_000)


def test_train_panel_asks_for_the_missing_wedge_to_be_restored(make_napari_viewer, tmp_path):
    image, sparse, _ = two_phase_volume()
    train, _ = train_and_predict_panels(make_napari_viewer(), image, sparse, tmp_path)
    assert not train.config().restore_wedge and train.config().tilt_range_deg == 60.0
    train.intensity.setCurrentIndex(train.intensity.findData("calibrated"))
    train.restore_wedge.setChecked(True)
    train.tilt_range.setValue(50.0)
    config = train.config()
    assert config.restore_wedge and config.tilt_range_deg == 50.0
    train.intensity.setCurrentIndex(train.intensity.findData("percentiles"))
    assert train.start() is None  # refused in one message: restoring needs calibrated levels
