"""A whole user session in a real viewer, guided by the Workflow panel.

Open a tomogram file, paint strokes with the mouse, train, predict, copy a slice into the labels,
correct where the model hesitates, fine-tune, predict again, measure, export JSON and CSV. Each
step asserts what the user sees: the Workflow panel's marks and next action, the layers, the
counts on the class buttons, the table rows, the numbers and the files.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from napari.utils._proxies import ReadOnlyWrapper
from napari.utils.interactions import (
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)

from napari_cryoli._napari import measure as measure_module
from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI
from napari_cryoli.io.mrc import write_mrc
from napari_cryoli.jobs import run_job
from napari_cryoli.tomo.phantom import PhantomSpec, simulate

VOXEL = 2.0
#: A small dendrite tomogram: 64 voxels cube at 2 nm keeps training and prediction short on a CPU.
SPEC = PhantomSpec(shape=(64, 64, 64), voxel_size_nm=VOXEL, diameter_nm=(60.0, 70.0), seed=3)
STROKE_SLICES = (24, 40)


@pytest.fixture(scope="module")
def phantom():
    return run_job(simulate(SPEC))


def drag(viewer, layer, mouse_event, points_zyx) -> None:
    """A brush stroke with the mouse through ``points_zyx`` (voxel indices on one slice): press,
    move, release, through napari's mouse callbacks as the canvas sends them."""
    world = [tuple(np.asarray(p, float) * layer.scale + layer.translate) for p in points_zyx]
    common = {"view_direction": None, "dims_displayed": (1, 2),
              "dims_point": list(viewer.dims.point)}
    mouse_press_callbacks(layer, ReadOnlyWrapper(
        mouse_event(type="mouse_press", position=world[0], is_dragging=False, **common)))
    for position in world[1:]:
        mouse_move_callbacks(layer, ReadOnlyWrapper(
            mouse_event(type="mouse_move", position=position, is_dragging=True, **common)))
    mouse_release_callbacks(layer, ReadOnlyWrapper(
        mouse_event(type="mouse_release", position=world[-1], is_dragging=False, **common)))


def stroke_inside(truth_slice: np.ndarray, class_id: int, rng) -> list[tuple[int, int]] | None:
    """Six voxels down a column, all well inside ``class_id`` (a careful user's stroke)."""
    from scipy import ndimage

    inside = ndimage.binary_erosion(truth_slice == class_id)
    if class_id in (CU, SEI):  # thin: stay on the class itself
        inside = truth_slice == class_id
    run = inside.copy()
    for k in range(1, 6):
        run[:-k] &= inside[k:]
        run[-k:] = False
    where = np.argwhere(run)
    if len(where) == 0:
        return None
    y, x = where[rng.integers(len(where))]
    return [(y + k, x) for k in range(0, 6, 2)]


def wait_for_click(qtbot, wait_job, widget, button):
    """Click a panel's start button and wait for its job."""
    button.click()
    wait_job(widget.controls.job)


