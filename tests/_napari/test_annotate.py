"""The Annotate widget in a real viewer: labels layer, classes, counts, view helpers, autosave."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_cryoli._napari.annotate import AnnotateWidget
from napari_cryoli.classes import BACKGROUND, CU, DEFAULT_ONTOLOGY, LI, LIH, SEI
from napari_cryoli.io.mrc import read_labels, write_mrc

SCALE = (2.0, 1.5, 1.5)
TRANSLATE = (10.0, -4.0, 6.0)


@pytest.fixture
def tomogram(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tomo.mrc"
    write_mrc(path, rng.normal(size=(12, 40, 48)).astype(np.float32), voxel_size_nm=SCALE,
              origin_nm=TRANSLATE)
    return path


@pytest.fixture
def viewer_widget(make_napari_viewer, tomogram):
    viewer = make_napari_viewer()
    viewer.open(str(tomogram), plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Annotate")
    return viewer, widget


def test_docks_through_napari(viewer_widget):
    _, widget = viewer_widget
    assert isinstance(widget, AnnotateWidget)
    assert widget.image is not None and widget.image.name == "tomo"


def test_new_labels_layer_matches_tomogram(viewer_widget):
    viewer, widget = viewer_widget
    labels = widget.new_labels()
    image = widget.image
    assert labels.data.dtype == np.uint8 and labels.data.shape == image.data.shape
    np.testing.assert_allclose(labels.scale, SCALE)
    np.testing.assert_allclose(labels.translate, TRANSLATE)
    assert list(labels.features["class"]) == ["not annotated", *DEFAULT_ONTOLOGY.names]
    np.testing.assert_allclose(labels.colormap.map(np.array([0]))[0][3], 0.0)
    for cls in DEFAULT_ONTOLOGY:
        np.testing.assert_allclose(labels.colormap.map(np.array([cls.id]))[0], cls.color, atol=1e-6)
    assert widget.new_labels().unique_id == labels.unique_id  # reused, not duplicated
    assert len([la for la in viewer.layers if la._type_string == "labels"]) == 1


def test_class_buttons_select_and_counts_follow_strokes(viewer_widget, qtbot):
    _viewer, widget = viewer_widget
    widget.class_buttons[LIH].click()
    labels = widget.labels
    assert labels is not None and labels.selected_label == LIH and labels.mode == "paint"
    labels.brush_size = 5
    labels.paint((3, 20, 20), LIH)
    qtbot.wait(10)
    n_lih = int((labels.data == LIH).sum())
    assert n_lih > 0 and widget.counts()[LIH] == n_lih
    assert f"({n_lih:,})" in widget.class_buttons[LIH].text()
    widget.select_class(CU)
    labels.paint((9, 5, 5), CU)
    qtbot.wait(10)
    assert widget.counts()[CU] == int((labels.data == CU).sum()) > 0
    assert widget.counts()[LIH] == n_lih


def test_alt_number_shortcut_picks_class(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    labels = widget.new_labels()
    viewer.layers.selection.active = labels
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, Qt.Key.Key_5, Qt.KeyboardModifier.AltModifier)
    assert labels.selected_label == SEI
    qtbot.keyClick(canvas, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)
    assert labels.selected_label == LI


def test_custom_class(viewer_widget, qtbot):
    _, widget = viewer_widget
    widget.new_class_edit.setText("extended SEI")
    widget.add_class_button.click()
    assert widget.ontology.names[-1] == "extended SEI" and widget.ontology.ids[-1] == 6
    assert "extended SEI" in list(widget.labels.features["class"])
    assert 6 in widget.class_buttons
    widget.select_class(6)
    widget.labels.paint((5, 10, 10), 6)
    qtbot.wait(10)
    assert widget.counts()[6] > 0
    assert widget.add_class("Extended SEI") is None  # duplicate names refused


def test_view_helpers(viewer_widget):
    viewer, widget = viewer_widget
    image = widget.image
    widget.low_percentile.setValue(1.0)
    widget.high_percentile.setValue(99.0)
    widget.auto_contrast()
    lo, hi = np.percentile(np.asarray(image.data), [1.0, 99.0])
    np.testing.assert_allclose(image.contrast_limits, (lo, hi), rtol=1e-5)

    widget.smooth_check.setChecked(True)
    smoothed = viewer.layers["tomo (smoothed)"]
    plane = np.asarray(smoothed.data[6])
    assert plane.shape == (40, 48) and plane.std() < np.asarray(image.data[6]).std()
    widget.smooth_check.setChecked(False)
    assert "tomo (smoothed)" not in viewer.layers

    widget.slab.setValue(5)
    assert viewer.dims.thickness_step[0] == 4


def test_autosave_then_restore_on_reopen(make_napari_viewer, tomogram, qtbot):
    viewer = make_napari_viewer()
    viewer.open(str(tomogram), plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Annotate")
    widget.select_class(BACKGROUND)
    widget.labels.paint((2, 30, 30), BACKGROUND)
    widget.select_class(LI)
    widget.labels.paint((6, 10, 12), LI)
    qtbot.wait(10)
    painted = widget.labels.data.copy()
    assert widget._save_timer.isActive()  # a stroke schedules an autosave
    widget._save_timer.stop()
    widget.autosave()
    qtbot.waitUntil(lambda: widget.last_saved is not None, timeout=10_000)
    sidecar = tomogram.with_name("tomo.cryoli-labels.mrc")
    np.testing.assert_array_equal(read_labels(sidecar).data, painted)

    # reopen the same tomogram: the autosave is offered back and restores exactly
    viewer.layers.clear()
    viewer.open(str(tomogram), plugin="napari-cryoli")
    assert widget.restore_box.isVisibleTo(widget)
    restored = widget.restore()
    np.testing.assert_array_equal(restored.data, painted)
    np.testing.assert_allclose(restored.scale, SCALE)
    assert widget.counts()[LI] == int((painted == LI).sum())
