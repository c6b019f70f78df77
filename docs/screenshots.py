"""Regenerate the screenshots of the user guide (run under Xvfb: ``xvfb-run -a python docs/screenshots.py``).

Each shot drives the real widgets on the sample tomogram, as a user would, and saves the whole
napari window to ``docs/images/``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).parent / "images"
SIZE = (1500, 950)


def settle(seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def wait_for(handle) -> None:
    """Process events until a job started by a widget has finished."""
    finished = []
    handle.worker.finished.connect(lambda: finished.append(True))
    while not finished:
        settle(0.2)
    settle(0.5)


def show_dock(viewer, name: str):
    """Bring a docked widget's tab to the front and return the widget."""
    widget = viewer.window.dock_widgets[f"{name} (napari-cryoli)"]
    widget.parent().raise_()
    return widget


def paint_strokes(viewer, widget) -> None:
    """Short strokes of every class on four slices, taken from the true labels as a user paints
    them: a few brush dabs along each region, thin brushes on SEI and Cu."""
    truth = viewer.layers["dendrite true labels"].data
    labels = widget.new_labels()
    rng = np.random.default_rng(1)
    for z in (24, 40, 56, 70):
        for class_id in (1, 2, 3, 4, 5):
            where = np.argwhere(truth[z] == class_id)
            if len(where) == 0:
                continue
            widget.select_class(class_id)
            labels.brush_size = 2 if class_id in (4, 5) else 5
            start = where[rng.integers(len(where))]
            near = where[np.abs(where - start).sum(axis=1) < 40]
            for y, x in near[rng.choice(len(near), size=min(12, len(near)), replace=False)]:
                labels.paint((z, int(y), int(x)), class_id)
    viewer.dims.set_current_step(0, 47)
    settle()


def main() -> int:
    import os
    import tempfile

    import napari

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()  # no autosaves from earlier runs
    from napari_cryoli._napari.demo import open_demo

    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-cryoli")
    viewer.window.resize(*SIZE)
    open_demo(viewer)
    settle(1.0)
    annotate = show_dock(viewer, "Annotate")
    paint_strokes(viewer, annotate)
    viewer.window.screenshot(str(OUT / "demo.png"), canvas_only=False)

    viewer.dims.order = (1, 0, 2)
    settle()
    viewer.window.screenshot(str(OUT / "sample_xz.png"), canvas_only=False)
    viewer.dims.order = (0, 1, 2)

    train = show_dock(viewer, "Train")
    train.labels_picker.set_layer(annotate.labels)
    train.minutes.setValue(3.0)
    handle = train.start()
    while "training preview" not in viewer.layers or len(train._val) < 2:
        settle(0.5)
    viewer.window.screenshot(str(OUT / "train.png"), canvas_only=False)
    wait_for(handle)

    predict = show_dock(viewer, "Predict")
    wait_for(predict.start())
    viewer.layers["dendrite tomogram labels"].visible = False
    viewer.window.screenshot(str(OUT / "predict.png"), canvas_only=False)

    measure = show_dock(viewer, "Measure")
    measure.labels_picker.set_layer(viewer.layers["dendrite true labels"])
    wait_for(measure.start())
    for name in ("prediction", "training preview"):  # the overlays of the true labels show
        viewer.layers[name].visible = False
    viewer.layers["dendrite tomogram"].visible = True
    viewer.window.screenshot(str(OUT / "measure.png"), canvas_only=False)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
