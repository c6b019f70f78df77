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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from benchmarks.segment_transfer import CELLS, _simulate, add_model_arguments, model_path
from napari_cryoli.classes import LI, LIH
from napari_cryoli.segment.calibration import Calibration

#: Gaussian (nm) over which grey levels are averaged within the metal before the split.
SIGMA_NM = 6.0
#: Otsu's threshold is read over the metal at least this deep, away from the SEI's blur.
INNER_DEPTH_NM = 4.0
#: Dendrites holding less than this share of all dendrites' solid volume keep the network's call ...
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


@dataclass(frozen=True)
class DendriteSplit:
    """What the split saw in one dendrite: its id (as in the measurement's dendrite table of the
    same labels), metal voxels, the two classes' separation (Li units) and separability, whether
    it passed the gate and whether it was split, and its LiH share of the metal before and
    after."""

    dendrite: int
    metal_voxels: int
    separation: float
    separability: float
    passed: bool
    split: bool
    lih_before: float
    lih_after: float


@dataclass(frozen=True)
class PhaseSplit:
    """The per-dendrite records, and the whole volume's LiH share of the metal before and after."""

    dendrites: tuple[DendriteSplit, ...]
    lih_before: float
    lih_after: float
    #: Why nothing was split, when nothing could be ("" otherwise).
    skipped: str = ""

    @property
    def n_split(self) -> int:
        return sum(d.split for d in self.dendrites)

    def describe(self) -> str:
        """One line for the CLI, the panels and the prediction's metadata."""
        n = len(self.dendrites)
        if self.skipped:
            return f"own-grey split: {self.skipped}; the network's Li/LiH kept"
        return (f"own-grey split: {self.n_split} of {n} dendrites split on their own grey levels "
                f"(the others looked one-phase); LiH share of the metal "
                f"{self.lih_before:.3f} -> {self.lih_after:.3f}")

    def to_dict(self) -> dict:
        return {"lih_before": round(self.lih_before, 4), "lih_after": round(self.lih_after, 4),
                "dendrites": [{k: (round(v, 4) if isinstance(v, float) else v)
                               for k, v in d.__dict__.items()} for d in self.dendrites]}


