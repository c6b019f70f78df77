"""Time from a 512x512x256 label volume to meshes (marching cubes, smoothing, decimation), and
the same with the SEI-thickness colouring (which measures the volume first).

The volume is the measurement benchmark's (``measure_speed.build_volume``: eight dendrites with
LiH cores, Cu grains and SEI shells, 1.5 x 1 x 1 nm voxels). The peer, in the same run, is
scikit-image's marching cubes on the whole volume per class with no smoothing or decimation (what
a script would do first); it is our own baseline, not another project's mesher.

    flock /tmp/cryoli-bench.lock python -m benchmarks.mesh_speed [--size X Y Z] [--faces N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_cryoli.classes import PHASES
from napari_cryoli.dataset.mesh import MeshConfig, mesh_labels, write_meshes
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import measure

from .measure_speed import VOXEL, build_volume


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def peer(labels):
    from skimage.measure import marching_cubes

    n = 0
    for c in PHASES:
        _, faces, _, _ = marching_cubes((labels == c).astype(np.float32), 0.5)
        n += len(faces)
    return n


def stage_shares(fn) -> str:
    """Cumulative time of marching cubes, smoothing and decimation as shares of ``fn``'s."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.runcall(fn)
    total = time.perf_counter() - t0
    stats = pstats.Stats(profile).stats
    out = []
    for label, name in (("marching cubes", "marching_cubes"), ("Taubin", "filter_taubin"),
                        ("decimation", "simplify_quadric_decimation")):
        ct = sum(v[3] for k, v in stats.items() if k[2] == name)
        out.append(f"{label} {ct:.1f} s ({100 * ct / total:.0f}%)")
    return ", ".join(out) + f" of {total:.1f} s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, nargs=3, default=(512, 512, 256), metavar=("X", "Y", "Z"))
    ap.add_argument("--faces", type=int, default=200_000)
    args = ap.parse_args()
    labels, _, _ = build_volume(tuple(args.size))
    print(f"labels {labels.shape} (z, y, x), {labels.size / 1e6:.0f} M voxels, "
          f"load average {os.getloadavg()[0]:.1f}")
    config = MeshConfig(target_faces=args.faces)
    origin = (100.0, -50.0, 20.0)
    meshes, wall, cpu = timed(lambda: run_job(mesh_labels(labels, VOXEL, origin, config)))
    faces = sum(len(m.faces) for m in meshes.meshes)
    print(f"meshes (no colours): {wall:.2f} s wall, {cpu:.2f} s CPU, {faces} faces in "
          f"{len(meshes.meshes)} classes")
    print("share of the meshing time (cProfile, cumulative):", stage_shares(
        lambda: run_job(mesh_labels(labels, VOXEL, origin, config))))
    with tempfile.TemporaryDirectory() as tmp:
        _, wall_w, _ = timed(lambda: write_meshes(meshes, Path(tmp) / "m.glb"))
        size = (Path(tmp) / "m.glb").stat().st_size
    print(f"write GLB: {wall_w:.2f} s, {size / 1e6:.1f} MB")
    report, wall_m, _ = timed(lambda: run_job(measure(labels, VOXEL)))
    _, wall_c, _ = timed(lambda: run_job(mesh_labels(
        labels, VOXEL, origin, config, surface=report.surface)))
    print(f"with thickness colours: measure {wall_m:.2f} s + meshes {wall_c:.2f} s")
    n, wall_p, cpu_p = timed(lambda: peer(labels))
    print(f"peer (whole-volume marching cubes per class, no smoothing/decimation): "
          f"{wall_p:.2f} s wall, {cpu_p:.2f} s CPU, {n} faces")
    print(f"ratio peer / napari-cryoli meshes: {wall_p / wall:.2f}x wall")


if __name__ == "__main__":
    main()
