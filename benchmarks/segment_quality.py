"""Segmentation quality on the synthetic dendrite phantom, from sparse labels painted like a user.

For each aging preset: simulate a tomogram (unseen seed), paint strokes on a few sections in
different orientations from the true labels (well under 1 % of the voxels, a few dozen Cu voxels,
background strokes on the carbon film), train within the time budget, predict the whole tomogram,
and score Dice per class against the truth; then apply the same model to a tomogram of another
seed (transfer). The prediction is measured like a user's segmentation (LiH volume fraction, SEI
median thickness) and compared with the same measurement of the true labels.

    flock /tmp/cryoli-bench.lock nice -n 5 python -m benchmarks.segment_quality [--minutes 5] \
        [--start pretrained|scratch]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy import ndimage as ndi

from napari_cryoli.classes import BACKGROUND, CU, DEFAULT_ONTOLOGY, LI, LIH, SEI
from napari_cryoli.jobs import run_job
from napari_cryoli.segment import PredictConfig, TrainConfig, predict, starting_model, train

NAMES = {BACKGROUND: "background", LI: "Li", LIH: "LiH", CU: "Cu", SEI: "SEI"}


def film_sections(film: dict, voxel_z_nm: float) -> tuple[int, int]:
    """The z-sections (first, past-last) of a phantom's carbon film, from its truth record."""
    return (int((film["top_nm"] - film["thickness_nm"]) / voxel_z_nm),
            int(np.ceil(film["top_nm"] / voxel_z_nm)))


def paint_like_a_user(truth: np.ndarray, film_z: tuple[int, int], rng: np.random.Generator,
                      strokes_per_class: int = 3, stroke_length: int = 20,
                      vacuum_beside: bool = False) -> np.ndarray:
    """Sparse labels: brush strokes (3 voxels wide) inside each class on 5 sections.

    Two z-sections and two xz-sections (y fixed: the view that shows the missing wedge) and one
    yz-section through the dendrite; strokes stay a voxel or two inside their class (users paint
    interiors, not boundaries); background strokes run along the carbon film in the side views;
    Cu gets a few dozen voxels at the centre of each particle. ``vacuum_beside`` adds two
    background strokes in each side view in the vacuum beside the metal (20 voxels or more from
    it) at the heights of its top and of its bottom, where streaks of those faces cross it.
    """
    labels = np.zeros_like(truth)
    metal = np.isin(truth, (LI, LIH))
    zs, ys, xs = np.nonzero(metal)
    sections = [
        (0, int(np.percentile(zs, 35))), (0, int(np.percentile(zs, 65))),
        (1, int(np.percentile(ys, 30))), (1, int(np.percentile(ys, 70))),
        (2, int(np.percentile(xs, 50))),
    ]
    for axis, index in sections:
        plane = np.take(truth, index, axis=axis)
        painted = np.zeros_like(plane)
        for cls in (BACKGROUND, LI, LIH, SEI):
            inside = ndi.binary_erosion(plane == cls, iterations=1 if cls == SEI else 2)
            if axis != 0 and cls == BACKGROUND:
                film = np.zeros_like(inside)
                film[film_z[0] : film_z[1]] = True  # axis 0 of a side view is z
                _strokes(painted, inside & film, cls, 2, stroke_length * 2, rng)
            _strokes(painted, inside, cls, strokes_per_class, stroke_length, rng)
        _paint_section(labels, axis, index, painted)
    particles, n = ndi.label(truth == CU)
    for i in range(1, n + 1):
        core = ndi.binary_erosion(particles == i, iterations=1)
        where = np.argwhere(core if core.any() else particles == i)
        centre = where.mean(axis=0)
        nearest = where[np.argsort(((where - centre) ** 2).sum(axis=1))[:30]]
        labels[tuple(nearest.T)] = CU
    if vacuum_beside:  # drawn last, from a generator of its own: the other strokes stay the same
        extra = np.random.default_rng(rng.integers(2**32))
        for axis, index in sections[2:]:
            plane = np.take(truth, index, axis=axis)
            rows = np.nonzero(np.isin(plane, (LI, LIH)).any(axis=1))[0]
            if not rows.size:
                continue
            far = ndi.binary_erosion(plane == BACKGROUND, iterations=2) & (
                ndi.distance_transform_edt(~np.isin(plane, (LI, LIH, SEI))) >= 20)
            painted = np.zeros_like(plane)
            for band in (slice(rows.min(), rows.min() + 12), slice(rows.max() - 11,
                                                                  rows.max() + 1)):
                beside = np.zeros_like(far)
                beside[band] = True
                _strokes(painted, far & beside, BACKGROUND, 2, stroke_length, extra)
            _paint_section(labels, axis, index, painted, over_strokes=False)
    return labels


