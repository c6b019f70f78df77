"""The Workflow panel: the steps worked out from session states, and the panel in a real viewer."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QTabBar

from napari_cryoli._napari.workflow import (
    SessionState,
    next_action,
    next_step,
    workflow_steps,
)

PAINTED = (("background", 40), ("Li", 25), ("LiH", 0))
STATES = {  # each state of a session, and the step to do next
    "open": SessionState(),
    "annotate": SessionState(tomogram="t", shape=(8, 9, 10), painted=(("Li", 5),)),
    "train": SessionState(tomogram="t", shape=(8, 9, 10), painted=PAINTED),
    "predict": SessionState(tomogram="t", painted=PAINTED, models=("m1",)),
    "correct": SessionState(tomogram="t", painted=PAINTED, models=("m1",), prediction_by="m1",
                            first_prediction_by="m1"),
    "measure": SessionState(tomogram="t", painted=PAINTED, models=("m1", "m2"),
                            prediction_by="m2", first_prediction_by="m1"),
    "export": SessionState(tomogram="t", painted=PAINTED, models=("m1",), prediction_by="m1",
                           first_prediction_by="m1", measured="1 dendrite"),
}


@pytest.mark.parametrize("expected", list(STATES))
def test_the_next_step_follows_the_session(expected):
    steps = workflow_steps(STATES[expected])
    assert [s.key for s in steps] == ["open", "annotate", "train", "predict", "correct",
                                      "measure", "export"]
    step = next_step(steps)
    # correcting is optional: once predicted, Measure is offered beside it
    assert step.key == expected
    assert all(s.done for s in steps[: [s.key for s in steps].index(expected)]
               if not s.optional)
    assert next_action(STATES[expected], steps).startswith(step.title)


def test_texts_say_what_is_done_and_what_is_needed():
    steps = {s.key: s for s in workflow_steps(STATES["train"])}
    assert steps["open"].text == "t: 8 × 9 × 10 voxels"
    assert steps["annotate"].text == "background 40 · Li 25"
    assert steps["train"].ready and "Press Train" in steps["train"].text
    assert not steps["predict"].ready and steps["predict"].text.startswith("Needs a model")
    one_class = {s.key: s for s in workflow_steps(STATES["annotate"])}
    assert not one_class["annotate"].done and "so far Li 5" in one_class["annotate"].text
    assert not one_class["train"].ready


def test_a_prediction_from_an_older_model_is_outdated():
    state = SessionState(tomogram="t", painted=PAINTED, models=("m1", "m2"), prediction_by="m1",
                         first_prediction_by="m1")
    steps = {s.key: s for s in workflow_steps(state)}
    assert steps["correct"].done and not steps["predict"].done
    assert "Predict again with 'm2'" in steps["predict"].text
    assert next_step(tuple(steps.values())).key == "predict"


def test_correcting_is_optional_and_says_so():
    state = STATES["correct"]
    assert next_action(state, workflow_steps(state)).endswith("Or go on to Measure.")


def test_a_running_job_is_shown_and_waited_for():
    state = SessionState(tomogram="t", painted=PAINTED, running="train")
    steps = {s.key: s for s in workflow_steps(state)}
    assert steps["train"].text == "Running… (progress in the Train panel)"
    assert next_action(state, tuple(steps.values())) == \
        "Train is running: wait, or Stop it in its panel."


def test_all_done():
    state = SessionState(tomogram="t", painted=PAINTED, models=("m1", "m2"), prediction_by="m2",
                         first_prediction_by="m1", measured="x", exported=("r.json",))
    steps = workflow_steps(state)
    assert all(s.done for s in steps) and next_step(steps) is None
    assert next_action(state, steps).startswith("All done")


# --- in a real viewer ----------------------------------------------------------------------------


@pytest.fixture
def workflow(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Workflow")
    return viewer, widget


def test_panel_follows_the_layers_and_opens_each_step(workflow, qtbot):
    viewer, widget = workflow
    assert widget.marks["open"].text() == "▶"
    assert widget.next_label.text().startswith("Next: Open")
    assert widget.texts["annotate"].text() == "Needs a tomogram."

    image = viewer.add_image(np.zeros((6, 20, 30), np.float32), name="tomo")
    qtbot.waitUntil(lambda: widget.marks["open"].text() == "✔")
    assert widget.texts["open"].text() == "tomo: 6 × 20 × 30 voxels"
    assert widget.next_label.text().startswith("Next: Annotate")

    widget.buttons["annotate"].click()
    annotate = viewer.window.dock_widgets["Annotate (napari-cryoli)"]
    labels = annotate.new_labels()
    labels.paint((2, 10, 10), 2)  # Li, through the layer's paint API as a brush does
    labels.paint((3, 5, 5), 1)  # background
    qtbot.waitUntil(lambda: widget.marks["annotate"].text() == "✔", timeout=5000)
    assert widget.texts["annotate"].text().startswith("background ")
    assert "Li " in widget.texts["annotate"].text()
    assert widget.next_label.text().startswith("Next: Train")

    train = widget.open_panel("Train")
    assert train is viewer.window.dock_widgets["Train (napari-cryoli)"]
    widget.open_panel("Predict")
    qtbot.wait(20)
    tabs = [bar for bar in viewer.window._qt_window.findChildren(QTabBar)
            if bar.count() >= 3]
    assert tabs, "the step panels share one tab strip"
    titles = [tabs[0].tabText(i) for i in range(tabs[0].count())]
    assert {"Annotate", "Train", "Predict"} <= set(titles)
    bar = tabs[0]
    assert bar.elideMode() == Qt.TextElideMode.ElideNone
    viewer.window._qt_window.resize(1600, 1000)
    viewer.window.show()
    qtbot.wait(50)
    for i in range(bar.count()):  # whole titles, never "Annotate (…"
        assert bar.tabRect(i).width() >= bar.fontMetrics().horizontalAdvance(bar.tabText(i))
    assert image in viewer.layers


def test_demo_opens_maximised_with_the_whole_tomogram_in_view(make_napari_viewer, qtbot):
    from napari_cryoli._napari.demo import open_demo

    viewer = open_demo(make_napari_viewer())
    window = viewer.window._qt_window
    assert window.windowState() & Qt.WindowState.WindowMaximized
    assert {"Workflow (napari-cryoli)", "Annotate (napari-cryoli)"} <= set(viewer.window.dock_widgets)
    image = viewer.layers["dendrite tomogram"]
    canvas = viewer.window._qt_viewer.canvas.size  # (height, width) in screen pixels
    extent = np.asarray(image.data.shape[1:]) * np.asarray(image.scale[1:])  # y, x in nm
    zoom = viewer.camera.zoom  # screen pixels per nm
    assert np.all(extent * zoom <= np.asarray(canvas) + 1), (extent * zoom, canvas)
    assert np.max(extent * zoom / np.asarray(canvas)) > 0.8  # fitted to the canvas, not tiny
    centre = np.asarray(viewer.camera.center[-2:])
    np.testing.assert_allclose(centre, (extent - np.asarray(image.scale[1:])) / 2, atol=2.0)


def test_demo_can_close_itself_for_checks_of_an_installed_package():
    from napari_cryoli.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["demo", "--quit-after", "2.5"]).quit_after == 2.5
    assert parser.parse_args(["demo"]).quit_after is None
    demo = parser._subparsers._group_actions[0].choices["demo"]
    assert "--quit-after" not in demo.format_help()  # hidden from users
