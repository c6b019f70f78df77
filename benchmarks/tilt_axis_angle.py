"""How a dendrite's angle to the tilt axis moves a transferred model's results, and whether the
report reads that angle and warns (development seeds).

The transfer benchmark's model (fine-tuned on its training tomogram, whose dendrites lie along
the tilt axis) is applied to one-dendrite 7 d tomograms at ``--angles`` to the tilt axis. Per
angle: the angle the report reads on the truth and on the prediction (largest pieces), mean Dice
of Li, LiH and SEI, LiH share error, the SEI median minus the truth's over all points, over the
trusted points and over the points version 1 reports trusted (normals within 60° of the x-y
plane), and how many predictions got the note on dendrites across the tilt axis.

    python -m benchmarks.tilt_axis_angle [--angles 0 30 45 60 75 90] [--seeds 8001 8004]
        [--model M.pt | --steps 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.segment_transfer import CELLS, add_model_arguments, apply_model, predicted, scores


def _sei_medians(report, max_tilt_deg: float) -> dict:
    st = report.surface
    measured = st.measured

    def median(keep):
        keep = keep & measured
        return float(np.median(st.thickness_nm[keep])) if keep.any() else float("nan")

    return {"all": median(np.ones(len(st), bool)), "trusted": median(st.trusted(max_tilt_deg)),
            "version 1": median(st.normal_tilt_deg <= max_tilt_deg)}


def _apply(job: tuple[str, float, int]) -> dict:
    from napari_cryoli.jobs import run_job
    from napari_cryoli.measure.report import measure
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    path, angle, seed = job
    ph = run_job(simulate(PhantomSpec(seed=seed, **{**CELLS["7d, 1 dendrite"],
                                                    "axis_angle_deg": angle})))
    pred = predicted(path, ph.tomogram, ph.voxel_size_nm)
    got, true = (run_job(measure(x, ph.voxel_size_nm)) for x in (pred, ph.labels))
    t = got.settings.trusted_max_normal_tilt_deg
    sei_got, sei_true = _sei_medians(got, t), _sei_medians(true, t)
    volume = sum(d.volume_nm3 for d in got.dendrites) or 1.0
    largest = sorted(got.dendrites, key=lambda d: -d.volume_nm3)[:2]
    return {"angle": angle, "seed": seed, **scores(pred, ph.labels),
            "angle_truth": [d.tilt_axis_angle_deg for d in true.dendrites],
            "angle_pred": [(round(d.volume_nm3 / volume, 3), d.tilt_axis_angle_deg)
                           for d in largest],
            "pieces": len(got.dendrites),
            "sei_error": {k: sei_got[k] - sei_true["all"] for k in sei_got},
            "noted": any("from the tilt axis" in n for n in got.notes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--angles", type=float, nargs="+", default=[0, 30, 45, 60, 75, 90])
    ap.add_argument("--seeds", type=int, nargs=2, default=[8001, 8004], help="first, stop")
    add_model_arguments(ap)
    args = ap.parse_args()

    rows = apply_model(_apply, [(a, s) for a in args.angles for s in range(*args.seeds)], args)
    for r in rows:
        print(json.dumps(r, default=float), flush=True)
    print("| set angle | read on the truth | read on the prediction (largest pieces) | mean Dice "
          "| LiH share − truth | SEI median − truth (all / trusted / version 1) | noted |")
    print("|---|---|---|---|---|---|---|")
    for a in args.angles:
        rr = [r for r in rows if r["angle"] == a]
        dice = [r["mean"] for r in rr]
        share = [r["lih_share_error"] for r in rr]
        sei = {k: np.nanmean([r["sei_error"][k] for r in rr]) for k in rr[0]["sei_error"]}
        truth = ", ".join(f"{r['angle_truth'][0]:.1f}" if r["angle_truth"] else "—" for r in rr)
        pred = ", ".join(f"{r['angle_pred'][0][1]:.1f}" if r["angle_pred"] else "—" for r in rr)
        print(f"| {a:g}° | {truth} | {pred} | {np.mean(dice):.3f} ± {np.std(dice):.3f} | "
              f"{np.mean(share):+.3f} ± {np.std(share):.3f} | {sei['all']:+.1f} / "
              f"{sei['trusted']:+.1f} / {sei['version 1']:+.1f} nm | "
              f"{sum(r['noted'] for r in rr)} of {len(rr)} |")


if __name__ == "__main__":
    main()
