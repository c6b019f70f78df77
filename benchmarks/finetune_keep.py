"""How strongly fine-tuning should hold the pre-trained network: the keep weight, on development seeds.

The transfer benchmark's user (strokes on the 7 d training tomogram, seed 6001, 300 steps from
the shipped checkpoint, calibrated grey levels) fine-tunes once per ``--keep`` weight; each model
segments the training tomogram and development tomograms of other kinds (seeds 8001-8003, never
the transfer benchmark's test seeds). Printed per tomogram and weight: mean Dice of Li, LiH and
SEI, LiH share of the metal minus the truth, and the SEI median thickness minus the truth's.

    python -m benchmarks.finetune_keep [--keep 1.0 0.3] [--steps 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.segment_transfer import CELLS, TRAIN, TRAIN_SEED, _simulate, scores

#: Development tomograms: (cell of the transfer benchmark, seed).
DEV = (("7d, 1 dendrite", 8001), ("7d, 1 dendrite", 8002), ("24h", 8001),
       ("7d, 3 dendrites", 8001), ("7d, wide field", 8002), ("7d, perpendicular", 8001),
       ("7d, fiducials", 8003), ("fresh", 8001))


def sei_median_nm(labels: np.ndarray, voxel_size_nm) -> float:
    from napari_cryoli.measure.sei import sei_thickness

    return float(np.nanmedian(sei_thickness(labels, voxel_size_nm).thickness_nm))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=float, nargs="+", default=[1.0, 0.3])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    from benchmarks.segment_quality import film_sections, paint_like_a_user
    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import PredictConfig, TrainConfig, predict, train
    from napari_cryoli.segment.model import SegmentationModel
    from napari_cryoli.segment.pretrained import pretrained_path

    _, _, (tomogram, truth, h, film), _ = _simulate(("train", TRAIN_SEED, TRAIN))
    film_z = film_sections(film, h[0])
    strokes = paint_like_a_user(truth, film_z, np.random.default_rng(TRAIN_SEED))
    models = {}
    for keep in args.keep:
        config = TrainConfig(minutes=None, max_steps=args.steps, seed=TRAIN_SEED,
                             device=args.device, intensity="calibrated", keep_weight=keep)
        init = SegmentationModel.load(pretrained_path(), device=args.device)
        t0 = time.perf_counter()
        models[keep] = run_job(train(tomogram, strokes, config, voxel_size_nm=h, init=init)).model
        print(f"keep {keep}: trained in {time.perf_counter() - t0:.0f} s", flush=True)

    cases = [("training (7d, 6001)", (tomogram, truth, h))]
    for cell, seed in DEV:
        _, _, ph, err = _simulate((cell, seed, CELLS[cell]))
        if ph is None:
            print(f"{cell} / {seed}: not simulated ({err})")
            continue
        cases.append((f"{cell}, {seed}", ph[:3]))
    for name, (img, lab, hv) in cases:
        true_sei = sei_median_nm(lab, hv)
        for keep, model in models.items():
            pred = run_job(predict(img, model, PredictConfig(uncertainty=False),
                                   voxel_size_nm=hv)).labels
            s = scores(pred, lab)
            print(f"{name:24s} keep {keep:<4g} mean Dice {s['mean']:.3f}  LiH share "
                  f"{s['lih_share_error']:+.3f}  SEI median {sei_median_nm(pred, hv) - true_sei:+.2f} nm",
                  flush=True)


if __name__ == "__main__":
    main()
