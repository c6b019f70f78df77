"""Eight tomograms predicted and measured on a two-worker local Dask cluster, against the same
eight one after another in one process (the peer, in the same run; both are our own code).

The sequential side calls ``process_tomogram`` (what each Dask task runs) in a loop with torch's
default threads (all cores); the cluster side runs it as tasks on two single-threaded worker
processes. Both write the same outputs into separate folders; cluster start-up is timed apart.
The tomograms are simulated (seeds 0-7, alternating fresh/24 h/7 d) at 64 x 128 x 128, 2 nm.

    flock /tmp/cryoli-bench.lock python -m benchmarks.batch_speedup [--n 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from napari_cryoli.dataset.batch import (
    BatchConfig,
    model_fingerprint,
    open_client,
    plan_batch,
    process_tomogram,
    run_batch,
)
from napari_cryoli.jobs import run_job
from napari_cryoli.segment.pretrained import pretrained_path
from napari_cryoli.tomo.phantom import PhantomSpec, simulate, write_phantom

AGINGS = ("fresh", "24h", "7d")


def _warm(item, config, fingerprint) -> None:
    """Imports, model load and first-call set-up on a worker, in a folder of its own."""
    from dataclasses import replace

    out = config.out_dir / str(os.getpid())
    out.mkdir()
    process_tomogram(item, replace(config, out_dir=out), fingerprint)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=3, default=(64, 128, 128))
    args = ap.parse_args()
    model = pretrained_path()
    per_tomogram: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for seed in range(args.n):
            spec = PhantomSpec(aging=AGINGS[seed % 3], seed=seed, shape=tuple(args.shape),
                               diameter_nm=(40.0, 80.0))
            paths.append(write_phantom(run_job(simulate(spec)), root / f"t{seed}")["tomogram"])
        items = plan_batch(paths)
        load0 = os.getloadavg()[0]

        fp = model_fingerprint(model)
        for name in ("sequential", "cluster", "warm"):
            (root / name).mkdir()
        # Untimed on both sides: imports, model load, first-call set-up (one tomogram each).
        process_tomogram(items[0], BatchConfig(model=model, out_dir=root / "warm"), fp)
        seq = BatchConfig(model=model, out_dir=root / "sequential")
        t0 = time.perf_counter()
        results = [process_tomogram(i, seq, fp) for i in items]
        t_seq = time.perf_counter() - t0
        assert all(r.status == "done" for r in results), results
        for r in results:
            per_tomogram.append(r.seconds)

        par = BatchConfig(model=model, out_dir=root / "cluster")
        t0 = time.perf_counter()
        with open_client(args.workers) as client:
            t_start = time.perf_counter() - t0
            warm = BatchConfig(model=model, out_dir=root / "warm")
            client.run(_warm, items[0], warm, fp)  # every worker, untimed
            t1 = time.perf_counter()
            result = run_job(run_batch(items, par, client))
            t_par = time.perf_counter() - t1
        assert result.count("done") == args.n, result
        load1 = os.getloadavg()[0]
    print(f"{args.n} tomograms {tuple(args.shape)}, load average {load0:.1f} before, "
          f"{load1:.1f} after, {os.cpu_count()} cores")
    print(f"sequential (one process, torch threads {os.cpu_count()}): {t_seq:.1f} s "
          f"({t_seq / args.n:.2f} s per tomogram)")
    print(f"cluster ({args.workers} workers x 1 thread): {t_par:.1f} s "
          f"(+ {t_start:.1f} s cluster start)")
    print(f"speed-up: {t_seq / t_par:.2f}x (with start-up: {t_seq / (t_par + t_start):.2f}x)")
    task = [r.seconds for r in result.results]
    print(f"time per tomogram: sequential {sum(per_tomogram) / len(per_tomogram):.2f} s, "
          f"on a worker {sum(task) / len(task):.2f} s (mean)")


if __name__ == "__main__":
    main()
