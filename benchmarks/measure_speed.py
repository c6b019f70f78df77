"""Speed (and thickness accuracy) of ``measure`` on a 512x512x256 label volume.

The volume holds eight dendrites (capsules and bent tubes, radii 18-40 nm) with LiH cores, Cu
grains and SEI shells of known thickness (10 or 14 nm, 30 nm on one), at 1.5 x 1 x 1 nm voxels.
The peer is the straightforward scipy implementation of the same measurement: full-volume exact
distance transforms (thickness = distance from a metal-surface voxel to the nearest outside voxel
minus one voxel; watershed of the solid's distance map for instances), full-resolution skeletons
for lengths, and a distance transform of the LiH complement for the Cu-to-LiH gaps.

    flock /tmp/cryoli-bench.lock python -m benchmarks.measure_speed [--size X Y Z] [--repeats 3]
        [--no-peer]

With ``--accuracy`` it prints instead the thickness bias on analytic shells (spheres and oblique
cylinders, shells of 4-60 nm, isotropic and anisotropic voxels) for napari-cryoli and the peer.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np

from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import measure

VOXEL = (1.5, 1.0, 1.0)


def _segment_distance(z, y, x, a, b):
    ab = b - a
    t = ((z - a[0]) * ab[0] + (y - a[1]) * ab[1] + (x - a[2]) * ab[2]) / float(ab @ ab)
    t = np.clip(t, 0, 1)
    return np.sqrt(
        (z - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2 + (x - a[2] - t * ab[2]) ** 2
    ), t


def build_volume(size_xyz=(512, 512, 256), seed: int = 0):
    """Labels (z, y, x), the design dendrite (1..8) painted at each voxel, and each design
    dendrite's shell thickness (nm)."""
    nx, ny, nz = size_xyz
    shape = (nz, ny, nx)
    ext = np.array(shape) * VOXEL
    rng = np.random.default_rng(seed)
    labels = np.full(shape, BACKGROUND, dtype=np.uint8)
    owner = np.zeros(shape, dtype=np.uint8)
    shells = []
    for k in range(8):
        radius = rng.uniform(18, 40)
        shell = 30.0 if k == 0 else float(rng.choice([10.0, 14.0]))
        zc = rng.uniform(0.3, 0.7) * ext[0]
        a = np.array([zc, rng.uniform(0.1, 0.9) * ext[1], rng.uniform(0.05, 0.3) * ext[2]])
        b = np.array(
            [
                zc + rng.uniform(-30, 30),
                rng.uniform(0.1, 0.9) * ext[1],
                rng.uniform(0.7, 0.95) * ext[2],
            ]
        )
        reach = radius + shell + 2
        lo = np.maximum(np.floor((np.minimum(a, b) - reach) / VOXEL).astype(int), 0)
        hi = np.minimum(np.ceil((np.maximum(a, b) + reach) / VOXEL).astype(int) + 1, shape)
        box = tuple(slice(l, h) for l, h in zip(lo, hi))
        z, y, x = (
            np.arange(l, h, dtype=np.float32).reshape([-1 if i == j else 1 for j in range(3)])
            * VOXEL[i]
            for i, (l, h) in enumerate(zip(lo, hi))
        )
        d, t = _segment_distance(z, y, x, a, b)
        view = labels[box]
        free = view == BACKGROUND  # later dendrites do not overwrite earlier ones
        view[free & (d <= radius + shell)] = SEI
        metal = d <= radius
        view[metal] = LI
        owner[box][metal] = k + 1
        # LiH: the core of the middle part of the dendrite, as in aged samples.
        view[metal & (d <= 0.6 * radius) & (t > 0.3) & (t < 0.7)] = LIH
        for s in rng.uniform(0.15, 0.85, size=2):
            c = a + s * (b - a)
            r = rng.uniform(4, 7)
            cu = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r**2
            view[cu & metal] = CU
        shells.append(shell)
    return labels, owner, shells


