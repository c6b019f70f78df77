"""A lead, not a feature: split each predicted dendrite's metal by its own grey levels.

Within one tomogram, true Li reads at different grey levels from dendrite to dendrite (on the
3-dendrite phantoms by up to 0.09, as much as the Li/LiH contrast), so one Li/LiH line for the
whole tomogram calls one dendrite mostly LiH and the next mostly Li. Here each dendrite of the
transfer model's prediction (holding 5 % or more of the dendrites' volume) is split on its own:
the metal's grey levels smoothed within the metal (Gaussian, ``--sigma`` voxels), Otsu's threshold
over the metal two voxels in from its surface, the darker side called LiH. Printed per dendrite:
the true LiH fraction of its voxels, the network's, the own split's, the two classes' means in units of the
calibration's vacuum-to-Li step, and Otsu's separability (between-class over total variance),
which a gate for dendrites with one phase only (fresh) would need. Development seeds only.

    python -m benchmarks.own_grey_split [--cells "7d, 3 dendrites" fresh] [--seeds 8001 8006]
        [--sigma 3] [--model M.pt | --steps 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from benchmarks.segment_transfer import CELLS, _simulate, add_model_arguments, model_path


def _apply(job: tuple[str, str, int, float]) -> list[dict]:
    import torch
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    from napari_cryoli.classes import LI, LIH
    from napari_cryoli.jobs import run_job
    from napari_cryoli.measure.report import measure
    from napari_cryoli.segment import PredictConfig, predict
    from napari_cryoli.segment.calibration import calibrate
    from napari_cryoli.segment.model import SegmentationModel

    torch.set_num_threads(1)
    path, cell, seed, sigma = job
    _, _, phantom, error = _simulate((cell, seed, CELLS[cell]))
    if phantom is None:
        return [{"cell": cell, "seed": seed, "error": error}]
    image, truth, h, _ = phantom
    pred = run_job(predict(image, SegmentationModel.load(path, device="cpu"),
                           PredictConfig(uncertainty=False), voxel_size_nm=h)).labels
    report = run_job(measure(pred, h))
    ids = report.dendrite_ids()
    c = calibrate(image, h)
    step = c.vacuum - c.li  # grey levels per vacuum-to-Li step (dense is dark)
    metal = np.isin(pred, (LI, LIH))
    inside = ndimage.binary_erosion(metal, iterations=2)
    weight = ndimage.gaussian_filter(metal.astype(np.float32), sigma)
    grey = ndimage.gaussian_filter(np.where(metal, image, 0).astype(np.float32), sigma)
    grey /= np.maximum(weight, 1e-3)
    total = sum(d.volume_nm3 for d in report.dendrites) or 1.0
    rows = []
    for d in report.dendrites:
        if d.volume_nm3 < 0.05 * total:
            continue
        mine = (ids == d.id) & metal
        values = grey[mine & inside]
        if values.size < 100:
            continue
        threshold = threshold_otsu(values)
        dark, light = values[values < threshold], values[values >= threshold]
        separability = dark.size * light.size / values.size**2 * (light.mean() - dark.mean())**2
        true_metal = np.isin(truth[mine], (LI, LIH)).sum()
        rows.append({
            "cell": cell, "seed": seed, "dendrite": d.id,
            "truth": float((truth[mine] == LIH).sum() / max(true_metal, 1)),
            "network": d.lih_volume_fraction,
            "own_split": float((grey[mine] < threshold).mean()),
            "means_in_steps": [round(float((c.vacuum - m) / step), 3)
                               for m in (light.mean(), dark.mean())],
            "separability": round(float(separability / values.var()), 3),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", choices=list(CELLS),
                    default=["7d, 3 dendrites", "7d, 2 dendrites", "7d, 1 dendrite", "24h",
                             "fresh"])
    ap.add_argument("--seeds", type=int, nargs=2, default=[8001, 8006], help="first, stop")
    ap.add_argument("--sigma", type=float, default=3.0, help="smoothing within the metal, voxels")
    add_model_arguments(ap)
    args = ap.parse_args()

    path = model_path(args)
    jobs = [(path, c, s, args.sigma) for c in args.cells for s in range(*args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = [r for rs in pool.map(_apply, jobs) for r in rs if "error" not in r]
    for r in rows:
        print(json.dumps(r), flush=True)
    print("| cell | dendrites | network: mean abs error | own split: mean abs error | "
          "own split within ±0.03 | separability (min–max) |")
    print("|---|---|---|---|---|---|")
    for cell in args.cells:
        rr = [r for r in rows if r["cell"] == cell]
        if not rr:
            continue
        net = np.abs([r["network"] - r["truth"] for r in rr])
        own = np.abs([r["own_split"] - r["truth"] for r in rr])
        sep = [r["separability"] for r in rr]
        print(f"| {cell} | {len(rr)} | {net.mean():.3f} | {own.mean():.3f} | "
              f"{int((own <= 0.03).sum())} of {len(rr)} | {min(sep):.2f}–{max(sep):.2f} |")


if __name__ == "__main__":
    main()