def split_phases(
    image: np.ndarray,
    labels: np.ndarray,
    calibration: Calibration,
    voxel_size_nm: Sequence[float] | float,
) -> PhaseSplit:
    """Split each dendrite of ``labels`` into Li and LiH on ``image``'s grey levels, in place.

    ``labels`` (class ids, writable; a memory-mapped file works) has the Li and LiH voxels of
    each dendrite that passes the one-phase gate rewritten; every other voxel is left as it is.
    ``calibration`` is ``image``'s (it says which way is dense, and sets the gate's scale).
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    from napari_cryoli.classes import PHASES
    from napari_cryoli.measure.dendrites import dendrite_pieces
    from napari_cryoli.measure.phases import scan_labels
    from napari_cryoli.measure.settings import MeasureSettings

    h = np.broadcast_to(np.asarray(voxel_size_nm, dtype=float), (3,))
    scan = scan_labels(labels)
    before = _share(scan.counts)
    box = scan.box(PHASES, 3, labels.shape)
    if box is None:
        return PhaseSplit((), before, before, "0 dendrites")
    found = dendrite_pieces(labels, h, MeasureSettings().min_dendrite_volume_nm3, box=box)
    boxes = found.boxes()
    sizes = np.bincount(found.ids.ravel(), minlength=found.n + 1)[1:]
    sigma = SIGMA_NM / h
    margin = np.ceil(4 * sigma).astype(int) + 1
    depth = max(1, round(INNER_DEPTH_NM / float(h.min())))
    large = [i for i, piece in enumerate(boxes, start=1)
             if piece is not None and sizes[i - 1] >= MIN_DENDRITE_SHARE * sizes.sum()]
    records = []
    for i in large:
        piece = boxes[i - 1]
        # The dendrite's box in volume coordinates, grown so the smoothing sees what it would
        # see on the whole volume.
        crop = tuple(slice(max(b.start + s.start - m, 0), min(b.start + s.stop + m, n))
                     for b, s, m, n in zip(found.box, piece, margin, labels.shape))
        sub = np.asarray(labels[crop])
        metal = (sub == LI) | (sub == LIH)
        inner_ids = tuple(slice(c.start - b.start, c.stop - b.start)
                          for c, b in zip(crop, found.box))
        mine = _in_box(found.ids, inner_ids, sub.shape) == i
        mine &= metal
        n_mine = int(mine.sum())
        if not n_mine:
            continue
        li_units = calibration.in_li_units(image[crop])
        grey = _smoothed_within(li_units, metal, sigma)
        inside_all = ndimage.binary_erosion(metal, iterations=depth)
        inside = inside_all & mine
        lih_before = float((sub[mine] == LIH).mean())
        values = grey[inside]
        if values.size < MIN_INNER_VOXELS or np.ptp(values) == 0:
            records.append(DendriteSplit(i, n_mine, math.nan, math.nan, False, False,
                                         lih_before, lih_before))
            continue
        threshold = float(threshold_otsu(values))
        light, dense = values[values < threshold], values[values >= threshold]
        separation = float(dense.mean() - light.mean())
        separability = float(light.size * dense.size / values.size**2 * separation**2
                             / values.var())
        passed = (GATE_LI_UNITS[0] <= separation <= GATE_LI_UNITS[1]
                  and separability >= MIN_SEPARABILITY)
        after = lih_before
        if passed and len(large) >= MIN_DENDRITES:
            lih = _decided_on_inner_metal(li_units, grey, inside_all, sigma) >= threshold
            sub[mine & lih] = LIH
            sub[mine & ~lih] = LI
            labels[crop] = sub
            after = float(lih[mine].mean())
        records.append(DendriteSplit(i, n_mine, separation, separability, passed,
                                     passed and len(large) >= MIN_DENDRITES, lih_before, after))
    skipped = "" if len(large) >= MIN_DENDRITES else (
        f"{len(large)} dendrite{'' if len(large) == 1 else 's'} holding {MIN_DENDRITE_SHARE:.0%} "
        f"or more of the dendrites' volume; the split needs {MIN_DENDRITES} or more")
    return PhaseSplit(tuple(records), before, _share(scan_labels(labels).counts), skipped)


#: A dendrite called this much LiH or more whose grey levels fail the gate is named (a lead).
ONE_POPULATION_LIH = 0.25


def _share(counts: np.ndarray) -> float:
    metal = counts[LI] + counts[LIH]
    return float(counts[LIH] / metal) if metal else 0.0


def _in_box(ids: np.ndarray, window: tuple[slice, ...], shape: tuple[int, ...]) -> np.ndarray:
    """``ids`` read through ``window`` (which may reach past its edges: zeros there)."""
    out = np.zeros(shape, dtype=ids.dtype)
    src = tuple(slice(max(w.start, 0), min(w.stop, n)) for w, n in zip(window, ids.shape))
    dst = tuple(slice(s.start - w.start, s.stop - w.start) for s, w in zip(src, window))
    out[dst] = ids[src]
    return out


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
    import torch

    from benchmarks.segment_transfer import scores
    from napari_cryoli.jobs import run_job
    from napari_cryoli.measure.report import measure
    from napari_cryoli.segment import PredictConfig, predict
    from napari_cryoli.segment.calibration import calibrate
    from napari_cryoli.segment.model import SegmentationModel

    torch.set_num_threads(1)
    path, cell, seed = job
    _, _, phantom, error = _simulate((cell, seed, CELLS[cell]))
    if phantom is None:
        return [{"cell": cell, "seed": seed, "error": error}]
    image, truth, h, _ = phantom
    pred = run_job(predict(image, SegmentationModel.load(path, device="cpu"),
                           PredictConfig(uncertainty=False), voxel_size_nm=h)).labels
    report = run_job(measure(pred, h))
    ids = report.dendrite_ids()
    network = np.array(pred)
    split = split_phases(image, pred, calibrate(image, h), h)
    metal = np.isin(network, (LI, LIH))
    rows = [{"cell": cell, "seed": seed, "tomogram": True,
             "network": scores(network, truth), "own_split": scores(pred, truth)}]
    seen = {d.dendrite: d for d in split.dendrites}
    total = sum(d.volume_nm3 for d in report.dendrites) or 1.0
    for d in report.dendrites:
        if d.volume_nm3 < MIN_DENDRITE_SHARE * total:
            continue
        mine = (ids == d.id) & metal
        true_metal = np.isin(truth[mine], (LI, LIH)).sum()
        record = seen.get(d.id)
        rows.append({
            "cell": cell, "seed": seed, "dendrite": d.id,
            "truth": float((truth[mine] == LIH).sum() / max(true_metal, 1)),
            "network": float((network[mine] == LIH).mean()),
            "own_split": float((pred[mine] == LIH).mean()),
            "split": bool(record and record.split),
            "passed": bool(record and record.passed),
            "one_population": bool(record and not math.isnan(record.separation)
                                   and not record.passed
                                   and (network[mine] == LIH).mean() >= ONE_POPULATION_LIH),
            "separation": round(record.separation, 3) if record else None,
            "separability": round(record.separability, 3) if record else None,
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

    path = model_path(args)
    jobs = [(path, c, s) for c in args.cells for s in range(*args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = [r for rs in pool.map(_apply, jobs) for r in rs if "error" not in r]
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