def peer(labels: np.ndarray, voxel) -> dict:
    """The same measurement written the straightforward way with scipy and scikit-image."""
    from scipy import ndimage as ndi
    from skimage.morphology import skeletonize
    from skimage.segmentation import watershed

    h = np.asarray(voxel)
    timings = {}
    t0 = time.perf_counter()
    counts = np.bincount(labels.ravel(), minlength=256)
    solid = np.isin(labels, (LI, LIH, CU))
    filled = solid | (labels == SEI)
    timings["volumes"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    dist_solid = ndi.distance_transform_edt(solid, sampling=h)
    comps, n = ndi.label(solid, structure=np.ones((3, 3, 3)))
    peaks = ndi.maximum_filter(dist_solid, size=9) == dist_solid
    markers, _ = ndi.label(peaks & (dist_solid > 4))
    watershed(-dist_solid, markers, mask=solid)
    timings["instances"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    metal = np.isin(labels, (LI, LIH))
    surface = metal & ~ndi.binary_erosion(solid, border_value=1)
    dist_out = ndi.distance_transform_edt(filled, sampling=h)
    covered = surface & ndi.binary_dilation(labels == SEI)
    thickness = dist_out[covered] - h.min()
    points = np.argwhere(covered)
    timings["thickness"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    lengths = []
    for box in ndi.find_objects(comps):
        skel = skeletonize(solid[box])
        lengths.append(int(skel.sum()))
        _ = np.median(2 * dist_solid[box][skel > 0]) if skel.any() else 0
    timings["skeletons"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cu, n_cu = ndi.label(labels == CU, structure=np.ones((3, 3, 3)))
    ndi.center_of_mass(cu > 0, cu, range(1, n_cu + 1))
    gap = ndi.distance_transform_edt(labels != LIH, sampling=h)
    ndi.minimum(gap, cu, range(1, n_cu + 1))
    timings["particles"] = time.perf_counter() - t0
    timings["total"] = sum(timings.values())
    return {"timings": timings, "thickness": thickness, "points": points, "counts": counts, "n": n}


def peer_thickness(labels: np.ndarray, voxel) -> np.ndarray:
    """The peer's thickness: distance from each metal voxel next to SEI to the nearest voxel that
    is neither metal, Cu nor SEI, less one voxel (the two half voxels to the interfaces)."""
    from scipy import ndimage as ndi

    h = np.asarray(voxel)
    filled = np.isin(labels, (LI, LIH, CU, SEI))
    dist = ndi.distance_transform_edt(np.pad(filled, 1, mode="edge"), sampling=h)[1:-1, 1:-1, 1:-1]
    touches = ndi.binary_dilation(labels == SEI)
    return dist[np.isin(labels, (LI, LIH)) & touches] - h.min()


def accuracy() -> None:
    """Mean thickness error (nm) on analytic shells, ours and the peer's, per voxel size."""
    rng = np.random.default_rng(0)
    radius = 24.0
    print("| shape | voxel (nm) | shell (nm) | napari-cryoli bias | peer bias | quarter voxel |")
    print("|---|---|---|---|---|---|")
    for voxel in ((1.0, 1.0, 1.0), (1.6, 1.0, 0.8)):
        for shell in (4.0, 10.0, 20.0, 60.0):
            for kind in ("sphere", "cylinder"):
                extent = 2 * (radius + shell) + 10
                shape = tuple(int(np.ceil(extent / hh)) for hh in voxel)
                centre = np.array([(n - 1) * hh / 2 for n, hh in zip(shape, voxel)])
                centre += rng.uniform(-0.5, 0.5, 3)
                z, y, x = (
                    np.arange(n).reshape([-1 if i == j else 1 for j in range(3)]) * hh
                    for i, (n, hh) in enumerate(zip(shape, voxel))
                )
                if kind == "sphere":
                    d = np.sqrt((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2)
                else:
                    u = np.array([0.2, 0.35, 1.0]) / np.linalg.norm([0.2, 0.35, 1.0])
                    a = centre - 500 * u
                    d, _ = _segment_distance(z, y, x, a, centre + 500 * u)
                labels = np.full(shape, BACKGROUND, np.uint8)
                labels[d <= radius + shell] = SEI
                labels[d <= radius] = LI
                rep = run_job(measure(labels, voxel))
                st = rep.surface
                ours = float(np.nanmean(st.thickness_nm[st.covered]) - shell)
                theirs = float(np.mean(peer_thickness(labels, voxel)) - shell)
                print(
                    f"| {kind} | {voxel} | {shell:g} | {ours:+.3f} | {theirs:+.3f} | "
                    f"{min(voxel) / 4:.2f} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, nargs=3, default=(512, 512, 256), metavar=("X", "Y", "Z")
    )
    parser.add_argument("--no-peer", action="store_true", help="time only napari-cryoli")
    parser.add_argument("--repeats", type=int, default=3, help="runs of napari-cryoli (median)")
    parser.add_argument(
        "--accuracy", action="store_true", help="thickness bias on analytic shells"
    )
    args = parser.parse_args()
    if args.accuracy:
        accuracy()
        return
    labels, owner, shells = build_volume(tuple(args.size))
    print(
        f"volume {labels.shape} (z, y, x) at {VOXEL} nm, {labels.size / 1e6:.0f} M voxels; "
        f"shells {shells} nm"
    )

    walls, cpus = [], []
    for r in range(args.repeats):
        stages = []
        load = os.getloadavg()[0]
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        report = run_job(
            measure(labels, VOXEL),
            lambda p, t0=t0, stages=stages: stages.append((time.perf_counter() - t0, p.message)),
        )
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - cpu0)
        print(
            f"run {r + 1} ({'cold' if r == 0 else 'warm'} imports, load average {load:.1f}): "
            f"{walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU"
        )
        prev = 0.0
        for t, msg in stages:
            if msg in (
                "phase volumes",
                "SEI thickness",
                "dendrite shapes",
                "done",
            ) or msg.endswith(" dendrites"):
                print(f"  {t - prev:6.2f} s  {msg}")
                prev = t
    ours, cpu = float(np.median(walls)), float(np.median(cpus))
    tracemalloc.start()
    run_job(measure(labels, VOXEL))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"peak memory of one run (numpy and Python allocations, untimed run): {peak / 2**20:.0f} MiB"
        f" for a {labels.nbytes / 2**20:.0f} MiB label volume"
    )
    sei = report.sei_thickness_nm
    st = report.surface
    truth = _truth_per_point(st.points_zyx, owner, shells, VOXEL)
    ok = st.measured & np.isfinite(truth)
    bias = float(np.mean(st.thickness_nm[ok] - truth[ok])) if ok.any() else float("nan")
    print(
        f"napari-cryoli, median of {len(walls)}: {ours:.2f} s wall, {cpu:.2f} s CPU; "
        f"{len(report.dendrites)} dendrites, "
        f"{len(report.cu_particles)} Cu particles, {sei.n_points} thickness points, "
        f"thickness bias {bias:+.3f} nm"
    )
    if args.no_peer:
        return
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    result = peer(labels, VOXEL)
    theirs = time.perf_counter() - t0
    their_cpu = time.process_time() - cpu0
    print(f"peer: {theirs:.1f} s wall, {their_cpu:.1f} s CPU")
    print("peer (scipy): " + ", ".join(f"{k} {v:.1f} s" for k, v in result["timings"].items()))
    truth = _truth_per_point(result["points"], owner, shells, VOXEL)
    ok = np.isfinite(truth)
    peer_bias = np.mean(result["thickness"][ok] - truth[ok]) if ok.any() else np.nan
    print(
        f"peer thickness bias {peer_bias:+.3f} nm over {int(ok.sum())} points away from contacts"
    )
    print(
        f"ratio peer / napari-cryoli: {theirs / ours:.1f}x wall ({theirs:.1f} s vs {ours:.2f} s), "
        f"{their_cpu / cpu:.1f}x CPU"
    )


def _truth_per_point(points_zyx, owner, shells, voxel) -> np.ndarray:
    """The design shell of the dendrite under each surface voxel, where that dendrite is alone.

    Dendrites that touch or cross have no single true shell near the contact, so points within
    60 nm of another dendrite's surface are left out of the bias.
    """
    from scipy.spatial import cKDTree

    design = owner[tuple(np.asarray(points_zyx).T)].astype(int)
    points_nm = np.asarray(points_zyx) * np.asarray(voxel)
    truth = np.where(design > 0, np.asarray([np.nan, *shells])[design], np.nan)
    for i in np.unique(design[design > 0]):
        mine = design == i
        others = ~mine & (design > 0)
        if others.any():
            near, _ = cKDTree(points_nm[others]).query(
                points_nm[mine], k=1, distance_upper_bound=60
            )
            truth[np.flatnonzero(mine)[near < 60]] = np.nan
    return truth


if __name__ == "__main__":
    main()
