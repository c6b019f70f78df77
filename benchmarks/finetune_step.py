"""Cost of a fine-tuning step with and without the keep term (one extra forward pass of the
starting model), on the 24 h quality-benchmark phantom and its strokes, runs interleaved.

    python -m benchmarks.finetune_step [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.segment_quality import film_sections, paint_like_a_user
from napari_cryoli.classes import DEFAULT_ONTOLOGY
from napari_cryoli.jobs import run_job
from napari_cryoli.segment import TrainConfig, starting_model, train
from napari_cryoli.tomo.phantom import PhantomSpec, simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ph = run_job(simulate(PhantomSpec(aging="24h", seed=1101, shape=(96, 160, 160))))
    film, h = ph.truth["film"], ph.voxel_size_nm[0]
    film_z = film_sections(film, h)
    labels = paint_like_a_user(ph.labels, film_z, np.random.default_rng(1101))
    ms: dict[float, list[float]] = {0.0: [], 1.0: []}
    for _ in range(args.repeats):
        for keep, times in ms.items():
            config = TrainConfig(minutes=None, max_steps=args.steps, eval_every=10**6,
                                 keep_weight=keep, seed=1)
            init, _note = starting_model(DEFAULT_ONTOLOGY, config)
            t0 = time.perf_counter()
            run_job(train(ph.tomogram, labels, config, init=init))
            times.append(1000 * (time.perf_counter() - t0) / args.steps)
    for keep, values in ms.items():
        print(f"keep_weight {keep}: median {np.median(values):.0f} ms/step "
              f"({', '.join(f'{v:.0f}' for v in values)})")
    print(f"ratio with/without: {np.median(ms[1.0]) / np.median(ms[0.0]):.2f}")


if __name__ == "__main__":
    main()
