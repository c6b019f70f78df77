"""Dendrite phantom: generation time, projector speed against skimage's radon, truth accuracy.

1. Time to simulate the default sample and training-size tomograms (24 h and 7 d, several seeds).
2. The forward projector (the phantom's imaging) against ``skimage.transform.radon`` slice by
   slice on the same volume: speed ratio and agreement (radon is timed on a sample of slices and
   extrapolated; it needs square slices and shares the centre only for odd sizes, so the volume
   is 255 × 255 in x-z).
3. The design truths against the project's own measurement (``napari_cryoli.measure``) run on
   the true labels: SEI thickness on Li and LiH, LiH fraction, Cu size.
4. Pre-training phantoms (``tomo.variation.draw_spec`` then ``simulate``): time per phantom
   against the default sample timed the same way in the same run, and the metal share reached.

    flock /tmp/cryoli-bench.lock python -m benchmarks.phantom
    flock /tmp/cryoli-bench.lock python -m benchmarks.phantom --only drawn --drawn 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _simulate(spec):
    from napari_cryoli.jobs import run_job
    from napari_cryoli.tomo.phantom import simulate

    start = time.perf_counter()
    phantom = run_job(simulate(spec))
    return phantom, time.perf_counter() - start


def generation(seeds: int) -> None:
    from napari_cryoli.tomo.phantom import PhantomSpec

    _simulate(PhantomSpec(shape=(88, 16, 128)))  # warm-up: imports
    _, t = _simulate(PhantomSpec())
    print(f"default sample {PhantomSpec().shape} at 2 nm, 24h: {t:.1f} s")
    for aging in ("24h", "7d"):
        times, cnr = [], []
        for seed in range(seeds):
            spec = PhantomSpec(shape=(128, 256, 256), aging=aging, seed=seed, bent=seed % 2 == 1)
            phantom, t = _simulate(spec)
            times.append(t)
            cnr.append(phantom.truth["grey_values"]["cnr_lih_li"])
        print(
            f"(128, 256, 256) at 2 nm, {aging}, seeds 0-{seeds - 1}: "
            f"{', '.join(f'{t:.1f}' for t in times)} s; LiH/Li contrast-to-noise "
            f"{', '.join(f'{c:.2f}' for c in cnr)}"
        )


def projector(sample: int) -> None:
    from skimage.transform import radon

    from napari_cryoli.tomo.projection import project

    rng = np.random.default_rng(0)
    n, ny = 255, 256
    c = (n - 1) / 2
    z, x = np.mgrid[:n, :n] - c
    vol = np.zeros((n, ny, n), np.float32)
    for _ in range(40):  # disks of random radius, value and position, varying along y
        r = rng.uniform(5, 30)
        x0, z0 = rng.uniform(-70, 70, 2)
        disk = (np.hypot(x - x0, z - z0) <= r).astype(np.float32) * rng.uniform(0.2, 1.0)
        vol += disk[:, None, :] * np.linspace(rng.uniform(0.5, 1), 1, ny)[None, :, None]
    angles = np.arange(-60.0, 61.0, 1.0)
    project(vol[:, :4], angles)  # warm-up
    start = time.perf_counter()
    ours = project(vol, angles)
    t_ours = time.perf_counter() - start
    ys = np.linspace(0, ny - 1, sample).round().astype(int)
    per, diffs = [], []
    for yi in ys:
        start = time.perf_counter()
        # radon rotates the other way round; its sinogram is (detector, view)
        theirs = radon(vol[:, yi, :], theta=-angles, circle=False, preserve_range=True)
        per.append(time.perf_counter() - start)
        # radon pads the square slice to its diagonal; take the central n detector pixels
        off = (theirs.shape[0] - n) // 2
        diffs.append(np.abs(ours[:, yi, :] - theirs[off : off + n].T))
    t_theirs = float(np.mean(per)) * ny
    diffs = np.stack(diffs)
    print(
        f"projection of {vol.shape} at 121 views: ours {t_ours:.2f} s, radon {np.mean(per):.3f} "
        f"s per slice -> {t_theirs:.1f} s ({sample} slices extrapolated): {t_theirs / t_ours:.1f}x"
    )
    print(
        f"projector agreement (line integrals up to {np.abs(ours).max():.0f}): mean |difference| "
        f"{diffs.mean():.3f}, 99th percentile {np.percentile(diffs, 99):.3f}"
    )


def truths(seeds: int) -> None:
    from napari_cryoli.jobs import run_job
    from napari_cryoli.measure.report import measure
    from napari_cryoli.tomo.phantom import PhantomSpec, build_specimen

    for aging, t_lih in (("24h", None), ("7d", None), ("24h", 18.0)):
        for seed in range(seeds):
            spec = PhantomSpec(
                shape=(112, 192, 192), aging=aging, seed=seed, sei_thickness_on_lih_nm=t_lih
            )
            specimen = build_specimen(spec, np.random.default_rng(seed))
            report = run_job(measure(specimen.labels, spec.voxel_size_nm)).to_dict()
            truth = specimen.truth
            sei, design = report["sei_thickness_nm"], truth["sei_thickness_nm"]
            cu_t = truth["cu_particles"][0]["equivalent_diameter_nm"]
            cu_m = report["cu_particles"][0]["equivalent_diameter_nm"]
            print(
                f"{aging} seed {seed}: SEI on Li design {design['nominal_on_Li']:.1f} / measured "
                f"median {sei['on_Li']['median']:.2f} nm; on LiH {design['nominal_on_LiH']:.1f} "
                f"/ {sei['on_LiH']['median']:.2f} nm; LiH fraction {truth['lih_volume_fraction']:.4f}"
                f" / {report['lih_volume_fraction']:.4f}; Cu diameter {cu_t:.2f} / {cu_m:.2f} nm"
            )


def drawn(n: int, first_seed: int = 100_000) -> None:
    from napari_cryoli.tomo.phantom import PhantomSpec
    from napari_cryoli.tomo.variation import describe, draw_spec

    _simulate(PhantomSpec(shape=(88, 16, 128)))  # warm-up: imports
    default = [_simulate(PhantomSpec(seed=s))[1] for s in range(3)]
    times, metal, voxels = [], [], []
    for seed in range(first_seed, first_seed + n):
        start = time.perf_counter()
        spec = draw_spec(seed)
        phantom, _ = _simulate(spec)
        times.append(time.perf_counter() - start)
        metal.append(phantom.truth["field"]["metal_volume_fraction"])
        voxels.append(describe(spec)["voxels"])
    print(
        f"drawn phantoms, seeds {first_seed}-{first_seed + n - 1} at 2 nm "
        f"({np.mean(voxels) / 1e6:.2f} M voxels on average): {np.mean(times):.2f} ± "
        f"{np.std(times):.2f} s per phantom (draw + simulate); default sample "
        f"{PhantomSpec().shape}, seeds 0-2: {np.mean(default):.2f} ± {np.std(default):.2f} s; "
        f"ratio {np.mean(times) / np.mean(default):.2f}; metal share of the field "
        f"{min(metal):.3f}-{max(metal):.3f} (median {np.median(metal):.3f})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=16, help="slices radon projects")
    parser.add_argument("--drawn", type=int, default=10, help="pre-training phantoms to time")
    parser.add_argument("--only", choices=["generation", "projector", "truths", "drawn"])
    args = parser.parse_args(argv)
    parts = {
        "generation": lambda: generation(args.seeds),
        "projector": lambda: projector(args.sample),
        "truths": lambda: truths(args.seeds),
        "drawn": lambda: drawn(args.drawn),
    }
    for name, run in parts.items():
        if args.only in (None, name):
            run()


if __name__ == "__main__":
    main()
