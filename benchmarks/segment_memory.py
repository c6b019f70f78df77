"""Peak memory of predicting a 1 GiB float32 tomogram (memory-mapped) to a labels file.

The tomogram is written once to a temporary MRC file; a fresh process maps it, predicts it with
the streaming predictor (labels and uncertainty streamed to MRC files) and reports its peak
resident memory (``ru_maxrss``, which counts mapped file pages it touched) and the peak sampled
every 50 ms. For comparison: a predictor that keeps the whole volume and a float32 accumulator per
class in memory (as MONAI's ``sliding_window_inference`` does) needs at least
``(1 + classes) x 1 GiB`` for the same volume. A small network keeps the run short; memory does
not depend on the network's width beyond a few tiles' activations.

    flock /tmp/cryoli-bench.lock nice -n 5 python -m benchmarks.segment_memory

``--command`` measures the real command line instead: a 256 x 512 x 512 float32 MRC (268 MB)
that looks like a tomogram (a 128 x 256 x 256 phantom mirrored twice along each axis, so vacuum
and metal cores are there for the grey-level calibration) is segmented by ``napari-cryoli
predict`` in a child process, whose resident memory is sampled every 50 ms and whose own
``ru_maxrss`` is read when it is waited for (``wait4``: what ``RUSAGE_CHILDREN`` accumulates).
Cases: the shipped pre-trained model (percentile grey levels, no working voxel size); a model
calibrated on vacuum and Li with 2 nm working voxels (a few steps of ``napari-cryoli train
--intensity calibrated`` from the pre-trained one) on the tomogram declared at 2 nm, at 1 nm
(binned to the working grid) and at 2.5 nm (interpolated up to it); and a model trained on a
noisier copy of the phantom, which predicts the tomogram with noise matching (``segment.noise``);
and a model that restores the missing wedge (``train --restore-wedge``).

    flock /tmp/cryoli-bench.lock python -m benchmarks.segment_memory --command
"""

from __future__ import annotations

import argparse
import json
import os
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


#: Seed of the phantom the command-line cases are built from (not one of the kept seeds).
PHANTOM_SEED = 4401
#: The pre-trained model shipped with the plugin.
PRETRAINED = Path(__file__).resolve().parents[1] / "src/napari_cryoli/segment/weights/phantom_pretrained.pt"
#: Command-line cases: name, model ("pretrained" or "calibrated"), declared voxel size (nm).
CASES = {
    "a": ("pre-trained, percentiles", "pretrained", 2.0),
    "b": ("calibrated, 2 nm working voxels, tomogram at 2 nm", "calibrated", 2.0),
    "c": ("calibrated, tomogram at 1 nm (binned)", "calibrated", 1.0),
    "d": ("calibrated, tomogram at 2.5 nm (upsampled)", "calibrated", 2.5),
    "e": ("calibrated on a noisier copy, tomogram at 2 nm (noise matched)", "noisier", 2.0),
    "f": ("calibrated, missing wedge restored, tomogram at 2 nm", "restored", 2.0),
}


def phantom(seed: int = PHANTOM_SEED) -> tuple[np.ndarray, np.ndarray]:
    """A 128 x 256 x 256 phantom tomogram at 2 nm (two dendrites) and its full labels."""
    from napari_cryoli.jobs import run_job
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    ph = run_job(simulate(PhantomSpec(shape=(128, 256, 256), seed=seed, n_dendrites=2)))
    return ph.tomogram, ph.labels


def mirrored(volume: np.ndarray, reps: int = 2) -> np.ndarray:
    """``volume`` followed by its mirror image along each axis ``reps - 1`` times (no seams)."""
    out = volume
    for axis in range(3):
        parts = [out if i % 2 == 0 else np.flip(out, axis) for i in range(reps)]
        out = np.concatenate(parts, axis=axis)
    return out


def calibrated_model(work: Path, tomogram: np.ndarray, labels: np.ndarray, cli: list[str],
                     name: str = "calibrated", noisier: bool = False,
                     options: tuple[str, ...] = ()) -> Path:
    """A model with calibrated grey levels and 2 nm working voxels: a few training steps from the
    pre-trained one on the phantom, with every 16th section of its labels as strokes. ``noisier``
    trains on the phantom with white noise of 1.5 times its own voxel noise added, so that the
    phantom itself is predicted with noise matching; ``options`` go to ``train``."""
    from napari_cryoli.io import write_mrc
    from napari_cryoli.segment.noise import voxel_noise

    model = work / f"{name}.pt"
    if model.exists():
        return model
    strokes = np.zeros_like(labels)
    strokes[8::16] = labels[8::16]
    if noisier:
        sigma = 1.5 * voxel_noise(tomogram, 1.0)
        tomogram = tomogram + np.random.default_rng(0).normal(0, sigma, tomogram.shape).astype(
            np.float32)
    write_mrc(work / "train.mrc", tomogram, voxel_size_nm=(2.0, 2.0, 2.0))
    write_mrc(work / "strokes.mrc", strokes, voxel_size_nm=(2.0, 2.0, 2.0), labels=True)
    subprocess.run([*cli, "train", str(work / "train.mrc"), str(work / "strokes.mrc"),
                    "--out", str(model), "--intensity", "calibrated", "--max-steps", "3",
                    "--minutes", "5", *options], check=True, capture_output=True, text=True)
    return model


