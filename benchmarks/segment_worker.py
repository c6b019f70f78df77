"""Torch in a napari ``thread_worker`` against a direct call: time, threads, event-loop stalls.

Another napari plugin saw torch run much slower inside napari's thread workers (thread counts, GIL
hand-offs). This runs the same training steps and the same prediction directly on the main thread
and inside ``napari.qt.threading.create_worker`` (what the widgets use) with a live Qt event loop,
alternating, and reports wall times, their ratio, torch's intra-op thread count seen in each, and
the longest gap between 10 ms timer ticks on the GUI thread while the worker ran.

    flock /tmp/cryoli-bench.lock xvfb-run -a python -m benchmarks.segment_worker
"""

from __future__ import annotations

import json
import time

import numpy as np


def jobs():
    from napari_cryoli.segment import (
        Normalisation,
        PredictConfig,
        SegmentationModel,
        TrainConfig,
        predict,
        train,
    )

    rng = np.random.default_rng(0)
    image = rng.normal(size=(48, 96, 96)).astype(np.float32)
    labels = np.zeros(image.shape, np.uint8)
    labels[20, ::2, ::2] = np.where(image[20, ::2, ::2] > 0, 2, 1)
    labels[30, ::2, ::2] = np.where(image[30, ::2, ::2] > 0, 2, 1)
    model = SegmentationModel.create(base_channels=8, depth=4, patch_size=48,
                                     normalisation=Normalisation.of(image), device="cpu")
    cfg = TrainConfig(minutes=None, max_steps=6, eval_every=100, device="cpu")
    return {
        "train 6 steps (8x4, 48^3, batch 2)": lambda stop=None: train(image, labels, cfg, stop=stop),
        "predict 48x96x96 (8x4, tile 48)": lambda stop=None: predict(
            image, model, PredictConfig(tile=48, device="cpu"), stop=stop),
    }


def threads_then(job_factory):
    """A generator that records torch's thread count in the thread that runs it."""
    import torch

    seen = {}

    def run():
        seen["threads"] = torch.get_num_threads()
        return (yield from job_factory())

    return run, seen


def direct(job_factory) -> tuple[float, int]:
    from napari_cryoli.jobs import run_job

    run, seen = threads_then(job_factory)
    t0 = time.perf_counter()
    run_job(run())
    return time.perf_counter() - t0, seen["threads"]


_KEEP: list = []


def in_worker(app, job_factory) -> tuple[float, int, float]:
    from napari.qt.threading import create_worker
    from qtpy.QtCore import QEventLoop, QTimer

    run, seen = threads_then(job_factory)
    loop = QEventLoop()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    worker = create_worker(run, _start_thread=False)
    worker.finished.connect(loop.quit)
    t0 = time.perf_counter()
    timer.start()
    worker.start()
    loop.exec()
    seconds = time.perf_counter() - t0
    timer.stop()
    _KEEP.append(worker)  # its thread may still be emitting "finished": keep it alive
    stall = max(np.diff(ticks)) if len(ticks) > 1 else float("nan")
    return seconds, seen["threads"], float(stall)


def main() -> None:
    import torch
    from qtpy.QtWidgets import QApplication

    torch.set_flush_denormal(True)
    app = QApplication.instance() or QApplication([])
    for name, factory in jobs().items():
        direct(factory)  # warm up
        d, w, stalls = [], [], []
        for _ in range(3):
            t, threads_direct = direct(factory)
            d.append(t)
            t, threads_worker, stall = in_worker(app, factory)
            w.append(t)
            stalls.append(stall)
        print(json.dumps({
            "job": name, "direct_s": [round(v, 2) for v in d], "worker_s": [round(v, 2) for v in w],
            "ratio_worker_over_direct_median": round(float(np.median(w) / np.median(d)), 3),
            "torch_threads_direct": threads_direct, "torch_threads_worker": threads_worker,
            "longest_gui_stall_ms": round(1000 * max(stalls), 1),
        }), flush=True)
    from qtpy.QtCore import QThreadPool

    QThreadPool.globalInstance().waitForDone()


if __name__ == "__main__":
    main()
