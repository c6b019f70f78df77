"""The one job-controls widget: buttons, progress and stop around a real job in a real viewer."""

from __future__ import annotations

import threading

from napari_cryoli._napari.job_controls import JobControls
from napari_cryoli.jobs import Progress, stop_requested


def counting_job(stop: threading.Event, steps: int, gate: threading.Event):
    for i in range(steps):
        if stop_requested(stop):
            return "stopped"
        gate.wait(10)
        yield Progress(i + 1, steps, f"step {i + 1}")
    return "done"


def test_buttons_progress_and_result(make_napari_viewer, qtbot, wait_job):
    viewer = make_napari_viewer()
    controls = JobControls(viewer, "Go", status="ready")
    qtbot.addWidget(controls)
    gate, results, messages = threading.Event(), [], []
    handle = controls.run("Counting", lambda stop: counting_job(stop, 4, gate),
                          on_result=results.append, on_progress=lambda p: messages.append(p.message))
    assert controls.job is handle
    assert not controls.start_button.isEnabled() and controls.stop_button.isEnabled()
    gate.set()
    wait_job(handle)
    assert results == ["done"] and messages[-1] == "step 4"
    assert controls.progress.value() == controls.progress.maximum() == 4
    assert controls.start_button.isEnabled() and not controls.stop_button.isEnabled()
    assert controls.job is None and controls.status.text() == "ready"


def test_stop_and_panels_with_their_own_start_buttons(make_napari_viewer, qtbot, wait_job):
    from qtpy.QtWidgets import QPushButton

    viewer = make_napari_viewer()
    first, second = QPushButton("A"), QPushButton("B")
    controls = JobControls(viewer, None, status="", stopping="Stopping…",
                           also_disable=(first, second))
    qtbot.addWidget(controls)
    assert controls.start_button is None
    gate, results = threading.Event(), []
    handle = controls.run("Counting", lambda stop: counting_job(stop, 1000, gate),
                          on_result=results.append)
    assert not first.isEnabled() and not second.isEnabled()
    assert controls.run("Again", lambda stop: counting_job(stop, 1, gate)) is None  # one at a time
    controls.stop_button.click()
    assert controls.status.text() == "Stopping…"
    gate.set()
    wait_job(handle)
    assert results == ["stopped"] and first.isEnabled() and second.isEnabled()
