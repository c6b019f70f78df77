"""How often the calibration reads a tomogram's contrast the wrong way up, with no strokes.

For each development phantom (kinds of ``benchmarks.segment_transfer.CELLS`` and
``tomo.variation``'s varied physics), the polarity is read three ways: the histogram's tails
alone (the rule before thin dense layers were used), the band-pass skewness of those layers
(``calibration.shell_skew``), and the two as ``calibrate`` combines them (layers, falling back to the
histogram where their skewness is under ``MIN_SHELL_SKEW``). A wrong polarity turns the whole segmentation
over (mean Dice near 0.03). The seeds are development seeds: 8001- for the kinds, 960000- for the
varied physics; the transfer benchmark's test seeds are not used.

    python -m benchmarks.calibration_polarity [--cells "7d, 2 dendrites:8001:8100"]
        [--varied 960000:960100] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor

import numpy as np

#: Varied phantoms are drawn at this voxel size, and no larger than this.
VARIED_VOXEL_NM = 2.0
VARIED_MAX_VOXELS = 2_000_000


def _read(job: tuple[str, int]) -> dict:
    import torch

    from benchmarks.segment_transfer import CELLS
    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import calibration as cal
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate
    from napari_cryoli.tomo.variation import draw_spec

    torch.set_num_threads(1)
    kind, seed = job
    spec = (draw_spec(seed, VARIED_VOXEL_NM, max_voxels=VARIED_MAX_VOXELS) if kind == "varied"
            else PhantomSpec(seed=seed, **CELLS[kind]))
    ph = run_job(simulate(spec))
    image, h = ph.tomogram, np.asarray(ph.voxel_size_nm, float)
    smooth, _ = cal.analysis_copy(image, h)
    truth = bool(spec.inverted)
    skew = cal.shell_skew(image, h)
    return {"kind": kind, "seed": seed, "inverted": truth,
            "histogram_right": (cal._polarity(smooth, {}) > 0) == truth,
            "skew": round(skew, 3),
            "layers": ("undecided" if abs(skew) < cal.MIN_SHELL_SKEW
                       else "right" if (skew > 0) == truth else "wrong"),
            "calibrate_right": (cal._polarity(smooth, {}, lambda: skew) > 0) == truth}


def _range(text: str) -> tuple[str, range]:
    name, lo, hi = text.rsplit(":", 2)
    return name, range(int(lo), int(hi))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="*", default=["7d, 2 dendrites:8001:8100"],
                    help='"kind:first:stop" ranges of development seeds')
    ap.add_argument("--varied", default="960000:960100", help="first:stop varied seeds")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    jobs = [(name, s) for name, seeds in map(_range, args.cells) for s in seeds]
    if args.varied:
        jobs += [("varied", s) for s in _range("varied:" + args.varied)[1]]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(_read, jobs))
    for row in rows:
        print(json.dumps(row))
    for group in sorted({r["kind"] for r in rows}):
        part = [r for r in rows if r["kind"] == group]
        wrong = {key: [r["seed"] for r in part if not r[key]]
                 for key in ("histogram_right", "calibrate_right")}
        layers = {k: [r["seed"] for r in part if r["layers"] == k] for k in ("wrong", "undecided")}
        print(f"{group}: {len(part)} phantoms ({sum(r['inverted'] for r in part)} inverted); "
              f"histogram alone wrong on {len(wrong['histogram_right'])} "
              f"{wrong['histogram_right']}; layers wrong on {len(layers['wrong'])} "
              f"{layers['wrong']}, undecided on {len(layers['undecided'])} "
              f"{layers['undecided']}; combined wrong on {len(wrong['calibrate_right'])} "
              f"{wrong['calibrate_right']}")


if __name__ == "__main__":
    main()
