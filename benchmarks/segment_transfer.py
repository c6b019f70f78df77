"""One model, many tomograms: a model fine-tuned on one tomogram's strokes, applied to others.

A user paints one 7 d tomogram with two dendrites, fine-tunes the shipped pre-trained network
(``--steps`` steps, the same for every variant), and applies the model to tomograms unlike it:
fewer or more dendrites, a wide field, a dendrite across the tilt axis or at 45° to it, other
agings, finer and coarser voxels, inverted contrast, gold fiducials. Each cell holds
``TEST_SEEDS``, frozen before any result was seen (the 45° and the fresh 3-dendrite cells were
added later, with the same seeds) and never used to choose anything. The variants differ only
in how grey levels reach the network (``TrainConfig.intensity``): percentiles of the whole
volume, the calibration on vacuum and Li, or the calibration with each tomogram's missing wedge
restored (``--variants restored``, ``TrainConfig.restore_wedge``). Reported per cell: mean ± s.d. over the seeds of
the mean Dice of Li, LiH and SEI, and of the LiH share of the metal (whole tomogram) minus the
truth.

    python -m benchmarks.segment_transfer [--steps 300] [--workers 2] [--seeds 5] [--out F.json]
        [--variants calibrated restored] [--start CHECKPOINT] [--run-seeds 6001 6101 6102]
        [--dev-seeds 8059 8060 8061]

``--dev-seeds`` applies the models to development seeds instead of the test seeds (for choosing
and confirming; a result on test seeds never chooses anything). ``--start`` fine-tunes another pre-trained checkpoint than the shipped one (a candidate).
``--run-seeds`` repeats the fine-tuning with other patch draws (the strokes stay the same): one
run is one draw, and draws move results by as much as most changes worth measuring; figures
are then mean ± s.d. over runs x tomograms, with each run's cell mean beside them.

Simulation runs in ``--workers`` processes; training and prediction use the GPU when present.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np

#: Test seeds, frozen with this file; training uses TRAIN_SEED.
TEST_SEEDS = (7001, 7002, 7003, 7004, 7005)
TRAIN_SEED = 6001
TRAIN = {"aging": "7d", "n_dendrites": 2, "shape": (96, 160, 240)}

#: Cell name -> PhantomSpec settings (2 nm voxels unless set).
CELLS: dict[str, dict] = {
    "7d, 2 dendrites": {"aging": "7d", "n_dendrites": 2, "shape": (96, 160, 240)},
    "7d, 1 dendrite": {"aging": "7d", "shape": (96, 160, 160)},
    "7d, 3 dendrites": {"aging": "7d", "n_dendrites": 3, "shape": (96, 128, 400),
                        "diameter_nm": (100.0, 140.0)},
    "7d, wide field": {"aging": "7d", "shape": (96, 128, 400)},
    "7d, perpendicular": {"aging": "7d", "shape": (96, 160, 160), "axis_angle_deg": 90.0},
    "7d, 45° to the tilt axis": {"aging": "7d", "shape": (96, 160, 160), "axis_angle_deg": 45.0},
    "24h": {"aging": "24h", "shape": (96, 160, 160)},
    "fresh": {"aging": "fresh", "shape": (96, 160, 160)},
    "fresh, 3 dendrites": {"aging": "fresh", "n_dendrites": 3, "shape": (96, 128, 400),
                           "diameter_nm": (100.0, 140.0)},
    "7d, 1 nm voxels": {"aging": "7d", "shape": (192, 200, 320), "voxel_size_nm": 1.0},
    "7d, 2.5 nm voxels": {"aging": "7d", "shape": (80, 128, 128), "voxel_size_nm": 2.5},
    "7d, inverted": {"aging": "7d", "shape": (96, 160, 160), "inverted": True},
    "7d, fiducials": {"aging": "7d", "shape": (96, 160, 160), "fiducials": 8},
}
VARIANTS = ("percentiles", "calibrated", "restored")


def _simulate(args):
    import torch

    from napari_cryoli.jobs import run_job
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    torch.set_num_threads(1)
    name, seed, settings = args
    try:
        ph = run_job(simulate(PhantomSpec(seed=seed, **settings)))
    except Exception as e:  # noqa: BLE001 - a cell that cannot be built is reported, not fatal
        return name, seed, None, f"{type(e).__name__}: {e}"
    film = ph.truth.get("film", {})
    return name, seed, (ph.tomogram, ph.labels, ph.voxel_size_nm, film), None


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    from napari_cryoli.classes import LI, LIH, SEI

    out = {}
    for name, c in (("Li", LI), ("LiH", LIH), ("SEI", SEI)):
        a, b = pred == c, truth == c
        if b.any() or a.any():
            out[name] = float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
    present = [out[k] for k in ("Li", "LiH", "SEI") if k in out and (truth == {"Li": LI,
               "LiH": LIH, "SEI": SEI}[k]).any()]
    out["mean"] = float(np.mean(present))

    def share(x):
        m = np.isin(x, (LI, LIH)).sum()
        return float((x == LIH).sum() / m) if m else 0.0

    out["lih_share_pred"], out["lih_share_true"] = share(pred), share(truth)
    out["lih_share_error"] = out["lih_share_pred"] - out["lih_share_true"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=len(TEST_SEEDS))
    ap.add_argument("--cells", nargs="*", help="cell names (default: all)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", help="write the raw results (JSON)")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS[:2]))
    ap.add_argument("--dev-seeds", type=int, nargs="+",
                    help="development seeds to apply to instead of the test seeds")
    ap.add_argument("--start", help="pre-trained checkpoint to fine-tune (default: the shipped one)")
    ap.add_argument("--run-seeds", type=int, nargs="+", default=[TRAIN_SEED],
                    help="one fine-tuning run per seed (patch draws; the strokes stay the same)")
    args = ap.parse_args()

    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import PredictConfig, predict

    cells = {k: v for k, v in CELLS.items() if not args.cells or k in args.cells}
    seeds = args.dev_seeds or TEST_SEEDS[: args.seeds]
    jobs = [("train", TRAIN_SEED, TRAIN)] + [(name, seed, s) for name, s in cells.items()
                                             for seed in seeds]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        sims = list(pool.map(_simulate, jobs))
    sim_s = time.perf_counter() - t0
    phantoms = {(n, s): ph for n, s, ph, _ in sims if ph is not None}
    failed = {f"{n} / {s}": err for n, s, ph, err in sims if ph is None}
    print(json.dumps({"simulated": len(phantoms), "failed": failed, "seconds": round(sim_s, 1)}),
          flush=True)

    tomogram, truth, h, film = phantoms[("train", TRAIN_SEED)]
    results: dict = {"steps": args.steps, "start": args.start or "shipped",
                     "test_seeds": None if args.dev_seeds else list(seeds),
                     "development_seeds": args.dev_seeds, "run_seeds": args.run_seeds,
                     "failed_cells": failed, "variants": {}}
    for variant in args.variants:
        rows: dict = {"runs": [], "cells": {name: [] for name in cells}}
        for run_seed in args.run_seeds:
            t0 = time.perf_counter()
            model, note = fine_tune((tomogram, truth, h, film), args.steps, variant, args.start,
                                    args.device, run_seed=run_seed)
            train_s = time.perf_counter() - t0
            same = run_job(predict(tomogram, model, PredictConfig(uncertainty=False),
                                   voxel_size_nm=h)).labels
            rows["runs"].append({"run_seed": run_seed, "train_s": round(train_s, 1),
                                 "start": note, "same tomogram": scores(same, truth)})
            for name in cells:
                per_seed = []
                for seed in seeds:
                    if (name, seed) not in phantoms:
                        continue
                    img, lab, hv, _ = phantoms[(name, seed)]
                    pred = run_job(predict(img, model, PredictConfig(uncertainty=False),
                                           voxel_size_nm=hv)).labels
                    per_seed.append({"seed": seed, "run_seed": run_seed, **scores(pred, lab)})
                rows["cells"][name] += per_seed
                print(json.dumps({"variant": variant, "run_seed": run_seed, "cell": name,
                                  **summary(per_seed)}), flush=True)
        results["variants"][variant] = rows
    print(table(results))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


def fine_tune(phantom: tuple, steps: int, variant: str = "calibrated", start: str | None = None,
              device: str = "auto", more: tuple = (), run_seed: int = TRAIN_SEED,
              keep_background: float | None = None, vacuum_beside: bool = False):
    """The user's model: ``start`` (default the shipped network) fine-tuned for ``steps`` steps
    on strokes painted like a user on the training ``phantom`` (tomogram, truth, voxel size,
    film record) and on any ``more`` phantoms, in one run; returns it and where it started.
    ``run_seed`` draws the patches (the strokes stay those of ``TRAIN_SEED``);
    ``keep_background`` None is ``TrainConfig``'s; ``vacuum_beside`` paints background beside
    the dendrites at the heights of their faces too (``paint_like_a_user``)."""
    from benchmarks.segment_quality import film_sections, paint_like_a_user
    from napari_cryoli.classes import DEFAULT_ONTOLOGY
    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import TrainConfig, starting_model, train
    from napari_cryoli.segment.model import SegmentationModel

    def painted(ph: tuple) -> tuple:
        tomogram, truth, h, film = ph
        return tomogram, paint_like_a_user(truth, film_sections(film, h[0]),
                                           np.random.default_rng(TRAIN_SEED),
                                           vacuum_beside=vacuum_beside), h

    tomogram, strokes, h = painted(phantom)
    config = TrainConfig(minutes=None, max_steps=steps, seed=run_seed, device=device,
                         intensity="percentiles" if variant == "percentiles" else "calibrated",
                         restore_wedge=variant == "restored")
    if keep_background is not None:
        config = replace(config, keep_background=keep_background)
    if start:
        init, note = SegmentationModel.load(start, device=device), start
    else:
        init, note = starting_model(DEFAULT_ONTOLOGY, config)
    return run_job(train(tomogram, strokes, config, voxel_size_nm=h, init=init,
                         more=[painted(ph) for ph in more])).model, note


def add_model_arguments(ap: argparse.ArgumentParser) -> None:
    """``--model``, ``--steps`` and ``--workers`` of the benchmarks that apply this one's model."""
    ap.add_argument("--model", help="a model to apply (default: fine-tune the transfer "
                                    "benchmark's)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)


def model_path(args: argparse.Namespace) -> str:
    """``--model``, or this benchmark's model fine-tuned for ``--steps`` steps, saved to a
    temporary file."""
    if args.model:
        return args.model
    import tempfile

    _, _, phantom, _ = _simulate(("train", TRAIN_SEED, TRAIN))
    path = tempfile.mkstemp(suffix=".pt")[1]
    fine_tune(phantom, args.steps)[0].save(path)
    return path


def apply_model(apply, items: list[tuple], args: argparse.Namespace) -> list:
    """``apply((model, *item))`` for each item in ``args.workers`` processes, the model being
    ``model_path(args)``; the results in order."""
    path = model_path(args)
    with ProcessPoolExecutor(args.workers) as pool:
        return list(pool.map(apply, [(path, *item) for item in items]))


def predicted(path: str, image: np.ndarray, voxel_size_nm) -> np.ndarray:
    """The labels the model at ``path`` predicts for ``image``, on the CPU with one thread (the
    benchmarks that apply a model run one tomogram per process)."""
    import torch

    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import PredictConfig, predict
    from napari_cryoli.segment.model import SegmentationModel

    torch.set_num_threads(1)
    return run_job(predict(image, SegmentationModel.load(path, device="cpu"),
                           PredictConfig(uncertainty=False), voxel_size_nm=voxel_size_nm)).labels


def summary(per_seed: list[dict]) -> dict:
    if not per_seed:
        return {}
    out = {}
    for key in ("mean", "LiH", "lih_share_error"):
        v = np.array([r.get(key, np.nan) for r in per_seed], float)
        out[key] = [round(float(np.nanmean(v)), 3), round(float(np.nanstd(v)), 3)]
    return out


def table(results: dict) -> str:
    """Markdown: cell x variant, mean Dice (Li, LiH, SEI) and LiH-share error, mean ± s.d. over
    runs x tomograms, and each run's cell mean (with several runs)."""
    variants = list(results["variants"])
    several = len(results.get("run_seeds", [])) > 1
    cols = ["mean Dice", "LiH share − truth"] + (["run means (Dice; share)"] if several else [])
    head = "| cell | " + " | ".join(f"{v}: {c}" for v in variants for c in cols)
    lines = [head + " |", "|---" * (1 + len(cols) * len(variants)) + "|"]
    same = []
    for v in variants:
        runs = [r["same tomogram"] for r in results["variants"][v]["runs"]]
        s = summary(runs)
        lih = ", ".join(f"{r.get('LiH', np.nan):.2f}" for r in runs)
        same.append(f"{s['mean'][0]:.2f} | {s['lih_share_error'][0]:+.3f}"
                    + (f" | LiH Dice {lih}" if several else ""))
    lihs = ", ".join(
        f"{np.mean([r['same tomogram'].get('LiH', np.nan) for r in results['variants'][v]['runs']]):.2f}"
        for v in variants)
    lines.append(f"| same tomogram (LiH Dice {lihs}) | " + " | ".join(same) + " |")
    for cell in results["variants"][variants[0]]["cells"]:
        parts = []
        for v in variants:
            per_seed = results["variants"][v]["cells"][cell]
            s = summary(per_seed)
            if not s:
                parts.append(" | ".join(["—"] * len(cols)))
                continue
            part = (f"{s['mean'][0]:.2f} ± {s['mean'][1]:.2f} | "
                    f"{s['lih_share_error'][0]:+.3f} ± {s['lih_share_error'][1]:.3f}")
            if several:
                by_run = [summary([r for r in per_seed if r["run_seed"] == rs])
                          for rs in results["run_seeds"]]
                part += " | " + " / ".join(f"{b['mean'][0]:.2f}; {b['lih_share_error'][0]:+.3f}"
                                          for b in by_run if b)
            parts.append(part)
        lines.append(f"| {cell} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    main()
