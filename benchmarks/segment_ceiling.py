"""How well a transfer cell can be segmented at all: a tomogram fine-tuned on its own strokes.

The transfer benchmark applies a model trained on one tomogram to others; where a cell misses,
this separates what transfer costs from what the tomogram allows. For each seed of ``--cell``
(development seeds by default; the transfer benchmark's test seeds choose nothing), the shipped
pre-trained network is scored as it is and after fine-tuning (``--steps``, or the user's
``--minutes`` budget) on strokes painted like a user on that same tomogram. Also counted: what
the SEI it misses is called.

    python -m benchmarks.segment_ceiling [--cell "7d, perpendicular"] [--seeds 8001 8002]
        [--steps 300 | --minutes 5]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.segment_quality import film_sections, paint_like_a_user
from benchmarks.segment_transfer import CELLS, scores

KEYS = ("Li", "LiH", "SEI", "mean", "lih_share_error")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="7d, perpendicular", choices=list(CELLS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[8001, 8002])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--minutes", type=float, help="a time budget instead of --steps")
    args = ap.parse_args()

    from napari_cryoli.classes import DEFAULT_ONTOLOGY, SEI
    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import PredictConfig, TrainConfig, predict, starting_model, train
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    def rounded(s: dict) -> dict:
        return {k: round(s[k], 3) for k in KEYS if k in s}

    for seed in args.seeds:
        ph = run_job(simulate(PhantomSpec(seed=seed, **CELLS[args.cell])))
        image, truth, h = ph.tomogram, ph.labels, ph.voxel_size_nm
        strokes = paint_like_a_user(truth, film_sections(ph.truth["film"], h[0]),
                                    np.random.default_rng(seed))
        config = TrainConfig(minutes=args.minutes, max_steps=None if args.minutes else args.steps,
                             seed=seed)
        init, _ = starting_model(DEFAULT_ONTOLOGY, config)
        start = run_job(predict(image, init, PredictConfig(uncertainty=False), voxel_size_nm=h))
        result = run_job(train(image, strokes, config, voxel_size_nm=h, init=init))
        own = run_job(predict(image, result.model, PredictConfig(uncertainty=False),
                              voxel_size_nm=h)).labels
        sei = truth == SEI
        missed = {DEFAULT_ONTOLOGY.name_of(int(c)): int(((own == c) & sei).sum())
                  for c in np.unique(own[sei & (own != SEI)])}
        print(json.dumps({"cell": args.cell, "seed": seed,
                          "steps": result.history["step"][-1] if result.history["step"] else 0,
                          "pretrained": rounded(scores(start.labels, truth)),
                          "own_strokes": rounded(scores(own, truth)),
                          "sei_voxels": int(sei.sum()), "sei_missed_as": missed}), flush=True)


if __name__ == "__main__":
    main()
