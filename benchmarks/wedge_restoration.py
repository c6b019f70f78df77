"""What missing-wedge restoration does to each dendrite's grey levels, read with the true labels.

For each seed of each ``--cells`` entry (development seeds; the transfer benchmark's test seeds
choose nothing) the phantom is calibrated as the product does it, restored
(``tomo.restoration``) at each ``--working-nm``, and read inside every dendrite's true Li and LiH
(voxels 3 or more from the metal's edge): each dendrite's Li level, the spread of those levels
within the field relative to their mean, and LiH over Li within a dendrite. Also the Li level
the calibration reads on the restored volume against the true one, and the restoration's time
(one run each, single-threaded, 2 cores shared by 2 workers).

    python -m benchmarks.wedge_restoration [--cells "fresh, 3 dendrites" "7d, 3 dendrites"]
        [--seeds 8021 8022 ...] [--working-nm 16 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from benchmarks.segment_transfer import CELLS


def _levels(volume: np.ndarray, labels: np.ndarray, dendrites: list[np.ndarray]) -> dict:
    from napari_cryoli.classes import LI, LIH

    li, ratio = [], []
    for inner in dendrites:
        a, b = inner & (labels == LI), inner & (labels == LIH)
        if a.sum() < 200:
            continue
        li.append(float(volume[a].mean()))
        if b.sum() >= 200:
            ratio.append(float(volume[b].mean()) / li[-1])
    return {"li": [round(v, 3) for v in li],
            "li_spread": round((max(li) - min(li)) / float(np.mean(li)), 3) if li else None,
            "lih_over_li": [round(v, 3) for v in ratio]}


def one(job: tuple[str, int, tuple[float, ...]]) -> dict:
    import time

    import torch
    from scipy import ndimage

    from benchmarks.segment_transfer import _simulate
    from napari_cryoli.classes import LI, LIH
    from napari_cryoli.measure.dendrites import instances
    from napari_cryoli.segment.calibration import calibrate
    from napari_cryoli.tomo.phantom import PhantomSpec
    from napari_cryoli.tomo.restoration import RestorationSettings, restore_missing_wedge

    torch.set_num_threads(1)
    cell, seed, working = job
    _, _, phantom, error = _simulate((cell, seed, CELLS[cell]))
    if phantom is None:
        return {"cell": cell, "seed": seed, "error": error}
    image, labels, h, _ = phantom
    angles = PhantomSpec(seed=seed, **CELLS[cell]).angles_deg
    u = calibrate(image, h).in_li_units(image).astype(np.float32)
    metal = np.isin(labels, (LI, LIH))
    ids, n = instances(metal, h, 1000.0)
    inner = ndimage.binary_erosion(metal, iterations=3)
    dendrites = [inner & (ids == i) for i in range(1, n + 1) if (ids == i).sum() >= 2000]
    row = {"cell": cell, "seed": seed, "raw": _levels(u, labels, dendrites)}
    true_li = inner & (labels == LI)
    for nm in working:
        t0 = time.perf_counter()
        r = restore_missing_wedge(u, h, angles, RestorationSettings(working_nm=nm, device="cpu"))
        restored = r.sections(u)
        seconds = time.perf_counter() - t0
        c = calibrate(restored, h)
        read = (c.li - c.vacuum) / float(restored[true_li].mean()) if true_li.any() else None
        row[f"{nm:g} nm"] = {**_levels(restored, labels, dendrites), "seconds": round(seconds, 2),
                             "calibrated_li_over_true": None if read is None else round(read, 3),
                             "calibration_lih_share": c.lih_share}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=["fresh, 3 dendrites", "7d, 3 dendrites"],
                    choices=list(CELLS))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(8021, 8026)))
    ap.add_argument("--working-nm", type=float, nargs="+", default=[16.0, 8.0])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    jobs = [(c, s, tuple(args.working_nm)) for c in args.cells for s in args.seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(one, jobs))
    for row in rows:
        print(json.dumps(row), flush=True)
    for cell in args.cells:
        rs = [r for r in rows if r["cell"] == cell and "error" not in r]
        for key in ["raw", *(f"{nm:g} nm" for nm in args.working_nm)]:
            spread = [r[key]["li_spread"] for r in rs if r[key]["li_spread"] is not None]
            ratio = [v for r in rs for v in r[key]["lih_over_li"]]
            read = [r[key].get("calibrated_li_over_true") for r in rs]
            line = {"cell": cell, "version": key,
                    "li_spread": f"{np.mean(spread):.3f} ± {np.std(spread):.3f}"}
            if ratio:
                line["lih_over_li"] = f"{np.mean(ratio):.3f} ± {np.std(ratio):.3f}"
            if key != "raw":
                line["calibrated_li_over_true"] = read
                line["seconds"] = round(float(np.mean([r[key]["seconds"] for r in rs])), 2)
            print(json.dumps(line, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
