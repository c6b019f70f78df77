"""Jobs and the viewer's lifetime: refusals, closed layers, closed viewers, unsaved strokes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.classes import LI
from napari_cryoli.io.mrc import read_labels, write_mrc
from napari_cryoli.io.tiltseries import TiltSeries, write_tilt_series

from .test_measure_widget import VOXEL, rod_segmentation


def long_series(tmp_path):
    """A tilt series big enough that its reconstruction runs for a while."""
    path = tmp_path / "long.st"
    angles = np.arange(-60.0, 61.0, 1.0)
    write_tilt_series(path, TiltSeries(np.ones((121, 640, 96), np.float32), angles, 1.0))
    return path


def test_second_heavy_job_is_refused_across_widgets(make_napari_viewer, wait_job, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(long_series(tmp_path)), plugin="napari-cryoli")
    viewer.add_labels(rod_segmentation(), name="seg", scale=VOXEL)
    _, reconstruct = viewer.window.add_plugin_dock_widget("napari-cryoli", "Reconstruct")
    _, measure = viewer.window.add_plugin_dock_widget("napari-cryoli", "Measure")
    _, _predict = viewer.window.add_plugin_dock_widget("napari-cryoli", "Predict")
    handle = reconstruct.start()
    assert handle is not None
    assert reconstruct.start() is None  # the same job twice
    assert measure.start() is None  # another job while one runs
    handle.stop()
    wait_job(handle)
    measure_handle = measure.start()  # free again
    assert measure_handle is not None
    wait_job(measure_handle)


def test_closing_the_layer_a_job_uses(make_napari_viewer, wait_job):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(rod_segmentation(), name="seg", scale=VOXEL)
    _, measure = viewer.window.add_plugin_dock_widget("napari-cryoli", "Measure")
    measure.labels_picker.set_layer(layer)
    handle = measure.start()
    viewer.layers.remove("seg")
    wait_job(handle)
    assert measure.result is not None  # measured on the worker's own copy
    assert measure.measure_button.isEnabled()


@pytest.fixture
def closable_viewer(qtbot):
    """A viewer the test closes itself, as a user closing napari would (not the fixture's)."""
    import gc

    import napari
    from napari._qt.qt_viewer import QtViewer

    viewer = napari.Viewer(show=True)
    yield viewer
    if getattr(viewer.window, "_qt_window", None) is not None:  # the test did not close it
        viewer.close()
    qtbot.wait(50)
    gc.collect()
    QtViewer._instances.clear()


def test_closing_the_viewer_during_a_job(closable_viewer, qtbot, tmp_path):
    viewer = closable_viewer
    viewer.open(str(long_series(tmp_path)), plugin="napari-cryoli")
    _, reconstruct = viewer.window.add_plugin_dock_widget("napari-cryoli", "Reconstruct")
    handle = reconstruct.start()
    viewer.close()
    qtbot.waitUntil(lambda: handle.done, timeout=120_000)
    qtbot.wait(50)
    assert handle.stop_event.is_set()  # the job was asked to stop; its callbacks were dropped without errors


def test_unsaved_strokes_are_saved_when_napari_closes(closable_viewer, qtbot, tmp_path):
    path = tmp_path / "tomo.mrc"
    write_mrc(path, np.zeros((8, 32, 32), np.float32), voxel_size_nm=(1, 1, 1))
    viewer = closable_viewer
    viewer.open(str(path), plugin="napari-cryoli")
    _, annotate = viewer.window.add_plugin_dock_widget("napari-cryoli", "Annotate")
    qtbot.wait(50)
    annotate.select_class(LI)
    annotate.labels.paint((4, 16, 16), LI)
    painted = annotate.labels.data.copy()
    assert annotate._save_timer.isActive()  # the autosave is still pending
    viewer.close()
    saved = read_labels(tmp_path / "tomo.cryoli-labels.mrc").data
    np.testing.assert_array_equal(saved, painted)


def test_closing_the_viewer_while_uncertain_regions_are_ranked(closable_viewer, qtbot):
    viewer = closable_viewer
    rng = np.random.default_rng(0)
    uncertainty = viewer.add_image(rng.random((96, 256, 256), dtype=np.float32),
                                   name="uncertainty")
    _, predict = viewer.window.add_plugin_dock_widget("napari-cryoli", "Predict")
    worker = predict.regions.find(uncertainty)
    finished = []
    worker.finished.connect(lambda: finished.append(True))
    viewer.close()
    qtbot.waitUntil(lambda: bool(finished), timeout=120_000)
    qtbot.wait(50)  # the panel is gone; its result and finish slots are dropped without errors
