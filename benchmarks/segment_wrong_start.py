"""Fine-tuning from a starting model that does not fit the tomogram: adapting against holding it.

Inverted-contrast 7 d phantoms with percentile grey levels: a model pre-trained on percentile
grey levels (``--start``, e.g. the checkpoint shipped before calibration) reads them upside down
and labels the strokes poorly (the shipped, calibrated model, with ``--intensity calibrated``,
undoes the inversion itself and starts right). The same strokes (painted like a user) fine-tune
it for ``--steps`` steps with ``TrainConfig.adapt_wrong_start`` on (weaker keep term, batch norm
adapting) and off (the keep term and frozen statistics of a good start); the whole tomogram is
scored against the truth.

    git show 8d7988d:src/napari_cryoli/segment/weights/phantom_pretrained.pt > percentile.pt
    python -m benchmarks.segment_wrong_start --start percentile.pt [--steps 200] [--seeds 8001 8002]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.segment_quality import film_sections, paint_like_a_user
from benchmarks.segment_transfer import scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[8001, 8002])
    ap.add_argument("--start", help="starting checkpoint (default: the shipped one)")
    ap.add_argument("--intensity", choices=("percentiles", "calibrated"), default="percentiles",
                    help="grey levels for fine-tuning: the starting model's own mapping")
    args = ap.parse_args()

    from napari_cryoli.classes import DEFAULT_ONTOLOGY
    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import PredictConfig, TrainConfig, predict, starting_model, train
    from napari_cryoli.segment.model import SegmentationModel
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    for seed in args.seeds:
        ph = run_job(simulate(PhantomSpec(aging="7d", seed=seed, inverted=True)))
        film, h = ph.truth["film"], ph.voxel_size_nm[0]
        film_z = film_sections(film, h)
        strokes = paint_like_a_user(ph.labels, film_z, np.random.default_rng(seed))
        for adapt in (True, False):
            config = TrainConfig(minutes=None, max_steps=args.steps, seed=seed,
                                 adapt_wrong_start=adapt, intensity=args.intensity)
            init = (SegmentationModel.load(args.start) if args.start
                    else starting_model(DEFAULT_ONTOLOGY, config)[0])
            result = run_job(train(ph.tomogram, strokes, config, voxel_size_nm=ph.voxel_size_nm,
                                   init=init))
            pred = run_job(predict(ph.tomogram, result.model, PredictConfig(uncertainty=False),
                                   voxel_size_nm=ph.voxel_size_nm)).labels
            print(json.dumps({"seed": seed, "adapt": adapt, "keep_weight": config.keep_weight,
                              "start_dice": result.summary["start_check"]["mean"],
                              **{k: round(v, 3) for k, v in scores(pred, ph.labels).items()}}),
                  flush=True)


if __name__ == "__main__":
    main()
