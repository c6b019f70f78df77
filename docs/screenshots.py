"""Regenerate the screenshots of the user guide (``xvfb-run -a -s "-screen 0 1920x1200x24" python
docs/screenshots.py``).

A walkthrough as a user does it, guided by the Workflow panel: open the sample tomogram from a
file, paint strokes, train, predict, correct where the model hesitates, fine-tune, measure and
export. The whole 1600×1000 napari window is saved at each step to
``docs/images/walkthrough_<n>_<step>.png``; the user guide's other pictures (``demo.png``,
``sample_xz.png``, ``train.png``, ``predict.png``, ``measure.png``) come from the same run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).parent / "images"
SIZE = (1600, 1000)
DOCK_WIDTH = 540
TRAIN_MINUTES = 2.0
FINE_TUNE_STEPS = 40


def settle(seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def wait_for(handle) -> None:
    """Process events until a job started by a widget has finished."""
    while handle is not None and not handle.done:
        settle(0.2)
    settle(0.5)


def shot(viewer, *names: str) -> None:
    settle(0.8)
    for name in names:
        viewer.window.screenshot(str(OUT / name), canvas_only=False, flash=False)
        print("wrote", OUT / name)


def paint_strokes(viewer, annotate, truth: np.ndarray) -> None:
    """Short strokes of every class on four slices, taken from the true labels as a user paints
    them: a few brush dabs along each region, thin brushes on SEI and Cu."""
    labels = annotate.labels
    rng = np.random.default_rng(1)
    for z in (24, 40, 56, 70):
        viewer.dims.set_current_step(0, z)
        for class_id in (1, 2, 3, 4, 5):
            where = np.argwhere(truth[z] == class_id)
            if len(where) == 0:
                continue
            annotate.class_buttons[class_id].click()
            annotate.brush_size.setValue(2 if class_id in (4, 5) else 5)
            start = where[rng.integers(len(where))]
            near = where[np.abs(where - start).sum(axis=1) < 40]
            for y, x in near[rng.choice(len(near), size=min(12, len(near)), replace=False)]:
                labels.paint((z, int(y), int(x)), class_id)
    viewer.dims.set_current_step(0, 40)
    settle()


def walkthrough(viewer, folder: Path) -> None:
    from qtpy.QtCore import Qt

    from napari_cryoli._napari.demo import PLUGIN
    from napari_cryoli._napari.sample import dendrite_sample
    from napari_cryoli.io.mrc import write_mrc

    (tomogram, meta, _), (truth, _, _) = dendrite_sample()
    path = folder / "dendrite.mrc"
    write_mrc(path, tomogram, voxel_size_nm=meta["scale"])

    dock, workflow = viewer.window.add_plugin_dock_widget(PLUGIN, "Workflow")
    dock.setWindowTitle("Workflow")
    viewer.window._qt_window.resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
    settle()
    shot(viewer, "walkthrough_0_start.png")

    # 1 open
    (image,) = workflow.open_file(str(path))
    viewer.reset_view()
    workflow.open_panel("Annotate")
    shot(viewer, "walkthrough_1_open.png")

    # 2 annotate
    annotate = viewer.window.dock_widgets[f"Annotate ({PLUGIN})"]
    annotate.new_labels_button.click()
    annotate.auto_contrast_button.click()
    paint_strokes(viewer, annotate, truth)
    annotate.class_buttons[2].click()
    shot(viewer, "walkthrough_2_annotate.png", "demo.png")
    viewer.dims.order = (1, 0, 2)
    shot(viewer, "sample_xz.png")
    viewer.dims.order = (0, 1, 2)

    # 3 train
    train = workflow.open_panel("Train")
    train.minutes.setValue(TRAIN_MINUTES)
    train.train_button.click()
    handle = train.controls.job
    while not handle.done and ("training preview" not in viewer.layers or len(train.session.val) < 2):
        settle(0.5)
    shot(viewer, "walkthrough_3_train.png", "train.png")
    wait_for(handle)

    # 4 predict
    predict = workflow.open_panel("Predict")
    predict.predict_button.click()
    wait_for(predict.controls.job)
    while predict.regions.list.count() == 0:
        settle(0.2)
    annotate.labels.visible = False
    viewer.layers["training preview"].visible = False
    shot(viewer, "walkthrough_4_predict.png", "predict.png")

    # 5 correct: copy the slice on screen, go through the uncertain regions, fine-tune
    annotate.labels.visible = True
    predict.copy_scope.setCurrentText("current slice")
    predict.copy_button.click()
    viewer.layers["prediction"].visible = False
    viewer.layers["uncertainty"].visible = True
    predict.regions.next_button.click()
    region = predict.regions.regions[0]
    right = int(truth[region.peak])
    annotate.class_buttons[right].click()
    annotate.labels.paint(region.peak, right)
    viewer.layers.selection.active = annotate.labels
    shot(viewer, "walkthrough_5_correct.png")
    train = workflow.open_panel("Train")
    train.max_steps.setValue(FINE_TUNE_STEPS)
    train.train_button.click()
    wait_for(train.controls.job)
    predict = workflow.open_panel("Predict")
    predict.predict_button.click()
    wait_for(predict.controls.job)
    viewer.layers["uncertainty"].visible = False

    # 6 measure the prediction
    measure = workflow.open_panel("Measure")
    measure.labels_picker.setCurrentIndex(measure.labels_picker.findText("prediction"))
    measure.measure_button.click()
    wait_for(measure.controls.job)
    for name in ("prediction", "training preview", image.name + " labels"):
        if name in viewer.layers:
            viewer.layers[name].visible = False
    shot(viewer, "walkthrough_6_measure.png", "measure.png")

    # 7 export (what the Export buttons write)
    measure.export(json_path=folder / "dendrite_report.json",
                   csv_path=folder / "dendrite_dendrites.csv")
    settle(1.0)
    shot(viewer, "walkthrough_7_export.png")


def main() -> int:
    import os

    import napari

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()  # no autosaves from earlier runs
    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-cryoli")
    viewer.window.resize(*SIZE)
    with tempfile.TemporaryDirectory() as folder:
        walkthrough(viewer, Path(folder))
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