def measured(command: list[str], log: Path) -> dict:
    """Run ``command``; its peak resident memory: sampled every 50 ms, its own high-water mark
    (``VmHWM``, read at each sample: the program's, from exec on) and ``ru_maxrss`` from wait4,
    which also holds the launching process's high-water mark (vfork + exec keeps it)."""
    import psutil

    with open(log, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        watched = psutil.Process(proc.pid)
        peak = hwm = 0
        while True:  # until it exits (not reaped: wait4 below reads its rusage)
            try:
                if watched.status() == psutil.STATUS_ZOMBIE:
                    break
                peak = max(peak, watched.memory_info().rss)
                hwm = max(hwm, _high_water_mark(proc.pid))
            except (psutil.Error, OSError):
                break
            time.sleep(0.05)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
    return {"rc": proc.returncode, "seconds": round(seconds, 1),
            "peak_rss_gb_sampled": round(peak / 1e9, 3), "peak_rss_gb_vmhwm": round(hwm / 1e9, 3),
            "peak_rss_gb_ru_maxrss": round(usage.ru_maxrss * 1024 / 1e9, 3),
            "launcher_rss_gb_ru_maxrss": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3)}


def _high_water_mark(pid: int) -> int:
    """Peak resident memory of a running process since its exec (bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def stubbed_predict(argv: list[str]) -> None:
    """``napari-cryoli predict`` with the network replaced by a constant: what is left is the
    grey levels, the resampling, the blending and the writing (quick to measure)."""
    from napari_cryoli import cli
    from napari_cryoli.segment import prediction

    class ConstantRunner:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            p = np.full((batch.shape[0], 5, *batch.shape[2:]), 0.1, np.float32)
            p[:, 1] += np.clip(-batch[:, 0], 0, 0.5)  # some contrast between two classes
            return p

    prediction.TileRunner = ConstantRunner
    sys.exit(cli.main(["predict", *argv]))


def prepare(work: Path, cases: list[str]) -> None:
    """The tomograms of ``cases`` and the calibrated model, written into ``work`` (run in a
    process of its own, so that the measuring process stays small)."""
    from napari_cryoli.io import write_mrc

    piece, labels = phantom()
    tomogram = mirrored(piece)
    if set(cases) - {"a", "e", "f"}:
        calibrated_model(work, piece, labels, _cli())
    if "e" in cases:
        calibrated_model(work, piece, labels, _cli(), "noisier", noisier=True)
    if "f" in cases:
        calibrated_model(work, piece, labels, _cli(), "restored", options=("--restore-wedge",))
    for voxel in sorted({CASES[c][2] for c in cases}):
        write_mrc(work / f"tomogram_{voxel:g}nm.mrc", tomogram, voxel_size_nm=(voxel,) * 3)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("napari-cryoli")
    return [str(script)] if script.exists() else [sys.executable, "-m", "napari_cryoli.cli"]


def command_cases(work: Path, cases: list[str], tile: int | None, stub: bool = False) -> None:
    """Measure ``napari-cryoli predict`` on the 268 MB tomogram, one JSON line per case."""
    cli = [sys.executable, "-m", "benchmarks.segment_memory", "--stubbed-predict"] if stub else _cli()
    subprocess.run([sys.executable, "-m", "benchmarks.segment_memory", "--prepare", str(work),
                    "--cases", *cases], check=True)
    models = {"pretrained": PRETRAINED, "calibrated": work / "calibrated.pt",
              "noisier": work / "noisier.pt", "restored": work / "restored.pt"}
    for case in cases:
        name, which, voxel = CASES[case]
        path = work / f"tomogram_{voxel:g}nm.mrc"
        command = [*cli, *([] if stub else ["predict"]), str(path), "--model",
                   str(models[which]), "--out", str(work / f"seg_{case}.mrc")]
        if tile is not None:
            command += ["--tile", str(tile)]
        result = measured(command, work / f"predict_{case}.log")
        print(json.dumps({"case": case, "what": name, "network_stubbed": stub,
                          "tomogram_mb": round(path.stat().st_size / 1e6),
                          "shape": [256, 512, 512], "voxel_nm": voxel, **result,
                          "command": " ".join(["napari-cryoli", "predict",
                                               *command[len(cli) + (0 if stub else 1):]])}),
              flush=True)
    for voxel in {CASES[c][2] for c in cases}:
        (work / f"tomogram_{voxel:g}nm.mrc").unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 1024, 1024))
    ap.add_argument("--tile", type=int, default=None,
                    help="tile side (default: 64, or the model's patch with --command)")
    ap.add_argument("--command", action="store_true",
                    help="measure `napari-cryoli predict` on a 268 MB phantom tomogram")
    ap.add_argument("--stub-network", action="store_true",
                    help="with --command: the network replaced by a constant (memory of the rest)")
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    ap.add_argument("--work", type=Path, help="folder for the files (default: a temporary one)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--stubbed-predict", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stubbed_predict:
        stubbed_predict(args.stubbed_predict)
        return
    if args.prepare:
        prepare(args.prepare, args.cases)
        return
    if args.command:
        if args.work is not None:
            args.work.mkdir(parents=True, exist_ok=True)
            command_cases(args.work, args.cases, args.tile, args.stub_network)
            return
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            command_cases(Path(tmp), args.cases, args.tile, args.stub_network)
        return
    tile = args.tile or 64
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), tile)
        return
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        tomogram = Path(tmp) / "big.mrc"
        make_tomogram(tomogram, tuple(args.shape))
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.segment_memory", "--tile", str(tile),
             "--child", str(tomogram), tmp],
            capture_output=True, text=True, check=False,
        )
        print(out.stdout.strip() or out.stderr[-2000:])


if __name__ == "__main__":
    main()