def _paint_section(labels: np.ndarray, axis: int, index: int, painted: np.ndarray,
                   over_strokes: bool = True) -> None:
    """Write the strokes ``painted`` on section ``index`` along ``axis`` into ``labels``."""
    view = [slice(None)] * 3
    view[axis] = index
    section = labels[tuple(view)]
    where = painted > 0 if over_strokes else (painted > 0) & (section == 0)
    section[where] = painted[where]


def _strokes(out: np.ndarray, allowed: np.ndarray, cls: int, count: int, length: int,
             rng: np.random.Generator) -> None:
    """Random-walk strokes with a 3-voxel brush, kept inside ``allowed``."""
    where = np.argwhere(allowed)
    if not len(where):
        return
    for _ in range(count):
        p = where[rng.integers(len(where))].astype(float)
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction)
        for _ in range(length):
            r, c = np.round(p).astype(int)
            brush = allowed[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]
            target = out[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]
            target[brush] = cls
            direction = direction + rng.normal(scale=0.3, size=2)
            direction /= np.linalg.norm(direction)
            q = p + direction
            qi = np.round(q).astype(int)
            if not (0 <= qi[0] < allowed.shape[0] and 0 <= qi[1] < allowed.shape[1]) or \
                    not allowed[qi[0], qi[1]]:
                direction = -direction
                continue
            p = q


def dice(pred: np.ndarray, truth: np.ndarray, cls: int) -> float:
    a, b = pred == cls, truth == cls
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def cu_particle_dice(pred: np.ndarray, truth: np.ndarray) -> list[float]:
    """Dice of Cu per true particle, in a box 3 voxels around it."""
    particles, _n = ndi.label(truth == CU)
    out = []
    for i, box in enumerate(ndi.find_objects(particles), start=1):
        grown = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in box)
        t = particles[grown] == i
        p = pred[grown] == CU
        out.append(float(2 * (t & p).sum() / max(t.sum() + p.sum(), 1)))
    return out


