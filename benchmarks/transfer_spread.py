"""What moves a transferred model's results between tomograms of one kind (development seeds).

The transfer benchmark's model (fine-tuned on training tomogram 6001, ``--steps`` steps) is
applied to many development seeds of one kind; each row gives the Dice scores and LiH share
error beside what the calibration read without strokes: polarity, the denser share of the metal
cores (``lih_share``, which ``intensity_warning`` flags from ``ONE_POPULATION_DENSE_SHARE``) and
the vacuum noise in Li units, and the voxel noise and any noise added to match the model's
(``--no-match-noise`` predicts without). The summary gives the correlation of the LiH share error
with each. The transfer benchmark's test seeds are not used.

    python -m benchmarks.transfer_spread [--cell "7d, 2 dendrites"] [--seeds 8001 8101]
        [--model M.pt | --save-model M.pt [--start PRE.pt] [--also "CELL:SEED" ...]]
        [--steps 300] [--run-seed 6001] [--keep-background 5] [--vacuum-beside] [--workers 2]
        [--no-match-noise]

``--also`` paints further training tomograms (a kind of ``CELLS`` and a seed outside the test
and development ranges, e.g. 6002) and fine-tunes on them with the training tomogram in one run,
as ``train T1 L1 T2 L2`` does.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from benchmarks.segment_transfer import (
    CELLS,
    TEST_SEEDS,
    TRAIN,
    TRAIN_SEED,
    _simulate,
    fine_tune,
    scores,
)


def _apply(job: tuple[str, str, int, bool]) -> dict:
    import torch

    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import PredictConfig, predict
    from napari_cryoli.segment.calibration import ONE_POPULATION_DENSE_SHARE, calibrate
    from napari_cryoli.segment.model import SegmentationModel

    torch.set_num_threads(1)
    path, cell, seed, match = job
    _, _, phantom, error = _simulate((cell, seed, CELLS[cell]))
    if phantom is None:
        return {"seed": seed, "error": error}
    image, truth, h, _ = phantom
    model = SegmentationModel.load(path, device="cpu")
    pred = run_job(predict(image, model, PredictConfig(uncertainty=False, match_noise=match),
                           voxel_size_nm=h))
    c = calibrate(image, h)
    return {"seed": seed, **{k: round(v, 3) for k, v in scores(pred.labels, truth).items()},
            "inverted": c.inverted, "lih_share": c.lih_share, "noise": c.noise,
            "flagged": c.lih_share is not None and c.lih_share >= ONE_POPULATION_DENSE_SHARE,
            "voxel_noise": pred.intensity.get("tomogram_voxel_noise"),
            "noise_added": pred.intensity.get("noise_added")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="7d, 2 dendrites", choices=list(CELLS))
    ap.add_argument("--seeds", type=int, nargs=2, default=[8001, 8101], help="first, stop")
    ap.add_argument("--model", help="a model to apply (default: fine-tune one as the transfer "
                                    "benchmark does)")
    ap.add_argument("--save-model", help="where to keep the fine-tuned model")
    ap.add_argument("--start", help="pre-trained checkpoint to fine-tune (default: the shipped "
                                    "one)")
    ap.add_argument("--also", nargs="+", default=[], metavar="CELL:SEED",
                    help="further training tomograms, painted and fine-tuned on in the same run")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--run-seed", type=int, default=TRAIN_SEED,
                    help="seed of the fine-tuning run's patches (the strokes stay the same)")
    ap.add_argument("--keep-background", type=float,
                    help="the keep term's weight on the start's sure background (default: "
                         "TrainConfig's)")
    ap.add_argument("--vacuum-beside", action="store_true",
                    help="paint background beside the dendrites at the heights of their top "
                         "and bottom faces too")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--match-noise", action=argparse.BooleanOptionalAction, default=True,
                    help="predict with noise matching, as shipped (default)")
    args = ap.parse_args()
    path = args.model
    if path is None:
        _, _, phantom, _ = _simulate(("train", TRAIN_SEED, TRAIN))
        more = []
        for spec in args.also:
            cell, seed = spec.rsplit(":", 1)
            if int(seed) in TEST_SEEDS:
                raise SystemExit(f"{spec}: the test seeds choose and train nothing")
            _, _, extra, error = _simulate((cell, int(seed), CELLS[cell]))
            if extra is None:
                raise SystemExit(f"{spec}: {error}")
            more.append(extra)
        path = args.save_model or "transfer_spread_model.pt"
        fine_tune(phantom, args.steps, start=args.start, more=tuple(more),
                  run_seed=args.run_seed, keep_background=args.keep_background,
                  vacuum_beside=args.vacuum_beside)[0].save(path)
    jobs = [(path, args.cell, s, args.match_noise) for s in range(*args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(_apply, jobs))
    for row in rows:
        print(json.dumps(row))
    ok = [r for r in rows if "error" not in r and not r["inverted"]]
    error = np.array([r["lih_share_error"] for r in ok])
    plain = [r for r in ok if not r["flagged"]]
    print(f"{args.cell}, seeds {args.seeds[0]}-{args.seeds[1] - 1}: {len(rows)} tomograms; read "
          f"inverted: {[r['seed'] for r in rows if r.get('inverted')]}; flagged: "
          f"{[(r['seed'], r['mean']) for r in ok if r['flagged']]}")
    print(f"right way up: mean Dice {np.mean([r['mean'] for r in ok]):.3f}; LiH share error "
          f"{error.mean():+.3f} ± {error.std():.3f}; correlation with the cores' denser share "
          f"{np.corrcoef([r['lih_share'] for r in ok], error)[0, 1]:.2f}, with noise "
          f"{np.corrcoef([r['noise'] for r in ok], error)[0, 1]:.2f}")
    if plain:
        order = sorted(plain, key=lambda r: r["noise"])
        quarters = [order[i * len(order) // 4 : (i + 1) * len(order) // 4] for i in range(4)]
        print("not flagged, by quartile of noise: " + "; ".join(
            f"{q[0]['noise']:.2f}-{q[-1]['noise']:.2f}: "
            f"{np.mean([r['lih_share_error'] for r in q]):+.3f}" for q in quarters if q))
        print(f"not flagged: denser share at most {max(r['lih_share'] for r in plain):.2f}, "
              f"mean Dice at least {min(r['mean'] for r in plain):.3f}")


if __name__ == "__main__":
    main()
