"""Condition statistics from end to end: simulated fresh / 24 h / 7 d tomograms through ``batch``
(the shipped model on a local Dask cluster) and ``compare``, beside the same statistics on the
true labels of the same tomograms.

Four tomograms per condition at the phantom's default size (96 x 160 x 160 voxels of 2 nm), seeds
21-24 (fixed before the first run). What it shows is how much of the designed ordering survives
segmentation by the shipped model; the statistics themselves are validated on true labels in
``tests/dataset/test_statistics.py``.

    flock /tmp/cryoli-bench.lock python -m benchmarks.batch_conditions [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from napari_cryoli.dataset.batch import (
    BatchConfig,
    TomogramResult,
    open_client,
    plan_batch,
    run_batch,
    write_dataset_table,
)
from napari_cryoli.dataset.statistics import METRICS, CompareConfig, compare
from napari_cryoli.io import read_labels
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import measure, write_report
from napari_cryoli.segment.pretrained import pretrained_path
from napari_cryoli.tomo.phantom import PhantomSpec, simulate, write_phantom

AGINGS = ("fresh", "24h", "7d")
SEEDS = (21, 22, 23, 24)


def show(title: str, result) -> None:
    print(f"== {title}")
    for line in result.headline():
        print("  " + line)
    for m in METRICS:
        for d in (d for d in result.differences if d.metric == m.column):
            if d.difference is None:
                continue
            verdict = "CI excludes 0" if d.excludes_zero else "CI includes 0"
            print(f"  {m.column}: {d.b} - {d.a} = {d.difference:+.3f} "
                  f"[{d.ci_low:+.3f}, {d.ci_high:+.3f}] {verdict}, "
                  f"p_perm {d.p_permutation:.3f}, p_MW {d.p_mann_whitney:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        conditions = {}
        for aging in AGINGS:
            for seed in SEEDS:
                paths = write_phantom(run_job(simulate(PhantomSpec(aging=aging, seed=seed))),
                                      root / f"{aging}_{seed}")
                conditions[str(paths["tomogram"])] = aging
        items = plan_batch(list(conditions), conditions=conditions)
        config = BatchConfig(model=pretrained_path(), out_dir=root / "predicted")
        t0 = time.perf_counter()
        with open_client(args.workers) as client:
            result = run_job(run_batch(items, config, client))
        print(f"batch: {result.count('done')} done in {time.perf_counter() - t0:.0f} s")
        truth_items = plan_batch([i.tomogram.with_name("labels.mrc") for i in items],
                                 conditions={str(i.tomogram.with_name("labels.mrc")): i.condition
                                             for i in items})
        (root / "truth").mkdir()
        done = []
        for item in truth_items:
            volume = read_labels(item.tomogram)
            write_report(run_job(measure(volume.data, volume.voxel_size_nm)),
                         item.report(root / "truth"))
            done.append(TomogramResult(item, "done"))
        truth_table = write_dataset_table(done, root / "truth")
        show("true labels", run_job(compare(truth_table, CompareConfig())))
        show("shipped model", run_job(compare(result.table, CompareConfig())))


if __name__ == "__main__":
    main()
