"""Pre-training the default network on simulated dendrite tomograms with dense, exact labels.

Five minutes of training on two CPU cores buy a few hundred steps: too few to learn the faint
Li/LiH contrast from a user's strokes alone. The phantom simulator gives unlimited tomograms with
exact labels, so the network is first trained offline on a stream of phantoms drawn by
``tomo.variation.draw_spec``: fields of 1-3 dendrites and 5-60 % metal at any angle to the tilt
axis, films whole, holey or absent, fiducials, ice, phase contrast, elemental scattering,
inverted and denoised tomograms, and a chemistry drawn apart from the aging's name (no study
conclusion built in). Voxel sizes are drawn from ``voxel_size_nm`` and resampled to the working
voxel size (2 nm); grey levels are calibrated on vacuum and Li as at inference
(``intensity="calibrated"``), with the small jitter ``CALIBRATED_ACROSS`` left by the
calibration's own error. ``--workers N`` simulates in N processes beside the training (on a
GPU machine the simulation is the bottleneck).

The shipped weights (``pretrained``) still come from the earlier percentile-normalised runs on
the previous simulator (two runs, then a choice among their checkpoints; seeds, time, data and
the choice are recorded in the checkpoint's summary)::

    nice -n 5 python -m napari_cryoli.segment.pretrain --hours 1.25 --eval-every 400 --out first.pt
    nice -n 5 python -m napari_cryoli.segment.pretrain --init first.pt --seed 1 --hours 1.6 \\
        --lr 1e-3 --warmup 50 --eval-every 500 --keep-checkpoints --out continued.pt
    python -m napari_cryoli.segment.pretrain --select first.pt continued-step*.pt \\
        --out src/napari_cryoli/segment/weights/phantom_pretrained.pt

Phantom seeds start at ``SEED_BASE`` (training) and ``VALIDATION_SEED_BASE`` (validation), far
from the seeds the quality benchmark keeps unseen (1101, 1102, 2101, 2102, 3101, 3102) and from
the transfer benchmark's (6001, 7001-7005).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..classes import DEFAULT_ONTOLOGY
from ..errors import CryoliError, InputError
from ..jobs import Job, Progress, run_job
from .loop import StepLoop, state_copy
from .model import Normalisation, SegmentationModel, cpu_math, resolve_device
from .sampling import ACROSS_TOMOGRAMS, Jitter, augment, read_box
from .training import TrainConfig, sparse_loss

if TYPE_CHECKING:
    from ..tomo.phantom import Phantom, PhantomSpec

#: First phantom seed of the training stream; validation phantoms use their own range.
SEED_BASE = 100_000
VALIDATION_SEED_BASE = 900_000
#: Seeds of the quality benchmark, which pre-training must never see.
BENCHMARK_SEEDS = frozenset({1101, 1102, 2101, 2102, 3101, 3102, 6001, 7001, 7002, 7003, 7004,
                             7005})
#: Aged phantoms of the simulator's default physics that choose among a run's checkpoints.
SELECTION_PHANTOMS = (("24h", 1201), ("24h", 1202), ("7d", 2201), ("7d", 2202))
#: Varied-physics phantoms (``varied_spec``) that choose beside them: seeds of their own.
SELECTION_VARIED_SEEDS = tuple(range(950_000, 950_006))

_DEFAULTS = TrainConfig()
#: Between calibrated tomograms the Li level still differs by about 6 % (docs/segmentation.md);
#: the gain varies by that, the offset by a tenth of Li's contrast.
CALIBRATED_ACROSS = Jitter(0.06, 0.035, 0.05)


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of a pre-training run; the network's shape is fine-tuning's default."""

    hours: float | None = 3.0
    max_steps: int | None = None
    seed: int = 0
    voxel_size_nm: tuple[float, float] = (1.5, 3.0)
    pool_size: int = 6
    refresh_every: int = 20
    random_patch_fraction: float = 0.25
    n_validation: int = 3
    eval_every: int = 300
    lr: float = 2e-3
    weight_decay: float = 1e-4
    ema: float = 0.998
    base_channels: int = _DEFAULTS.base_channels
    depth: int = _DEFAULTS.depth
    smoothing_sigmas: tuple[float, ...] = _DEFAULTS.smoothing_sigmas
    patch_size: int = _DEFAULTS.patch_size
    batch_size: int = _DEFAULTS.batch_size
    device: str = "auto"
    init: Path | None = None
    warmup: int = 100
    keep_checkpoints: bool = False
    intensity: str = "calibrated"
    working_voxel_nm: float = 2.0
    workers: int = 0
    max_voxels: int = 3_500_000
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hours is None and self.max_steps is None:
            raise InputError("pre-training needs a time budget (hours) or a number of steps")
        lo, hi = self.voxel_size_nm
        if not 0 < lo <= hi:
            raise InputError(f"the voxel size range {self.voxel_size_nm} is not a range")
        if self.intensity not in ("percentiles", "calibrated"):
            raise InputError(f"intensity must be 'percentiles' or 'calibrated', not {self.intensity!r}")
        if self.warmup < 0:
            raise InputError(f"the warm-up is a number of steps, not {self.warmup}")


