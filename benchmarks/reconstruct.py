"""Weighted back-projection speed and agreement against skimage's iradon, slice by slice.

121 tilts (-60..+60°, 1° steps) of 512 × 512 pixels reconstructed to 512 × 512 × 256 voxels
(z × y × x = 256 × 512 × 512) on the CPU. The tilt series is the exact projection of Gaussian
blobs (analytic, so no projector is involved). iradon reconstructs one slice at a time on one
core; it is timed on ``--sample`` evenly spaced slices and extrapolated to all 512, in
``--rounds`` rounds that alternate with ours (the machine is shared; ratios are per round). Agreement is
checked on the same sampled slices with one column and one z row fewer (511 wide, 255 thick): with
odd sizes iradon's centre (n // 2) is the geometric centre used here, so both grids coincide.
iradon normalises for views spread over 180°; its values are rescaled by the 121° actually
covered. The comparison covers the voxels every view sees: beyond the detector iradon reads
zeros where this package reads the row's tapered continuation (as IMOD fills with the mean),
a deliberate difference; the blobs also keep clear of the detector edges, where iradon pads rows
with zeros and this package with a taper back to the row's start.

    flock /tmp/cryoli-bench.lock python -m benchmarks.reconstruct
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from dataclasses import replace

import numpy as np

N_VIEWS, N_Y, N_X, THICKNESS = 121, 512, 512, 256


def gaussian_tilt_series(
    angles_deg: np.ndarray, n_y: int, n_x: int, thickness: int, n_blobs: int, seed: int = 0
) -> np.ndarray:
    """Exact projections of random Gaussian blobs inside a slab (view, y, x), float32."""
    from napari_cryoli.tomo import geometry

    rng = np.random.default_rng(seed)
    u = np.arange(n_x) - geometry.detector_centre(n_x)
    y = np.arange(n_y) - geometry.detector_centre(n_y)
    a = np.deg2rad(angles_deg)[:, None]
    out = np.zeros((len(angles_deg), n_y, n_x), np.float32)
    for _ in range(n_blobs):
        sigma = rng.uniform(2.0, 12.0)
        x0 = rng.uniform(-0.3, 0.3) * n_x  # projections vanish at the detector edges
        z0 = rng.uniform(-0.35, 0.35) * thickness
        y0 = rng.uniform(-0.45, 0.45) * n_y
        amp = rng.uniform(0.2, 1.0)
        along_u = np.exp(-((u[None, :] - (x0 * np.cos(a) + z0 * np.sin(a))) ** 2) / (2 * sigma**2))
        along_y = np.exp(-((y - y0) ** 2) / (2 * sigma**2))
        scale = np.float32(amp * np.sqrt(2 * np.pi) * sigma)
        out += scale * (along_u[:, None, :] * along_y[None, :, None]).astype(np.float32)
    return out


def main(argv: list[str] | None = None) -> None:
    import torch
    from skimage.transform import iradon

    from napari_cryoli.jobs import run_job
    from napari_cryoli.tomo.wbp import UNFILTERED, WBPSettings, reconstruct

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=16, help="slices iradon reconstructs")
    parser.add_argument("--blobs", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    angles = np.arange(-60.0, 61.0, 1.0)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, torch {torch.__version__}"
    )
    tilts = gaussian_tilt_series(angles, N_Y, N_X, THICKNESS, args.blobs)
    print(f"tilt series {tilts.shape} -> volume ({THICKNESS}, {N_Y}, {N_X})")

    settings = replace(UNFILTERED, thickness=THICKNESS, device="cpu")
    run_job(reconstruct(tilts[:, :8], angles, settings))  # warm-up: imports, thread pool
    ys = np.linspace(0, N_Y - 1, args.sample).round().astype(int)
    # The machine is shared: alternate the two, round by round, and compare within each round.
    ours, theirs = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        volume = run_job(reconstruct(tilts, angles, settings)).volume
        ours.append(time.perf_counter() - start)
        per_slice = []
        for yi in ys:
            start = time.perf_counter()
            iradon(
                tilts[:, yi, :].T, theta=-angles, output_size=N_X, filter_name="ramp", circle=False
            )
            per_slice.append(time.perf_counter() - start)
        theirs.append(float(np.mean(per_slice)) * N_Y)
    start = time.perf_counter()
    run_job(reconstruct(tilts, angles, replace(WBPSettings(), thickness=THICKNESS, device="cpu")))
    ours_imod = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratios = np.array(theirs) / np.array(ours)
    print(f"ours (plain ramp), per round: {', '.join(f'{t:.2f}' for t in ours)} s")
    print(f"ours (IMOD radial filter 0.35/0.035): {ours_imod:.2f} s")
    print(
        f"iradon, {args.sample} slices extrapolated to {N_Y}, per round: "
        f"{', '.join(f'{t:.1f}' for t in theirs)} s"
    )
    print(
        f"speed-up per round: {', '.join(f'{r:.1f}x' for r in ratios)}; median "
        f"{np.median(ratios):.1f}x (iradon on 1 core; {np.median(ratios) / 2:.1f}x against "
        f"iradon ideally split over both cores)"
    )
    print(
        f"peak resident memory of the process: {peak_mb:.0f} MB "
        f"(volume {volume.nbytes / 2**20:.0f} MB, tilt series {tilts.nbytes / 2**20:.0f} MB)"
    )

    # Agreement on odd sizes, where both grids share their centre.
    odd = tilts[:, ys, : N_X - 1]
    ours_odd = run_job(reconstruct(odd, angles, replace(settings, thickness=THICKNESS - 1))).volume
    covered = len(angles) / 180.0  # iradon assumes the views span 180°
    x = np.arange(N_X - 1) - (N_X - 2) / 2
    z = np.arange(THICKNESS - 1) - (THICKNESS - 2) / 2
    a = np.deg2rad(angles)[:, None, None]
    seen = np.all(np.abs(x * np.cos(a) + z[:, None] * np.sin(a)) <= (N_X - 2) / 2, axis=0)
    diffs, scale = [], []
    for k in range(len(ys)):
        full = iradon(
            odd[:, k, :].T, theta=-angles, output_size=N_X - 1, filter_name="ramp", circle=False
        )
        z0 = (N_X - 1) // 2 - (THICKNESS - 1) // 2
        theirs_slice = full[z0 : z0 + THICKNESS - 1] * covered
        diffs.append(np.abs(ours_odd[:, k, :] - theirs_slice)[seen])
        scale.append(np.abs(theirs_slice).max())
    diffs = np.concatenate(diffs)
    print(
        f"agreement on {len(ys)} slices ({THICKNESS - 1} x {N_X - 1}, the {seen.mean():.0%} of "
        f"each slice that every view sees): max |difference| {diffs.max():.2e}, mean "
        f"{diffs.mean():.2e}; largest value {max(scale):.3f} (relative max "
        f"{diffs.max() / max(scale):.1e})"
    )


if __name__ == "__main__":
    main()
