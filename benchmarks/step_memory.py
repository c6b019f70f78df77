"""The memory each step needs beyond its input: does it stream, or hold copies?

Each step runs in a fresh child process and reports the peak of the memory Python and numpy
allocate while it runs (``tracemalloc``: numpy arrays and Python objects; not memory-mapped
files, which the kernel pages in and out, nor torch's own buffers). The ratio to the input's size
says whether the step streams (well under 1) or holds copies (1 or more). ``mrcfile.read`` is the
peer: it reads a file into memory, so it needs the file's size.

The tests in ``tests/reliability/test_resources.py`` check the same with a hard limit
(RLIMIT_DATA); a limit is a poor instrument for a table, as thread stacks count against it.

    python -m benchmarks.step_memory [--tomogram-mib 128] [--labels-mib 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

PEAK = """
import json, sys, time, tracemalloc


def measured():
    tracemalloc.start()
    return time.perf_counter()


def done(started):
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"peak": peak, "seconds": time.perf_counter() - started}))
"""

#: Each step: set-up (not counted), ``started = measured()``, the work, ``done(started)``.
STEPS = {
    "read_mrc + middle slice (tomogram)": """
        from napari_cryoli.io import read_mrc
        started = measured()
        v = read_mrc(tomogram)
        float(v.data[v.data.shape[0] // 2].mean())
        done(started)
    """,
    "mrcfile.read (tomogram, peer)": """
        import mrcfile
        started = measured()
        mrcfile.read(tomogram)
        done(started)
    """,
    "save_annotations (labels in memory)": """
        import numpy as np
        from napari_cryoli.annotations import autosave_location, save_annotations
        from napari_cryoli.io import read_labels
        labels = np.array(read_labels(labels_path).data)
        location = autosave_location(None, "bench", folder=out)
        started = measured()
        save_annotations(location, labels, voxel_size_nm=(1.0, 1.0, 1.0))
        done(started)
    """,
    "measure (labels)": """
        from napari_cryoli.io import read_labels
        from napari_cryoli.jobs import run_job
        from napari_cryoli.measure.report import measure
        started = measured()
        run_job(measure(read_labels(labels_path).data, (1.0, 1.0, 1.0)))
        done(started)
    """,
    "predict, per-voxel network, tile 32 (tomogram)": """
        import torch
        from pathlib import Path
        from napari_cryoli.io import read_mrc
        from napari_cryoli.jobs import run_job
        from napari_cryoli.segment import (Normalisation, PredictConfig, PredictOutputs,
                                           SegmentationModel, predict)
        from napari_cryoli.segment.network import Architecture

        class PerVoxel(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.arch = Architecture(5, base_channels=1, depth=1, smoothing_sigmas=())
                self.conv = torch.nn.Conv3d(1, 5, 1)

            def forward(self, x):
                return self.conv(x)

        model = SegmentationModel(PerVoxel(), normalisation=Normalisation(0.0, 1.0), patch_size=32)
        image = read_mrc(tomogram).data
        config = PredictConfig(tile=32, overlap=0.0, batch_size=1, device="cpu")
        run_job(predict(image[:32], model, config))
        started = measured()
        outputs = PredictOutputs(labels=Path(out) / "seg.mrc", uncertainty=Path(out) / "unc.mrc")
        run_job(predict(image, model, config, outputs=outputs))
        done(started)
    """,
}


def make_inputs(folder: Path, tomogram_mib: int, labels_mib: int) -> tuple[Path, Path]:
    """A deep float32 tomogram (128 x 128 sections) and a cube of labels: an SEI-coated Li ball."""
    from napari_cryoli.io import open_mrc_for_writing

    tomogram = folder / "tomogram.mrc"
    depth = tomogram_mib * 2**20 // (128 * 128 * 4)
    rng = np.random.default_rng(0)
    with open_mrc_for_writing(tomogram, (depth, 128, 128), np.float32, voxel_size_nm=1.0) as a:
        for z in range(0, depth, 256):
            a[z : z + 256] = rng.normal(0, 1, a[z : z + 256].shape).astype(np.float32)
    n = round((labels_mib * 2**20) ** (1 / 3))
    labels = folder / "labels.mrc"
    with open_mrc_for_writing(labels, (n, n, n), np.uint8, voxel_size_nm=1.0, labels=True) as a:
        y, x = np.indices((n, n))
        for z in range(n):
            r = np.sqrt((z - n / 2) ** 2 + (y - n / 2) ** 2 + (x - n / 2) ** 2)
            a[z] = np.where(r < 0.35 * n, 2, np.where(r < 0.4 * n, 5, 1))
    return tomogram, labels


def run_step(step: str, tomogram: Path, labels: Path, out: Path) -> dict:
    """Peak traced bytes and seconds of one step, in a fresh process."""
    code = (
        PEAK
        + textwrap.dedent(
            f"""
        tomogram, labels_path, out = {str(tomogram)!r}, {str(labels)!r}, {str(out)!r}
        """
        )
        + textwrap.dedent(STEPS[step])
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tomogram-mib", type=int, default=128)
    parser.add_argument("--labels-mib", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cryoli-memory-") as tmp:
        folder = Path(tmp)
        out = folder / "out"
        out.mkdir()
        tomogram, labels = make_inputs(folder, args.tomogram_mib, args.labels_mib)
        sizes = {
            "tomogram": tomogram.stat().st_size / 2**20,
            "labels": labels.stat().st_size / 2**20,
        }
        print("| step | input (MiB) | peak allocated (MiB) | peak / input | seconds |")
        print("|---|---|---|---|---|")
        for step in STEPS:
            size = sizes["labels" if "labels" in step else "tomogram"]
            found = run_step(step, tomogram, labels, out)
            peak = found["peak"] / 2**20
            print(
                f"| {step} | {size:.0f} | {peak:.1f} | {peak / size:.2f} | {found['seconds']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
