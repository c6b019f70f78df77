"""Peak memory of predicting a 1 GiB float32 tomogram (memory-mapped) to a labels file.

The tomogram is written once to a temporary MRC file; a fresh process maps it, predicts it with
the streaming predictor (labels and uncertainty streamed to MRC files) and reports its peak
resident memory (``ru_maxrss``, which counts mapped file pages it touched) and the peak sampled
every 50 ms. For comparison: a predictor that keeps the whole volume and a float32 accumulator per
class in memory (as MONAI's ``sliding_window_inference`` does) needs at least
``(1 + classes) x 1 GiB`` for the same volume. A small network keeps the run short; memory does
not depend on the network's width beyond a few tiles' activations.

    flock /tmp/cryoli-bench.lock nice -n 5 python -m benchmarks.segment_memory
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def make_tomogram(path: Path, shape: tuple[int, int, int]) -> None:
    from napari_cryoli.io import open_mrc_for_writing

    rng = np.random.default_rng(0)
    with open_mrc_for_writing(path, shape, np.float32, voxel_size_nm=(1.0, 1.0, 1.0)) as out:
        for z in range(0, shape[0], 8):
            out[z : z + 8] = rng.normal(size=(min(8, shape[0] - z), *shape[1:])).astype(np.float32)


def child(tomogram: Path, outdir: Path, tile: int) -> None:
    import psutil
    import torch

    from napari_cryoli.io import read_mrc
    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import (
        Normalisation,
        PredictConfig,
        PredictOutputs,
        SegmentationModel,
        predict,
    )

    proc = psutil.Process()
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    torch.manual_seed(0)
    model = SegmentationModel.create(base_channels=4, depth=2, patch_size=tile,
                                     normalisation=Normalisation(0.0, 1.0), device="cpu")
    volume = read_mrc(tomogram)
    outputs = PredictOutputs(labels=outdir / "seg.mrc", uncertainty=outdir / "unc.mrc",
                             voxel_size_nm=volume.voxel_size_nm)
    t0 = time.perf_counter()
    pred = run_job(predict(volume.data, model, PredictConfig(tile=tile, batch_size=4),
                           outputs=outputs))
    seconds = time.perf_counter() - t0
    done.set()
    print(json.dumps({
        "tomogram_gib": round(volume.data.nbytes / 2**30, 3),
        "shape": list(volume.data.shape), "tile": tile, "tiles": pred.tiles,
        "seconds": round(seconds, 1),
        "peak_rss_gib_ru_maxrss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "peak_rss_gib_sampled": round(peak[0] / 2**30, 3),
        "labels_written": (outdir / "seg.mrc").stat().st_size,
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 1024, 1024))
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.tile)
        return
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        tomogram = Path(tmp) / "big.mrc"
        make_tomogram(tomogram, tuple(args.shape))
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.segment_memory", "--tile", str(args.tile),
             "--child", str(tomogram), tmp],
            capture_output=True, text=True, check=False,
        )
        print(out.stdout.strip() or out.stderr[-2000:])


if __name__ == "__main__":
    main()