def measured(labels: np.ndarray, voxel_size_nm) -> dict:
    """The measurement of ``labels``, run in a child process so that a crash there is reported
    instead of taking the benchmark's results with it."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        try:
            return pool.apply_async(_measure, (labels, voxel_size_nm)).get(timeout=240)
        except Exception as e:  # noqa: BLE001 - reported in the results
            return {"lih_volume_fraction": None, "sei_median_nm": None, "error": repr(e)}


def _measure(labels: np.ndarray, voxel_size_nm) -> dict:
    from napari_cryoli.measure.report import measure

    report = run_job(measure(labels, voxel_size_nm))
    return {"lih_volume_fraction": report.lih_volume_fraction,
            "sei_median_nm": report.sei_thickness_nm.median}


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    d = {NAMES[c]: round(dice(pred, truth, c), 3) for c in (BACKGROUND, LI, LIH, CU, SEI)}
    d["mean_Li_LiH_SEI"] = round(float(np.mean([d["Li"], d["LiH"], d["SEI"]])), 3)
    d["Cu_per_particle"] = [round(v, 2) for v in cu_particle_dice(pred, truth)]
    return d


def run(aging: str, train_seed: int, test_seed: int, minutes: float, shape, start: str,
        **config) -> dict:
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    t0 = time.perf_counter()
    ph = run_job(simulate(PhantomSpec(aging=aging, seed=train_seed, shape=shape)))
    other = run_job(simulate(PhantomSpec(aging=aging, seed=test_seed, shape=shape)))
    film = ph.truth["film"]
    h = ph.voxel_size_nm[0]
    film_z = film_sections(film, h)
    labels = paint_like_a_user(ph.labels, film_z, np.random.default_rng(train_seed))
    painted = {NAMES[c]: int((labels == c).sum()) for c in NAMES}
    fraction = float((labels > 0).mean())
    sim_s = time.perf_counter() - t0

    train_config = TrainConfig(minutes=minutes, seed=train_seed, **config)
    init, zero_shot = None, {}
    if start == "pretrained":
        init, note = starting_model(DEFAULT_ONTOLOGY, train_config)
        if init is None:
            raise SystemExit(note)
        zero_shot = scores(run_job(predict(ph.tomogram, init, PredictConfig())).labels, ph.labels)
    t0 = time.perf_counter()
    result = run_job(train(ph.tomogram, labels, train_config, voxel_size_nm=ph.voxel_size_nm,
                           init=init))
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = run_job(predict(ph.tomogram, result.model, PredictConfig())).labels
    predict_s = time.perf_counter() - t0
    pred_other = run_job(predict(other.tomogram, result.model, PredictConfig())).labels

    out = {
        "aging": aging, "start": start, "config": config, "train_seed": train_seed, "transfer_seed": test_seed,
        "shape": list(ph.tomogram.shape), "painted_voxels": painted,
        "painted_fraction": round(fraction, 5), "simulate_s": round(sim_s, 1),
        "train_s": round(train_s, 1), "steps": result.summary["steps"],
        "best_val_dice": {k: round(v, 3) for k, v in result.best_val_dice.items()},
        "predict_s": round(predict_s, 1),
        **({"dice_pretrained_before_fine_tuning": zero_shot} if zero_shot else {}),
        "dice_same_tomogram": scores(pred, ph.labels),
        "dice_transfer": scores(pred_other, other.labels),
    }
    print(json.dumps(out), flush=True)  # before measuring: the scores survive a crash there
    for key, p, truth in (("same", pred, ph.labels), ("transfer", pred_other, other.labels)):
        mp, mt = measured(p, ph.voxel_size_nm), measured(truth, ph.voxel_size_nm)
        out[f"measure_{key}"] = {
            "lih_fraction_pred": _r(mp["lih_volume_fraction"]),
            "lih_fraction_true": _r(mt["lih_volume_fraction"]),
            "sei_median_pred_nm": _r(mp["sei_median_nm"]),
            "sei_median_true_nm": _r(mt["sei_median_nm"]),
            **({"error": mp["error"]} if "error" in mp else {}),
        }
    return out


def _r(v):
    return None if v is None else round(float(v), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--agings", nargs="+", default=["24h", "7d"])
    ap.add_argument("--shape", type=int, nargs=3, default=(96, 160, 160))
    ap.add_argument("--out", help="also write the results as JSON here")
    ap.add_argument("--lr", type=float, help="learning rate (default: TrainConfig's)")
    ap.add_argument("--max-steps", type=int, help="also end training after this many steps")
    ap.add_argument("--keep-weight", type=float,
                    help="weight of the fine-tuning term that keeps unpainted voxels' predictions "
                    "(default: TrainConfig's)")
    ap.add_argument("--freeze-norm", action=argparse.BooleanOptionalAction,
                    help="keep the starting model's batch-norm statistics while fine-tuning")
    ap.add_argument("--seed-shift", type=int, default=0,
                    help="add this to both phantom seeds of each preset (other unseen phantoms)")
    ap.add_argument("--start", choices=("pretrained", "scratch"), default="pretrained",
                    help="fine-tune the shipped pre-trained model (train's default) or start "
                    "from random weights")
    args = ap.parse_args()
    seeds = {"24h": (1101, 1102), "7d": (2101, 2102), "fresh": (3101, 3102)}
    results = []
    for aging in args.agings:
        config = {k: v for k, v in (("lr", args.lr), ("max_steps", args.max_steps),
                                    ("keep_weight", args.keep_weight),
                                    ("freeze_norm", args.freeze_norm)) if v is not None}
        train_seed, test_seed = (s + args.seed_shift for s in seeds[aging])
        r = run(aging, train_seed, test_seed, args.minutes, tuple(args.shape), args.start, **config)
        print(json.dumps(r), flush=True)
        results.append(r)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
