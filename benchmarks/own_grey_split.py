"""A lead, not built: split each predicted dendrite's metal on its own grey levels.

Within one tomogram the reconstruction gives the same phase different grey levels from dendrite
to dendrite (on simulated 3-dendrite fields, true Li from -0.17 to -0.26 where LiH sat at -0.27
to -0.35), so one Li/LiH boundary for the whole tomogram, which is what a network learns, calls
one dendrite mostly LiH and the next mostly Li while the whole tomogram's share stays about
right. Here each dendrite of the transfer model's prediction is split again on its own, in a
tomogram holding at least ``MIN_DENDRITES`` dendrites: grey levels smoothed within the metal
(``SIGMA_NM``), Otsu's threshold over the metal at least ``INNER_DEPTH_NM`` in from its surface,
the denser side LiH; each metal voxel is decided on the grey level of the metal that deep
around it (the outer metal looks dense in the SEI's blur). A one-phase gate (the two classes
``GATE_LI_UNITS`` apart on the calibrated scale, Otsu's separability at least
``MIN_SEPARABILITY``) is meant to leave LiH-free dendrites alone.

It is not built: it makes per-dendrite LiH right in aged fields of several dendrites, but on
fresh fields of three dendrites the gate lets LiH-free dendrites through (a unimodal Gaussian
already has separability 2/pi) and the network there calls whole LiH-free dendrites LiH, which no
split of a dendrite can undo (docs/segmentation.md, "Each dendrite split on its own grey
levels"). Dendrites called ``ONE_POPULATION_LIH`` LiH or more whose grey levels fail the
gate are counted as "one population" (a warning that was tried and not built either). Printed
per tomogram: Dice and LiH share, network and split; per dendrite (holding 5 %
or more of the dendrites' volume): the true LiH fraction of its voxels, the network's, the
split's, and the gate's two numbers. Development seeds only.

    python -m benchmarks.own_grey_split [--cells "7d, 3 dendrites" fresh] [--seeds 8001 8006]
        [--model M.pt | --steps 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.segment_transfer import (
    CELLS,
    _simulate,
    add_model_arguments,
    apply_model,
    predicted,
)
from napari_cryoli.classes import LI, LIH
from napari_cryoli.segment.calibration import Calibration

#: Gaussian (nm) over which grey levels are averaged within the metal before the split.
SIGMA_NM = 6.0
#: Otsu's threshold is read over the metal at least this deep, away from the SEI's blur.
INNER_DEPTH_NM = 4.0
#: Dendrites holding less than this share of the dendrites' volume keep the network's call ...
MIN_DENDRITE_SHARE = 0.05
#: ... and so does every dendrite of a tomogram with fewer dendrites than this holding more.
MIN_DENDRITES = 2
#: The one-phase gate: the two classes' means this far apart (Li units) ...
GATE_LI_UNITS = (0.15, 0.7)
#: ... and at least this separability.
MIN_SEPARABILITY = 0.48
#: A voxel with less inner metal near it than this (Gaussian weight) is decided on its own level.
INNER_WEIGHT = 0.02
#: Fewer inner metal voxels than this and a dendrite keeps the network's call.
MIN_INNER_VOXELS = 100
#: A dendrite called this much LiH or more whose grey levels fail the gate is named (a lead).
ONE_POPULATION_LIH = 0.25


@dataclass(frozen=True)
class DendriteSplit:
    """What the split saw in one dendrite: the two classes' separation (Li units) and
    separability, whether it passed the gate, and whether it was split."""

    separation: float
    separability: float
    passed: bool
    split: bool


def large_dendrites(labels: np.ndarray, voxel_size_nm) -> tuple[np.ndarray, list[int]]:
    """Dendrite ids per voxel (those of the measurement's dendrite table of the same labels) and
    the ids holding ``MIN_DENDRITE_SHARE`` or more of the dendrites' solid volume."""
    from napari_cryoli.classes import PHASES
    from napari_cryoli.measure.dendrites import dendrite_pieces
    from napari_cryoli.measure.phases import scan_labels
    from napari_cryoli.measure.settings import MeasureSettings

    ids = np.zeros(labels.shape, np.int32)
    box = scan_labels(labels).box(PHASES, 3, labels.shape)
    if box is None:
        return ids, []
    found = dendrite_pieces(labels, voxel_size_nm, MeasureSettings().min_dendrite_volume_nm3,
                            box=box)
    ids[found.box] = found.ids
    sizes = np.bincount(found.ids.ravel(), minlength=found.n + 1)
    least = MIN_DENDRITE_SHARE * sizes[1:].sum()
    return ids, [i for i in range(1, found.n + 1) if sizes[i] >= least]


def split_phases(
    image: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    large: list[int],
    calibration: Calibration,
    voxel_size_nm: Sequence[float],
) -> dict[int, DendriteSplit]:
    """Split the metal of each dendrite in ``large`` (ids as ``large_dendrites`` gives them)
    that passes the one-phase gate on ``image``'s grey levels, in place in ``labels``, when
    there are ``MIN_DENDRITES`` or more; what the split saw, per dendrite. ``calibration`` is
    ``image``'s: it says which way is dense and sets the gate's scale."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    h = np.asarray(voxel_size_nm, dtype=float)
    sigma = SIGMA_NM / h
    margin = np.ceil(4 * sigma).astype(int) + 1  # the smoothing sees what it would on the whole
    depth = max(1, round(INNER_DEPTH_NM / float(h.min())))
    boxes = ndimage.find_objects(ids)
    records = {}
    for i in large:
        crop = tuple(slice(max(s.start - m, 0), min(s.stop + m, n))
                     for s, m, n in zip(boxes[i - 1], margin, labels.shape))
        sub = labels[crop]
        metal = (sub == LI) | (sub == LIH)
        mine = (ids[crop] == i) & metal
        li_units = calibration.in_li_units(image[crop])
        grey = _smoothed_within(li_units, metal, sigma)
        inside_all = ndimage.binary_erosion(metal, iterations=depth)
        values = grey[inside_all & mine]
        if values.size < MIN_INNER_VOXELS or np.ptp(values) == 0:
            records[i] = DendriteSplit(math.nan, math.nan, False, False)
            continue
        threshold = float(threshold_otsu(values))
        light, dense = values[values < threshold], values[values >= threshold]
        separation = float(dense.mean() - light.mean())
        separability = float(light.size * dense.size / values.size**2 * separation**2
                             / values.var())
        passed = (GATE_LI_UNITS[0] <= separation <= GATE_LI_UNITS[1]
                  and separability >= MIN_SEPARABILITY)
        split = passed and len(large) >= MIN_DENDRITES
        if split:
            lih = _decided_on_inner_metal(li_units, grey, inside_all, sigma) >= threshold
            sub[mine & lih] = LIH
            sub[mine & ~lih] = LI
        records[i] = DendriteSplit(separation, separability, passed, split)
    return records


def _decided_on_inner_metal(values: np.ndarray, grey: np.ndarray, inner: np.ndarray,
                            sigma: np.ndarray) -> np.ndarray:
    """``values`` averaged over the ``inner`` metal only, where enough of it is near; elsewhere
    (thin parts) ``grey``, their average over all the metal."""
    from scipy import ndimage

    near = ndimage.gaussian_filter(inner.astype(np.float32), sigma)
    return np.where(near > INNER_WEIGHT, _smoothed_within(values, inner, sigma), grey)


def _smoothed_within(values: np.ndarray, mask: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """A Gaussian average of ``values`` over ``mask`` only (normalised convolution)."""
    from scipy import ndimage

    weight = ndimage.gaussian_filter(mask.astype(np.float32), sigma)
    out = ndimage.gaussian_filter(np.where(mask, values, 0).astype(np.float32), sigma)
    out /= np.maximum(weight, 1e-3)
    return out


def _apply(job: tuple[str, str, int]) -> list[dict]:
    from benchmarks.segment_transfer import scores
    from napari_cryoli.segment.calibration import calibrate

    path, cell, seed = job
    _, _, phantom, error = _simulate((cell, seed, CELLS[cell]))
    if phantom is None:
        return [{"cell": cell, "seed": seed, "error": error}]
    image, truth, h, _ = phantom
    network = predicted(path, image, h)
    ids, large = large_dendrites(network, h)
    pred = network.copy()
    split = split_phases(image, pred, ids, large, calibrate(image, h), h)
    metal = np.isin(network, (LI, LIH))
    rows = [{"cell": cell, "seed": seed, "tomogram": True,
             "network": scores(network, truth), "own_split": scores(pred, truth)}]
    for i in large:
        mine = (ids == i) & metal
        true_metal = np.isin(truth[mine], (LI, LIH)).sum()
        record, lih = split[i], float((network[mine] == LIH).mean())
        rows.append({
            "cell": cell, "seed": seed, "dendrite": i,
            "truth": float((truth[mine] == LIH).sum() / max(true_metal, 1)),
            "network": lih, "own_split": float((pred[mine] == LIH).mean()),
            "split": record.split, "passed": record.passed,
            "one_population": (not math.isnan(record.separation) and not record.passed
                               and lih >= ONE_POPULATION_LIH),
            "separation": round(record.separation, 3),
            "separability": round(record.separability, 3),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", choices=list(CELLS),
                    default=["7d, 3 dendrites", "7d, 2 dendrites", "7d, 1 dendrite", "24h",
                             "fresh"])
    ap.add_argument("--seeds", type=int, nargs=2, default=[8001, 8006], help="first, stop")
    add_model_arguments(ap)
    args = ap.parse_args()

    jobs = [(c, s) for c in args.cells for s in range(*args.seeds)]
    rows = [r for rs in apply_model(_apply, jobs, args) for r in rs if "error" not in r]
    for r in rows:
        print(json.dumps(r), flush=True)
    print(table(rows, args.cells))
    for kind, pick in (("fresh", lambda r: "fresh" in r["cell"]),
                       ("aged", lambda r: "fresh" not in r["cell"])):
        den = [r for r in rows if "dendrite" in r and pick(r)]
        called = [r for r in den if r["network"] >= ONE_POPULATION_LIH]
        print(f"{kind}: one population named on {sum(r['one_population'] for r in den)} of "
              f"{len(den)} dendrites; of the {len(called)} called >= {ONE_POPULATION_LIH} LiH, "
              f"{sum(r['one_population'] for r in called)} named")


def table(rows: list[dict], cells: list[str]) -> str:
    """Per cell: dendrites, how many passed the gate, per-dendrite LiH fraction mean |error|
    (network, split), and per tomogram mean Dice and mean |LiH share error| (network, split)."""
    out = [("| cell | tomograms | dendrites split | per dendrite: network | own split | "
           "within ±0.03 | mean Dice: network | own split | share mean \\|error\\|: network | "
           "own split | largest share after split |"),
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for cell in cells:
        den = [r for r in rows if r["cell"] == cell and "dendrite" in r]
        tom = [r for r in rows if r["cell"] == cell and r.get("tomogram")]
        if not tom:
            continue
        net = np.abs([r["network"] - r["truth"] for r in den]) if den else np.zeros(1)
        own = np.abs([r["own_split"] - r["truth"] for r in den]) if den else np.zeros(1)
        dice = [np.mean([t[k]["mean"] for t in tom]) for k in ("network", "own_split")]
        err = [np.mean([abs(t[k]["lih_share_error"]) for t in tom])
               for k in ("network", "own_split")]
        largest = max(t["own_split"]["lih_share_pred"] for t in tom)
        out.append(f"| {cell} | {len(tom)} | {sum(r['split'] for r in den)} of {len(den)} | "
                   f"{net.mean():.3f} | {own.mean():.3f} | {int((own <= 0.03).sum())} of "
                   f"{len(den)} | {dice[0]:.3f} | {dice[1]:.3f} | {err[0]:.3f} | {err[1]:.3f} | "
                   f"{largest:.3f} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