@dataclass(frozen=True, eq=False)
class _Sample:
    """One phantom ready for patch cutting: normalised tomogram, class channels, class voxels."""

    image: np.ndarray
    target: np.ndarray  # int64 channel per voxel
    where: dict[int, np.ndarray]  # channel -> flat indices (all classes but the first)
    spec: dict


def _prepare(phantom: Phantom, lut: np.ndarray, intensity: str = "percentiles",
             working_nm: float | None = None) -> _Sample:
    """Grey levels mapped as fine-tuning maps them, on the working grid when there is one."""
    from .resample import needs_resampling, to_working_grid
    from .training import grey_levels, labels_to_working_grid

    h = phantom.voxel_size_nm
    norm = grey_levels(phantom.tomogram, None, h, calibrated=intensity == "calibrated")
    image, labels = phantom.tomogram, phantom.labels
    if needs_resampling(h, working_nm):
        image = to_working_grid(image, h, working_nm)
        labels = labels_to_working_grid(labels, h, working_nm)
    target = lut[labels].astype(np.int64)
    where = {int(c): np.flatnonzero(target == c) for c in np.unique(target) if c > 0}
    spec = {k: v for k, v in asdict(phantom.spec).items() if k != "wbp"}
    return _Sample(norm.apply(image), target, where, spec)


def varied_spec(seed: int, voxel_range: tuple[float, float], max_voxels: int = 3_500_000
                ) -> PhantomSpec:
    """A phantom of ``tomo.variation``'s varied physics at a voxel size drawn from the range;
    ``InputError`` for a seed of the quality benchmark."""
    from ..tomo.variation import draw_spec

    h = float(np.random.default_rng(seed + 7).uniform(*voxel_range))
    return draw_spec(seed, h, exclude=BENCHMARK_SEEDS, max_voxels=max_voxels)


def simulate_sample(seed: int, config: PretrainConfig) -> _Sample:
    """One pre-training sample (run in a worker process when ``config.workers``)."""
    from ..tomo.phantom import simulate

    lut = np.zeros(256, np.int64)
    lut[list(DEFAULT_ONTOLOGY.ids)] = np.arange(len(DEFAULT_ONTOLOGY))
    spec = varied_spec(seed, config.voxel_size_nm, config.max_voxels)
    return _prepare(run_job(simulate(spec)), lut, config.intensity, config.working_voxel_nm)


def _simulate_in_worker(seed: int, config: PretrainConfig) -> _Sample:
    import torch

    torch.set_num_threads(1)
    return simulate_sample(seed, config)


class _SampleStream:
    """Fresh samples, simulated in worker processes (or here when there are none)."""

    def __init__(self, config: PretrainConfig, first_seed: int) -> None:
        self.config = config
        self.next_seed = first_seed
        self.seeds: list[int] = []
        self.seconds = 0.0
        self.pool = None
        self.pending: deque = deque()
        if config.workers > 0:
            import multiprocessing as mp
            import os

            # Fresh processes with one thread each for every library: forked ones would inherit
            # the trainer's thread pools (and a GPU context), and N workers x all cores each
            # oversubscribe the machine.
            single = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                       "MKL_NUM_THREADS")}
            before = {k: os.environ.get(k) for k in single}
            os.environ.update(single)
            try:
                self.pool = mp.get_context("spawn").Pool(config.workers)
            finally:
                for k, v in before.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            for _ in range(2 * config.workers):
                self._submit()

    def _submit(self) -> None:
        seed = self.next_seed
        self.next_seed += 1
        self.pending.append((seed, self.pool.apply_async(_simulate_in_worker, (seed, self.config))))

    def get(self, wait: bool) -> _Sample | None:
        """The next sample; None when none is ready and ``wait`` is false."""
        t0 = time.perf_counter()
        if self.pool is None:
            seed = self.next_seed
            self.next_seed += 1
            sample = simulate_sample(seed, self.config)
        else:
            if not self.pending[0][1].ready() and not wait:
                return None
            seed, result = self.pending.popleft()
            self._submit()
            try:
                sample = result.get()
            except CryoliError:  # a drawn phantom that cannot be built: skip it
                return self.get(wait)
        self.seeds.append(seed)
        self.seconds += time.perf_counter() - t0
        return sample

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()


