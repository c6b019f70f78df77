"""Longest stall of napari's event loop while the widgets train and predict.

Opens the sample in a real viewer, puts user-like strokes into the Annotate panel's labels, then
runs the Train widget (time-boxed) and the Predict widget exactly as a user would, while a 10 ms
timer on the GUI thread records the longest gap between its ticks. A gap is time the GUI could not
repaint or react to the mouse.

    flock /tmp/cryoli-bench.lock xvfb-run -a python -m benchmarks.widget_responsiveness [--minutes 1]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


class StallMeter:
    """Ticks every 10 ms on the GUI thread; ``worst_ms`` is the longest gap seen while running."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.gaps: list[float] = []
        self.times: list[float] = []
        self._last = self._start = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000)
        self.times.append(self._last - self._start)
        self._last = now

    def reset(self) -> None:
        self.gaps.clear()
        self.times.clear()
        self._last = self._start = time.perf_counter()

    def summary(self) -> dict:
        gaps = np.asarray(self.gaps[1:] or [0.0])
        worst = int(np.argmax(gaps))
        return {
            "worst_ms": round(float(gaps.max()), 1),
            "worst_at_s": round(self.times[1:][worst], 2) if self.times[1:] else 0.0,
            "p99_ms": round(float(np.percentile(gaps, 99)), 1),
            "over_100ms": int((gaps > 100).sum()),
            "ticks": int(gaps.size),
        }


def settle(seconds: float) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def run_until_done(handle) -> float:
    from qtpy.QtWidgets import QApplication

    t0 = time.perf_counter()
    while not handle.done:
        QApplication.processEvents()
        time.sleep(0.002)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    args = parser.parse_args()

    import napari

    from benchmarks.segment_quality import film_sections, paint_like_a_user
    from napari_cryoli._napari.demo import open_demo

    viewer = open_demo(napari.Viewer())
    image = viewer.layers["dendrite tomogram"]
    truth = viewer.layers["dendrite true labels"].data
    film = image.metadata["cryoli"]["truth"]["film"]
    h = image.scale[0]
    film_z = film_sections(film, h)
    annotate = viewer.window.dock_widgets["Annotate (napari-cryoli)"]
    annotate.new_labels().data = paint_like_a_user(truth, film_z, np.random.default_rng(0))
    settle(10.0)  # a user paints for minutes; meanwhile the Train panel warms up torch's imports

    meter = StallMeter()
    results = {}
    train = viewer.window.dock_widgets["Train (napari-cryoli)"]
    train.minutes.setValue(args.minutes)
    meter.reset()
    seconds = run_until_done(train.start())
    results["train"] = {"seconds": round(seconds, 1), **meter.summary(),
                        "steps": train.result.summary.get("steps")}

    predict = viewer.window.dock_widgets["Predict (napari-cryoli)"]
    meter.reset()
    seconds = run_until_done(predict.start())
    results["predict"] = {"seconds": round(seconds, 1), **meter.summary()}
    print(json.dumps(results, indent=1))
    viewer.close()


if __name__ == "__main__":
    main()
