"""The per-dendrite table on predictions against the truth (development seeds).

The transfer benchmark's model (``--model``, or fine-tuned as that benchmark does) predicts
tomograms of each ``--cells`` kind; both the prediction and the truth are measured. Per cell: in
how many tomograms the prediction has as many dendrites holding 5 % or more of the dendrites'
volume as the truth has dendrites, and the error of each true dendrite's LiH fraction as read on
the predicted dendrite that overlaps it most (mean |error|, how many within ±0.03).

    python -m benchmarks.dendrite_table [--cells "7d, 1 dendrite" "7d, 3 dendrites"]
        [--seeds 8001 8006] [--model M.pt | --steps 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.segment_transfer import (
    CELLS,
    _simulate,
    add_model_arguments,
    apply_model,
    predicted,
)

#: Dendrites holding less of the dendrites' volume than this are not counted (specks, streaks).
COUNTED_SHARE = 0.05


def _apply(job: tuple[str, str, int]) -> dict:
    from napari_cryoli.jobs import run_job
    from napari_cryoli.measure.report import measure

    path, cell, seed = job
    _, _, phantom, error = _simulate((cell, seed, CELLS[cell]))
    if phantom is None:
        return {"cell": cell, "seed": seed, "error": error}
    image, truth, h, _ = phantom
    pred = predicted(path, image, h)
    got, true = (run_job(measure(x, h)) for x in (pred, truth))
    total = sum(d.volume_nm3 for d in got.dendrites) or 1.0
    ids, true_ids = got.dendrite_ids(), true.dendrite_ids()
    errors = []
    for d in true.dendrites:
        under = ids[true_ids == d.id]
        under = under[under > 0]
        if not under.size or d.lih_volume_fraction is None:
            continue
        match = next(r for r in got.dendrites if r.id == int(np.bincount(under).argmax()))
        if match.lih_volume_fraction is not None:
            errors.append(match.lih_volume_fraction - d.lih_volume_fraction)
    return {"cell": cell, "seed": seed, "true_count": len(true.dendrites),
            "count": sum(d.volume_nm3 >= COUNTED_SHARE * total for d in got.dendrites),
            "lih_fraction_errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", choices=list(CELLS),
                    default=["7d, 1 dendrite", "7d, 2 dendrites", "7d, 3 dendrites", "24h"])
    ap.add_argument("--seeds", type=int, nargs=2, default=[8001, 8006], help="first, stop")
    add_model_arguments(ap)
    args = ap.parse_args()

    jobs = [(c, s) for c in args.cells for s in range(*args.seeds)]
    rows = [r for r in apply_model(_apply, jobs, args) if "error" not in r]
    for r in rows:
        print(json.dumps(r), flush=True)
    print("| cell | dendrite count right | per-dendrite LiH fraction: mean abs error | within ±0.03 |")
    print("|---|---|---|---|")
    for cell in args.cells:
        rr = [r for r in rows if r["cell"] == cell]
        errors = np.abs([e for r in rr for e in r["lih_fraction_errors"]])
        print(f"| {cell} | {sum(r['count'] == r['true_count'] for r in rr)} of {len(rr)} | "
              f"{errors.mean():.3f} | {int((errors <= 0.03).sum())} of {errors.size} |")


if __name__ == "__main__":
    main()
