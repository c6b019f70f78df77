"""Time from a 512x512x256 label volume to meshes (marching cubes, smoothing, decimation), and
the same with the SEI-thickness colouring (which measures the volume first).

The volume is the measurement benchmark's (``measure_speed.build_volume``: eight dendrites with
LiH cores, Cu grains and SEI shells, 1.5 x 1 x 1 nm voxels). Two peers in the same run, both our
own code: the previous pipeline (trimesh's ``filter_taubin`` and ``simplify_quadric_decimation``
at fast-simplification's default aggressiveness, in Å), timed in turn with ours ``--repeats``
times; and scikit-image's marching cubes on the whole volume per class with no smoothing or
decimation (what a script would do first), once. Every mesh's vertices are measured against the
label surface (in voxels; the accuracy target is half a voxel).

    flock /tmp/cryoli-bench.lock python -m benchmarks.mesh_speed [--size X Y Z] [--faces N]
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_cryoli.classes import PHASES
from napari_cryoli.dataset.mesh import MeshConfig, _box, mesh_labels, write_meshes
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import measure

from .measure_speed import VOXEL, build_volume

ORIGIN = (100.0, -50.0, 20.0)


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def previous(labels, config: MeshConfig) -> list:
    """The previous pipeline, per class: marching cubes on the box, trimesh's Taubin filter and
    quadric decimation (fast-simplification at its default aggressiveness), all in Å."""
    import trimesh
    from skimage.measure import marching_cubes

    out = []
    for c in (c for c in PHASES if (labels == c).any()):
        box = _box(labels, c)
        mask = np.pad(labels[box] == c, 1).astype(np.float32)
        verts, faces, _, _ = marching_cubes(mask, 0.5, allow_degenerate=False)
        corner = np.array([s.start - 1 for s in box], float)
        zyx_nm = (verts + corner) * np.asarray(VOXEL) + np.asarray(ORIGIN)
        mesh = trimesh.Trimesh(zyx_nm[:, ::-1] * 10.0, faces[:, ::-1], process=False)
        trimesh.smoothing.filter_taubin(mesh, iterations=config.smooth_iterations)
        if len(mesh.faces) > config.target_faces:
            mesh = mesh.simplify_quadric_decimation(face_count=config.target_faces)
        out.append((c, np.asarray(mesh.vertices), np.asarray(mesh.faces)))
    return out


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
    for label, name in (("marching cubes", "marching_cubes"), ("Taubin", "taubin"),
                        ("decimation", "decimate")):
        ct = sum(v[3] for k, v in stats.items() if k[2] == name)
        out.append(f"{label} {ct:.1f} s ({100 * ct / total:.0f}%)")
    return ", ".join(out) + f" of {total:.1f} s"


def face_distance():
    """The tests' distance of vertices to the label surface (tests/dataset/test_mesh.py)."""
    path = Path(__file__).parents[1] / "tests" / "dataset" / "test_mesh.py"
    spec = importlib.util.spec_from_file_location("_test_mesh", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.face_distance


def accuracy(labels, meshes) -> str:
    """Largest and 99.9th-percentile distance (voxels) of each class's vertices to its surface."""
    distance = face_distance()
    out = []
    for c, vertices in meshes:
        d = distance(vertices, labels == c, VOXEL, ORIGIN)
        out.append(f"{c}: max {d.max():.3f} (p99.9 {np.percentile(d, 99.9):.3f})")
    return "; ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, nargs=3, default=(512, 512, 256), metavar=("X", "Y", "Z"))
    ap.add_argument("--faces", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3, help="ours/previous pairs, interleaved")
    args = ap.parse_args()
    labels, _, _ = build_volume(tuple(args.size))
    print(f"labels {labels.shape} (z, y, x), {labels.size / 1e6:.0f} M voxels, "
          f"{os.cpu_count()} cores")
    config = MeshConfig(target_faces=args.faces)
    ours, prev = [], []
    for k in range(args.repeats):
        load = os.getloadavg()[0]
        meshes, wall, cpu = timed(lambda: run_job(mesh_labels(labels, VOXEL, ORIGIN, config)))
        old, wall_o, cpu_o = timed(lambda: previous(labels, config))
        ours.append((wall, cpu))
        prev.append((wall_o, cpu_o))
        print(f"repeat {k}: ours {wall:.2f} s wall ({cpu:.2f} s CPU), previous {wall_o:.2f} s "
              f"wall ({cpu_o:.2f} s CPU); load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    faces = sum(len(m.faces) for m in meshes.meshes)
    faces_o = sum(len(f) for _, _, f in old)
    med = [statistics.median(x) for x in zip(*ours)]
    med_o = [statistics.median(x) for x in zip(*prev)]
    print(f"meshes (no colours), median of {args.repeats}: ours {med[0]:.2f} s wall "
          f"({med[1]:.2f} s CPU), {faces} faces in {len(meshes.meshes)} classes; previous "
          f"{med_o[0]:.2f} s wall ({med_o[1]:.2f} s CPU), {faces_o} faces; "
          f"ratio previous / ours {med_o[0] / med[0]:.2f}x wall, {med_o[1] / med[1]:.2f}x CPU")
    print("vertex distance to the label surface (voxels), ours:",
          accuracy(labels, [(m.class_id, m.vertices_A) for m in meshes.meshes]))
    print("vertex distance to the label surface (voxels), previous:",
          accuracy(labels, [(c, v) for c, v, _ in old]))
    print("share of the meshing time (cProfile, cumulative):", stage_shares(
        lambda: run_job(mesh_labels(labels, VOXEL, ORIGIN, config))))
    with tempfile.TemporaryDirectory() as tmp:
        _, wall_w, _ = timed(lambda: write_meshes(meshes, Path(tmp) / "m.glb"))
        size = (Path(tmp) / "m.glb").stat().st_size
    print(f"write GLB: {wall_w:.2f} s, {size / 1e6:.1f} MB")
    report, wall_m, _ = timed(lambda: run_job(measure(labels, VOXEL)))
    _, wall_c, _ = timed(lambda: run_job(mesh_labels(
        labels, VOXEL, ORIGIN, config, surface=report.surface)))
    print(f"with thickness colours: measure {wall_m:.2f} s + meshes {wall_c:.2f} s")
    n, wall_p, cpu_p = timed(lambda: peer(labels))
    print(f"peer (whole-volume marching cubes per class, no smoothing/decimation): "
          f"{wall_p:.2f} s wall, {cpu_p:.2f} s CPU, {n} faces")
    print(f"ratio peer / napari-cryoli meshes: {wall_p / med[0]:.2f}x wall")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
