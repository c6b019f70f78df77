"""Opening a 2 GiB float32 tomogram: read_mrc (memory-mapped) against mrcfile.

Writes a (512, 1024, 1024) float32 MRC file to /tmp (or --path) with ``open_mrc_for_writing``,
then opens it in a fresh process per run and method, with the file evicted from the page cache
before each run (cold disk reads), and records:

- ``open_s``: seconds to open the file (header, geometry, NaN check; data not read);
- ``slice_s``: seconds to open and fetch the middle z-slice (what a viewer shows first);
- ``rss_mib``: growth of the process's peak resident memory during open + slice.

Methods: ``read_mrc`` (this project), ``mrcfile.mmap(permissive=True)`` (the memory-mapped peer),
``mrcfile.open(permissive=True)`` and ``mrcfile.read`` (both read all the data), and
``read_mrc(mmap=False)`` (our full read, the peer of mrcfile.read).

    python -m benchmarks.mrc_open [--repeats 3] [--path /tmp/cryoli-bench-2g.mrc] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAPE = (512, 1024, 1024)  # 2 GiB of float32
VOXEL_NM = (1.35, 1.35, 1.35)

METHODS = {
    "read_mrc": "from napari_cryoli.io import read_mrc; v = read_mrc(path); data = v.data",
    "mrcfile.mmap": (
        "import mrcfile; m = mrcfile.mmap(path, mode='r', permissive=True); data = m.data"
    ),
    "mrcfile.open": (
        "import mrcfile; m = mrcfile.open(path, mode='r', permissive=True); data = m.data"
    ),
    "mrcfile.read": "import mrcfile; data = mrcfile.read(path)",
    "read_mrc(mmap=False)": (
        "from napari_cryoli.io import read_mrc; v = read_mrc(path, mmap=False); data = v.data"
    ),
}

# Peak RSS is read from /proc (VmHWM): getrusage's ru_maxrss survives execve, so a child would
# inherit the parent's peak from writing the file.
CHILD = """
import json, sys, time
import numpy as np, mrcfile, napari_cryoli.io

def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

path = sys.argv[1]
base = peak_kib()
t0 = time.perf_counter()
{open}
t1 = time.perf_counter()
middle = np.array(data[data.shape[0] // 2])
t2 = time.perf_counter()
print(json.dumps({{"open_s": t1 - t0, "slice_s": t2 - t0, "rss_mib": (peak_kib() - base) / 1024,
                   "shape": list(data.shape), "checksum": float(middle[::64, ::64].sum())}}))
"""


def write_test_file(path: Path) -> float:
    """Write the 2 GiB tomogram section by section; returns seconds taken."""
    from napari_cryoli.io import open_mrc_for_writing

    rng = np.random.default_rng(0)
    noise = rng.standard_normal((64, SHAPE[2]), dtype=np.float32)
    t0 = time.perf_counter()
    with open_mrc_for_writing(path, SHAPE, np.float32, voxel_size_nm=VOXEL_NM) as out:
        for z in range(SHAPE[0]):
            section = np.tile(noise, (SHAPE[1] // 64, 1))
            section += np.float32(z % 17)
            out[z] = np.roll(section, z, axis=1)
    return time.perf_counter() - t0


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache, so the next read comes from disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run_once(method: str, path: Path) -> dict:
    evict(path)
    code = CHILD.format(open=METHODS[method])
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", type=Path, default=Path("/tmp/cryoli-bench-2g.mrc"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the 2 GiB file afterwards")
    args = parser.parse_args(argv)

    expected = 1024 + int(np.prod(SHAPE)) * 4
    if not (args.path.exists() and args.path.stat().st_size == expected):
        seconds = write_test_file(args.path)
        print(
            f"wrote {args.path} ({expected / 2**30:.2f} GiB) in {seconds:.1f} s "
            f"({expected / 2**20 / seconds:.0f} MiB/s, open_mrc_for_writing)"
        )
    try:
        results: dict[str, list[dict]] = {m: [] for m in METHODS}
        for _ in range(args.repeats):
            for method in METHODS:  # interleaved, so drifts in machine load hit all alike
                results[method].append(run_once(method, args.path))
        checksums = {m: r[0]["checksum"] for m, r in results.items()}
        assert len(set(checksums.values())) == 1, f"methods disagree: {checksums}"
        summary = {
            m: {k: statistics.median(r[k] for r in runs) for k in ("open_s", "slice_s", "rss_mib")}
            for m, runs in results.items()
        }
    finally:
        if not args.keep:
            args.path.unlink(missing_ok=True)

    print(f"\n{'method':<22}{'open (s)':>10}{'open+slice (s)':>16}{'peak RSS growth (MiB)':>24}")
    for method, s in summary.items():
        print(f"{method:<22}{s['open_s']:>10.4f}{s['slice_s']:>16.4f}{s['rss_mib']:>24.1f}")
    ours = summary["read_mrc"]
    print("\nratios (median of runs):")
    print(
        f"  mrcfile.mmap / read_mrc, open+slice:   "
        f"{summary['mrcfile.mmap']['slice_s'] / ours['slice_s']:.2f}x"
    )
    print(
        f"  mrcfile.open / read_mrc, open+slice:   "
        f"{summary['mrcfile.open']['slice_s'] / ours['slice_s']:.1f}x"
    )
    print(
        f"  mrcfile.read / read_mrc, open+slice:   "
        f"{summary['mrcfile.read']['slice_s'] / ours['slice_s']:.1f}x"
    )
    print(
        f"  mrcfile.read / read_mrc(mmap=False):   "
        f"{summary['mrcfile.read']['slice_s'] / summary['read_mrc(mmap=False)']['slice_s']:.2f}x"
    )
    print(json.dumps({"shape": SHAPE, "repeats": args.repeats, "median": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
