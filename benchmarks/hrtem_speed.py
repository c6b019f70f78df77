"""Speed of the HRTEM analysis on a 4096 x 4096 micrograph (two grains, 0.41 Å/pixel, 45 e/Å²).

Targets: FFT analysis (spectrum, reflections, phases) ≤ 2 s; local phase map (5 nm windows,
half overlapping) ≤ 30 s, on 2 CPU cores. The peer is a plain numpy implementation we wrote
ourselves of the spectrum stage only (``np.fft.fft2`` of the Hann-windowed image, complex128,
full plane, ``fftshift``, ``abs**2``; for the map, the same per window in a Python loop); both
sides are timed the same way (median of ``--repeats`` runs, interleaved).

    flock /tmp/cryoli-bench.lock python -m benchmarks.hrtem_speed [--size 4096] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from napari_cryoli.hrtem.lattice import analyse
from napari_cryoli.hrtem.phasemap import PhaseMapSettings, phase_map, window_size_px
from napari_cryoli.hrtem.phases import default_table
from napari_cryoli.hrtem.simulate import Grain, MicrographSpec, simulate_micrograph
from napari_cryoli.hrtem.spectrum import hann, power_spectrum, window_spectra
from napari_cryoli.jobs import run_job


def numpy_spectrum(image: np.ndarray) -> np.ndarray:
    a = image - image.mean()
    a = a * np.hanning(a.shape[0])[:, None] * np.hanning(a.shape[1])[None, :]
    return np.fft.fftshift(np.abs(np.fft.fft2(a)) ** 2)


def numpy_window_spectra(image: np.ndarray, w: int, step: int) -> int:
    win = np.hanning(w)[:, None] * np.hanning(w)[None, :]
    count = 0
    for y in range(0, image.shape[0] - w + 1, step):
        for x in range(0, image.shape[1] - w + 1, step):
            a = image[y: y + w, x: x + w]
            np.fft.fftshift(np.abs(np.fft.fft2((a - a.mean()) * win)) ** 2)
            count += 1
    return count


def our_window_spectra(image: np.ndarray, w: int, step: int) -> int:
    from numpy.lib.stride_tricks import sliding_window_view

    count = 0
    xs = np.arange(0, image.shape[1] - w + 1, step)
    for y in range(0, image.shape[0] - w + 1, step):
        strip = sliding_window_view(image[y: y + w], (w, w))[0]
        count += len(window_spectra(np.ascontiguousarray(strip[xs])))
    return count


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    table = default_table()
    spec = MicrographSpec(layout="two", grains=(Grain("Li", (0, 0, 1), 20.0),
                                                Grain("LiH", (0, 1, 1), 65.0)),
                          shape=(args.size, args.size), boundary_deg=30.0, seed=1)
    image = simulate_micrograph(spec, table).image
    px = spec.pixel_size_A
    hann(8)
    analyse(image[:256, :256], px, table=table)  # imports and caches out of the timings
    times: dict[str, list[float]] = {k: [] for k in (
        "ours: spectrum", "numpy: spectrum", "ours: spectrum + reflections + phases",
        "ours: window spectra", "numpy: window spectra", "ours: phase map")}
    w = window_size_px(5.0, px)
    step = w // 2
    for _ in range(args.repeats):
        times["ours: spectrum"].append(timed(power_spectrum, image, px)[0])
        times["numpy: spectrum"].append(timed(numpy_spectrum, image)[0])
        dt, result = timed(analyse, image, px, None, table)
        times["ours: spectrum + reflections + phases"].append(dt)
        times["ours: window spectra"].append(timed(our_window_spectra, image, w, step)[0])
        times["numpy: window spectra"].append(timed(numpy_window_spectra, image, w, step)[0])
        dt, pm = timed(lambda: run_job(phase_map(image, px, table, PhaseMapSettings())))
        times["ours: phase map"].append(dt)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"{args.size} x {args.size} pixels, {cores} cores, window {w} px, step {step} px, "
          f"{pm.grid.size} windows; phases found: "
          f"{', '.join(m.phase for m in result.identification.phases)}")
    print("| step | median (s) |\n|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} |")
    print(f"\nspectrum: numpy / ours = {med['numpy: spectrum'] / med['ours: spectrum']:.1f}x; "
          f"window spectra: numpy / ours = "
          f"{med['numpy: window spectra'] / med['ours: window spectra']:.1f}x")


if __name__ == "__main__":
    main()
