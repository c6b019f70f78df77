"""Eight tomograms predicted and measured on a two-worker local Dask cluster, against the same
eight one after another in one process (the peer, in the same run; both are our own code).

The sequential side calls ``process_tomogram`` (what each Dask task runs) in a loop with torch's
default threads (all cores), or ``--serial-threads`` of them; the cluster side runs it as tasks on
two single-threaded worker processes (dask's nanny starts them with OMP_NUM_THREADS=1, so torch
runs one thread in each: printed). Both write the same outputs into separate folders; both are warmed first (imports,
model load), cluster start-up is timed apart, and the two sides alternate ``--repeats`` times so
that a change in the machine's load hits both. The tomograms are simulated (seeds 0-7, alternating
fresh/24 h/7 d) at 64 x 128 x 128 voxels of 2 nm.

    flock /tmp/cryoli-bench.lock python -m benchmarks.batch_speedup [--n 8] [--workers 2]
        [--repeats 2] [--serial-threads N]
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
    ap.add_argument("--repeats", type=int, default=2, help="sequential/cluster pairs, interleaved")
    ap.add_argument("--serial-threads", type=int, help="torch threads of the sequential side "
                    "(default: torch's own, all cores)")
    args = ap.parse_args()
    import torch

    if args.serial_threads:
        torch.set_num_threads(args.serial_threads)
    serial_threads = torch.get_num_threads()
    model = pretrained_path()
    fp = model_fingerprint(model)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for seed in range(args.n):
            spec = PhantomSpec(aging=AGINGS[seed % 3], seed=seed, shape=tuple(args.shape),
                               diameter_nm=(40.0, 80.0))
            paths.append(write_phantom(run_job(simulate(spec)), root / f"t{seed}")["tomogram"])
        items = plan_batch(paths)
        (root / "warm").mkdir()
        # Untimed on both sides: imports, model load, first-call set-up (one tomogram each).
        process_tomogram(items[0], BatchConfig(model=model, out_dir=root / "warm"), fp)
        t0 = time.perf_counter()
        with open_client(args.workers) as client:
            t_start = time.perf_counter() - t0
            client.run(_warm, items[0], BatchConfig(model=model, out_dir=root / "warm"), fp)
            worker_threads = sorted(client.run(torch.get_num_threads).values())
            pairs = []
            for k in range(args.repeats):
                load = os.getloadavg()[0]
                seq = BatchConfig(model=model, out_dir=root / f"sequential{k}")
                seq.out_dir.mkdir()
                t0 = time.perf_counter()
                results = [process_tomogram(i, seq, fp) for i in items]
                t_seq = time.perf_counter() - t0
                assert all(r.status == "done" for r in results), results
                par = BatchConfig(model=model, out_dir=root / f"cluster{k}")
                t0 = time.perf_counter()
                result = run_job(run_batch(items, par, client))
                t_par = time.perf_counter() - t0
                assert result.count("done") == args.n, result
                pairs.append((t_seq, t_par, load, os.getloadavg()[0]))
    print(f"{args.n} tomograms {tuple(args.shape)} voxels, {os.cpu_count()} cores; cluster of "
          f"{args.workers} workers x 1 thread started in {t_start:.1f} s (not counted); torch "
          f"threads: sequential {serial_threads}, per worker {worker_threads}")
    for k, (t_seq, t_par, l0, l1) in enumerate(pairs):
        print(f"pair {k}: sequential (one process, {serial_threads} torch threads) {t_seq:.1f} s, "
              f"cluster {t_par:.1f} s, speed-up {t_seq / t_par:.2f}x; "
              f"load average {l0:.1f} -> {l1:.1f}")
    ratios = sorted(t_seq / t_par for t_seq, t_par, _, _ in pairs)
    print(f"speed-up per pair: {', '.join(f'{r:.2f}x' for r in ratios)}")


if __name__ == "__main__":
    main()