def _patch(sample: _Sample, patch: int, random_fraction: float, rng: np.random.Generator,
           jitter: Jitter = ACROSS_TOMOGRAMS):
    """A patch (image, target) centred on a voxel of a class drawn uniformly, or anywhere."""
    shape = np.asarray(sample.image.shape)
    classes = [0, *sample.where]
    c = int(rng.choice(classes))
    if rng.random() < random_fraction or c == 0:
        centre = rng.integers(0, shape)
    else:
        idx = sample.where[c][rng.integers(len(sample.where[c]))]
        centre = np.asarray(np.unravel_index(idx, sample.image.shape))
    start = centre - rng.integers(patch // 4, 3 * patch // 4 + 1, size=3)
    start = tuple(int(v) for v in np.clip(start, 0, np.maximum(shape - patch, 0)))
    x = read_box(sample.image, start, patch)
    t = sample.target[tuple(slice(s, s + patch) for s in start)]
    if t.shape != (patch,) * 3:  # a volume thinner than a patch: edge-padded image, labels too
        t = np.pad(t, [(0, patch - n) for n in t.shape], mode="edge")
    return augment(x, t, rng, jitter)


def pretrain(
    config: PretrainConfig = PretrainConfig(),
    *,
    checkpoint_path: str | Path | None = None,
    stop: threading.Event | None = None,
) -> Job[SegmentationModel]:
    """Train the default network on a stream of phantoms; returns the averaged model.

    The checkpoint (when given) is rewritten atomically at every evaluation, so a long run that
    is killed still leaves its latest model.
    """
    import torch

    from ..tomo.phantom import simulate

    started = time.perf_counter()
    from .calibration import Calibration

    stream = _SampleStream(config, SEED_BASE + 10_000 * config.seed)
    with cpu_math():
        device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        ontology = DEFAULT_ONTOLOGY
        lut = np.zeros(256, np.int64)
        lut[list(ontology.ids)] = np.arange(len(ontology))
        earlier: dict = {}
        # Per image: each tomogram is calibrated (or normalised) on itself when segmented.
        intensity = (Calibration(0.0, -1.0, "each tomogram's metal cores")
                     if config.intensity == "calibrated" else Normalisation(0.0, 1.0))
        working = (config.working_voxel_nm,) * 3 if config.working_voxel_nm else None
        if config.init is None:
            model = SegmentationModel.create(
                ontology=ontology, base_channels=config.base_channels, depth=config.depth,
                smoothing_sigmas=config.smoothing_sigmas, normalisation=intensity,
                voxel_size_nm=working, patch_size=config.patch_size, device=device)
        else:
            model = SegmentationModel.load(config.init, device=device)
            if model.ontology.ids != ontology.ids:
                raise InputError(f"{config.init} was not trained for the default classes")
            earlier = {k: model.summary.get(k) for k in ("steps", "total_steps", "seconds",
                       "phantoms", "phantom_seeds", "command", "earlier")}
            model = SegmentationModel(model.network, ontology=ontology, normalisation=intensity,
                                      voxel_size_nm=working, patch_size=model.patch_size)
        net = model.network.train()
        ema_net = copy.deepcopy(net).eval()
        opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        budget_s = None if config.hours is None else config.hours * 3600.0
        jitter = CALIBRATED_ACROSS if config.intensity == "calibrated" else ACROSS_TOMOGRAMS

        seeds_used = stream.seeds

        val = []
        for i in range(config.n_validation):
            spec = varied_spec(VALIDATION_SEED_BASE + 10_000 * config.seed + i,
                               config.voxel_size_nm, config.max_voxels)
            ph = run_job(simulate(spec))
            slab = slice(max(0, ph.labels.shape[1] // 2 - 32), ph.labels.shape[1] // 2 + 32)
            val.append((np.ascontiguousarray(ph.tomogram[:, slab]),
                        np.ascontiguousarray(ph.labels[:, slab]), spec.voxel_size_nm, spec.aging))
        pool: deque[_Sample] = deque(stream.get(wait=True) for _ in range(config.pool_size))
        yield Progress(0, 0, f"{len(pool)} phantoms simulated")

        history: list[dict] = []
        losses: list[float] = []
        loop = StepLoop(net, opt, config.lr, budget_s, config.max_steps, warmup=config.warmup,
                        ema_net=ema_net, ema=config.ema, stop=stop, started=started)
        weights = torch.ones(len(ontology), device=device)

        def batch():
            xs, ts = [], []
            for _ in range(config.batch_size):
                x, t = _patch(pool[int(rng.integers(len(pool)))], config.patch_size,
                              config.random_patch_fraction, rng, jitter)
                xs.append(x)
                ts.append(t)
            return (torch.from_numpy(np.stack(xs)[:, None]).to(device),
                    torch.from_numpy(np.stack(ts)).to(device))

        step = 0
        for loss_value in loop.run(batch, lambda logits, x, t: sparse_loss(logits, t, weights)):
            step = loop.step
            losses.append(loss_value)
            if step % config.refresh_every == 0:
                # With workers, as many new phantoms as are ready (never waiting for one).
                while (sample := stream.get(wait=config.workers == 0)) is not None:
                    pool.popleft()
                    pool.append(sample)
                    if config.workers == 0:
                        break
            metrics: dict[str, Any] = {"step": step, "loss": float(np.mean(losses[-50:])),
                                       "lr": opt.param_groups[0]["lr"]}
            last = loop.fraction() >= 1.0
            if step % config.eval_every == 0 or last:
                snapshot = _model_with(model, ema_net)
                metrics["validation"] = [_dense_scores(snapshot, *v) for v in val]
                metrics["elapsed_s"] = round(time.perf_counter() - started, 1)
                history.append(metrics)
                if checkpoint_path is not None:
                    _summarise(snapshot, config, step, started, stream.seconds, seeds_used,
                               history, earlier)
                    snapshot.save(checkpoint_path)
                    if config.keep_checkpoints:
                        snapshot.save(step_checkpoint(checkpoint_path, step))
            done = int(1000 * min(loop.fraction(), 1.0))
            yield Progress(done, 1000, f"step {step} loss {metrics['loss']:.3f}", metrics)

        stopped = loop.stopped
        stream.close()
        sim_s = stream.seconds
        result = _model_with(model, ema_net)
        _summarise(result, config, step, started, sim_s, seeds_used, history, earlier,
                   stopped=stopped)
        if checkpoint_path is not None:
            result.save(checkpoint_path)
        return result


def step_checkpoint(path: str | Path, step: int) -> Path:
    """Where a run that keeps its checkpoints writes the one of ``step``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-step{step:06d}{path.suffix}")


def selection_phantoms() -> list[Phantom]:
    """The phantoms that choose among checkpoints: ``SELECTION_PHANTOMS`` (default physics)
    and ``SELECTION_VARIED_SEEDS`` (varied physics); seeds of neither training nor a benchmark."""
    from ..tomo.phantom import PhantomSpec, simulate

    specs = [PhantomSpec(aging=a, seed=s, shape=(96, 160, 160)) for a, s in SELECTION_PHANTOMS]
    specs += [varied_spec(s, PretrainConfig.voxel_size_nm) for s in SELECTION_VARIED_SEEDS]
    return [run_job(simulate(spec)) for spec in specs]


def select_checkpoint(paths: list[Path], phantoms: list[Phantom] | None = None,
                      ) -> tuple[Path, dict[str, float]]:
    """The checkpoint with the best mean Dice over the Li, LiH and SEI present, averaged over
    :func:`selection_phantoms`, and every one's score; each checkpoint maps grey levels its own
    way, so runs of either mapping compete.

    The Li/LiH line a run draws swings from one evaluation to the next on a given physics (the
    phantoms' Li and LiH differ by less than the noise, and the stream mixes doses, voxel sizes
    and LiH shares); the run's own three varied validation phantoms are too few to choose.
    """
    from .prediction import PredictConfig, predict

    models = [SegmentationModel.load(path, device="cpu") for path in paths]  # fail before work
    if phantoms is None:
        phantoms = selection_phantoms()
    scores: dict[str, float] = {}
    for path, model in zip(paths, models):
        per_phantom = []
        for ph in phantoms:
            pred = run_job(predict(ph.tomogram, model, PredictConfig(uncertainty=False),
                                   voxel_size_nm=ph.voxel_size_nm)).labels
            present = [c.id for c in model.ontology
                       if c.name in ("Li", "LiH", "SEI") and (ph.labels == c.id).any()]
            per_phantom.append(np.mean([_dice(pred, ph.labels, c) for c in present]))
        scores[str(path)] = round(float(np.mean(per_phantom)), 4)
    best = max(paths, key=lambda p: scores[str(p)])
    return best, scores


def _dice(pred: np.ndarray, truth: np.ndarray, class_id: int) -> float:
    a, b = pred == class_id, truth == class_id
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def _model_with(model: SegmentationModel, network) -> SegmentationModel:
    net = copy.deepcopy(model.network)
    net.load_state_dict(state_copy(network))
    return SegmentationModel(net.eval(), ontology=model.ontology,
                             normalisation=model.normalisation, voxel_size_nm=model.voxel_size_nm,
                             patch_size=model.patch_size)


def _summarise(model: SegmentationModel, config: PretrainConfig, step: int, started: float,
               sim_s: float, seeds: list[int], history: list[dict], earlier: dict,
               stopped: bool = False) -> None:
    """The checkpoint's record of the run; a continued run keeps the earlier runs' under
    ``earlier`` and counts their steps in ``total_steps``."""
    model.summary = {
        "pretrained_on": "simulated dendrite phantoms (napari_cryoli.tomo.phantom), dense labels",
        "voxel_size_range_nm": list(config.voxel_size_nm),
        "steps": step,
        "total_steps": step + int(earlier.get("total_steps") or earlier.get("steps") or 0),
        "seconds": round(time.perf_counter() - started, 1),
        "simulation_seconds": round(sim_s, 1),
        "phantoms": len(seeds),
        "phantom_seeds": [min(seeds), max(seeds)] if seeds else [],
        "validation_seeds": [VALIDATION_SEED_BASE + 10_000 * config.seed + i
                             for i in range(config.n_validation)],
        "validation": history[-1]["validation"] if history else [],
        "stopped": stopped,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        **({"earlier": earlier} if earlier else {}),
        "command": "python -m napari_cryoli.segment.pretrain " + " ".join(sys.argv[1:]),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _dense_scores(model: SegmentationModel, image: np.ndarray, truth: np.ndarray,
                  voxel_size_nm: float, aging: str) -> dict:
    """Dice per class of ``model``'s prediction of a validation phantom (a slab 64 voxels deep
    along the dendrites)."""
    from .prediction import PredictConfig, predict

    pred = run_job(predict(image, model, PredictConfig(uncertainty=False),
                           voxel_size_nm=voxel_size_nm)).labels
    out: dict[str, Any] = {"voxel_size_nm": round(voxel_size_nm, 2), "aging": aging}
    for c in model.ontology:
        if (truth == c.id).any():
            out[c.name] = round(_dice(pred, truth, c.id), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except CryoliError as e:  # a missing or damaged checkpoint: one line, not a traceback
        print(f"pretrain: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    ap.add_argument("--keep-checkpoints", action="store_true",
                    help="also keep every evaluation's checkpoint (OUT-stepNNNNNN.pt)")
    ap.add_argument("--select", type=Path, nargs="+", metavar="CHECKPOINT",
                    help="no training: write the best of these checkpoints on the selection "
                    "phantoms to --out")
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=300)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--init", type=Path, help="continue from this checkpoint (use another --seed "
                    "so that the phantoms are new)")
    ap.add_argument("--warmup", type=int, default=100, help="steps of learning-rate warm-up")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes simulating phantoms beside the training (0: none)")
    ap.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size)
    ap.add_argument("--intensity", choices=("percentiles", "calibrated"), default="calibrated")
    args = ap.parse_args(argv)
    if args.select:
        with cpu_math():
            best, scores = select_checkpoint(args.select)
        model = SegmentationModel.load(best, device="cpu")
        model.summary = {**model.summary, "selection": {
            "phantoms": [list(p) for p in SELECTION_PHANTOMS],
            "varied_seeds": list(SELECTION_VARIED_SEEDS), "chosen": best.name,
            "mean_dice_Li_LiH_SEI": {Path(k).name: v for k, v in scores.items()}}}
        model.save(args.out)
        print(json.dumps(model.summary["selection"]))
        return 0
    config = PretrainConfig(hours=args.hours, max_steps=args.max_steps, seed=args.seed,
                            eval_every=args.eval_every, lr=args.lr, device=args.device,
                            init=args.init, warmup=args.warmup,
                            keep_checkpoints=args.keep_checkpoints, workers=args.workers,
                            batch_size=args.batch_size, intensity=args.intensity)

    def log(p: Progress) -> None:
        if "validation" in p.metrics or p.metrics.get("step", 0) % 50 == 0:
            print(json.dumps(p.metrics), flush=True)

    model = run_job(pretrain(config, checkpoint_path=args.out), log)
    print(json.dumps({"done": model.summary["steps"], "validation": model.summary["validation"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