def test_a_user_session_from_file_to_exported_report(make_napari_viewer, qtbot, wait_job,
                                                     tmp_path, monkeypatch, phantom, MouseEvent):
    truth = phantom.labels
    path = tmp_path / "anode.mrc"
    write_mrc(path, phantom.tomogram, voxel_size_nm=(VOXEL,) * 3)
    viewer = make_napari_viewer()
    _, workflow = viewer.window.add_plugin_dock_widget("napari-cryoli", "Workflow")
    assert workflow.next_label.text().startswith("Next: Open")

    # 1. open the tomogram from disk
    (image,) = workflow.open_file(str(path))
    assert image.name == "anode" and tuple(image.scale) == (VOXEL,) * 3
    qtbot.waitUntil(lambda: workflow.marks["open"].text() == "✔")
    assert workflow.texts["open"].text() == "anode: 64 × 64 × 64 voxels"
    assert workflow.next_label.text().startswith("Next: Annotate")

    # 2. annotate: a labels layer, then strokes of each class with the mouse
    workflow.buttons["annotate"].click()
    annotate = viewer.window.dock_widgets["Annotate (napari-cryoli)"]
    annotate.new_labels_button.click()
    labels = annotate.labels
    assert labels.name == "anode labels" and labels.data.shape == truth.shape
    rng = np.random.default_rng(0)
    for z in STROKE_SLICES:
        viewer.dims.set_current_step(0, z)
        for class_id in (BACKGROUND, LI, LIH, CU, SEI):
            stroke = stroke_inside(truth[z], class_id, rng)
            if stroke is None:
                continue
            annotate.class_buttons[class_id].click()  # the class, paint mode, labels active
            annotate.brush_size.setValue(2 if class_id in (CU, SEI) else 4)
            drag(viewer, labels, MouseEvent, [(z, y, x) for y, x in stroke])
    qtbot.waitUntil(lambda: all(n > 0 for n in annotate.counts().values()), timeout=5000)
    painted = labels.data > 0
    assert (labels.data[painted] == truth[painted]).mean() > 0.8  # strokes on their class
    assert annotate.class_buttons[LI].text().startswith("Alt+2  Li  (")
    qtbot.waitUntil(lambda: workflow.marks["annotate"].text() == "✔", timeout=5000)
    assert workflow.next_label.text().startswith("Next: Train")

    # 3. train, fine-tuning the pre-trained network (a couple of steps keep the test short)
    workflow.buttons["train"].click()
    train = viewer.window.dock_widgets["Train (napari-cryoli)"]
    assert train.image_picker.layer() is image and train.labels_picker.layer() is labels
    train.max_steps.setValue(2)
    wait_for_click(qtbot, wait_job, train, train.train_button)
    assert "Trained after 2 steps" in train.status.text()
    assert (tmp_path / "anode.cryoli-labels.mrc").exists()  # labels saved beside the tomogram
    qtbot.waitUntil(lambda: workflow.marks["train"].text() == "✔", timeout=5000)
    assert workflow.next_label.text().startswith("Next: Predict")

    # 4. predict: the segmentation and where the model hesitates
    workflow.buttons["predict"].click()
    predict = viewer.window.dock_widgets["Predict (napari-cryoli)"]
    wait_for_click(qtbot, wait_job, predict, predict.predict_button)
    prediction = viewer.layers["prediction"]
    assert "uncertainty" in viewer.layers
    assert (prediction.data == truth).mean() > 0.85
    qtbot.waitUntil(lambda: predict.regions.list.count() > 0, timeout=20_000)
    qtbot.waitUntil(lambda: "uncertain region" in workflow.texts["predict"].text(), timeout=5000)
    assert workflow.marks["predict"].text() == "✔"
    assert workflow.next_label.text().startswith("Next: Correct")
    assert workflow.next_label.text().endswith("Or go on to Measure.")

    # 5. copy one slice of the prediction into the labels, then correct where it hesitates
    z = 32
    viewer.dims.set_current_step(0, z)
    predict.copy_scope.setCurrentText("current slice")
    assert predict.target_picker.layer() is labels
    before = labels.data.copy()
    predict.copy_button.click()
    np.testing.assert_array_equal(labels.data[z], prediction.data[z])
    others = np.ones(truth.shape[0], bool)
    others[z] = False
    np.testing.assert_array_equal(labels.data[others], before[others])

    predict.regions.next_button.click()
    region = predict.regions.regions[0]
    assert viewer.dims.current_step[0] == region.peak[0]  # the view jumped to the region
    assert viewer.layers.selection.active is labels and labels.mode == "paint"
    right = int(truth[region.peak])
    annotate.class_buttons[right].click()
    annotate.brush_size.setValue(2)
    drag(viewer, labels, MouseEvent, [region.peak])  # a click on the mistake
    assert labels.data[region.peak] == right

    # 6. fine-tune from the current model on the corrected labels, then predict again
    workflow.buttons["train"].click()
    assert train.start_from.currentText().startswith("current model")
    wait_for_click(qtbot, wait_job, train, train.train_button)
    assert "fine_tuned_from" in train.result.model.summary
    qtbot.waitUntil(lambda: workflow.marks["correct"].text() == "✔", timeout=5000)
    assert "Predict again with" in workflow.texts["predict"].text()
    assert workflow.next_label.text().startswith("Next: Predict")
    workflow.buttons["predict"].click()
    wait_for_click(qtbot, wait_job, predict, predict.predict_button)
    prediction = viewer.layers["prediction"]
    qtbot.waitUntil(lambda: workflow.next_label.text().startswith("Next: Measure"), timeout=5000)

    # 7. measure the prediction
    workflow.buttons["measure"].click()
    measure = viewer.window.dock_widgets["Measure (napari-cryoli)"]
    measure.labels_picker.setCurrentIndex(measure.labels_picker.findText("prediction"))
    wait_for_click(qtbot, wait_job, measure, measure.measure_button)
    report = measure.result.report.to_dict()
    rows = [measure.table.item(r, 0).text() for r in range(measure.table.rowCount())]
    assert rows.count("dendrite") == len(report["dendrites"]) >= 1
    assert "SEI thickness (nm)" in viewer.layers
    # the metal and its SEI as the phantom made them (Li against LiH needs longer training)
    true_volumes = phantom.truth["volumes_nm3"]
    metal = report["volumes_nm3"]["Li"] + report["volumes_nm3"]["LiH"]
    assert metal == pytest.approx(true_volumes["Li"] + true_volumes["LiH"], rel=0.2)
    assert report["sei_thickness_nm"]["median"] == pytest.approx(12.0, abs=4.0)
    summary = measure.summary.text()
    assert f"LiH fraction {report['lih_volume_fraction']:.3f}" in summary
    qtbot.waitUntil(lambda: workflow.marks["measure"].text() == "✔", timeout=5000)
    assert workflow.texts["measure"].text() == summary.split("\n")[0]
    assert workflow.next_label.text().startswith("Next: Export")

    # 8. export the report (JSON) and the dendrite table (CSV) through their buttons
    targets = iter([tmp_path / "anode_report.json", tmp_path / "anode_dendrites.csv"])
    monkeypatch.setattr(measure_module.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args, **kwargs: (str(next(targets)), "")))
    measure.export_json_button.click()
    measure.export_csv_button.click()
    saved = json.loads((tmp_path / "anode_report.json").read_text())
    assert saved["lih_volume_fraction"] == pytest.approx(report["lih_volume_fraction"])
    assert saved["voxel_size_nm"] == [VOXEL] * 3
    with open(tmp_path / "anode_dendrites.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == rows.count("dendrite")
    qtbot.waitUntil(lambda: workflow.marks["export"].text() == "✔", timeout=5000)
    assert workflow.texts["export"].text() == "Wrote anode_report.json, anode_dendrites.csv"
    assert workflow.next_label.text().startswith("All done")
    assert all(workflow.marks[key].text() == "✔" for key in workflow.marks)
