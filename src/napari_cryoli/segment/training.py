"""Training a segmentation model on sparse labels: a stoppable, time- or step-boxed job.

The loss (weighted cross-entropy plus a soft Dice term) counts painted voxels only, so label 0
("not annotated") never teaches the network anything. A validation split of the painted voxels is
held out and scored as the run goes; the best model so far is what the run returns and what it
writes to the checkpoint file. Weights are averaged over steps (an exponential moving average),
which steadies a short run on few labels.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..classes import BACKGROUND, DEFAULT_ONTOLOGY, UNLABELED, Ontology, count_voxels
from ..errors import InputError
from ..jobs import Job, Progress
from ..settings import setting
from .calibration import Calibration, calibrate
from .loop import StepLoop, state_copy
from .missing_wedge import WedgeSettings, with_wedge_restored
from .model import Normalisation, SegmentationModel, resolve_device, with_cpu_math
from .noise import per_working_voxel, voxel_noise
from .prediction import check_volume
from .resample import needs_resampling, to_working_grid
from .sampling import (
    IGNORE,
    WITHIN_TOMOGRAM,
    Jitter,
    PatchSampler,
    SparseLabels,
    augment,
    pad_target,
    read_box,
)

if TYPE_CHECKING:
    import torch


#: Peak learning rates. Fine-tuning at the higher one swung the Li/LiH boundary of the
#: pre-trained model from one evaluation to the next (docs/segmentation.md).
LR_FROM_SCRATCH = 5e-3
LR_FINE_TUNING = 1e-3


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run; the defaults suit a laptop CPU and a 5-minute budget.

    The run ends at ``minutes`` or ``max_steps`` (whichever comes first; at least one must be
    set), when validation has not improved for ``patience`` evaluations, or when stopped.
    ``lr`` None is ``LR_FROM_SCRATCH`` or, with a starting model, ``LR_FINE_TUNING``.
    With ``adapt_wrong_start`` a starting model that labels the strokes poorly (``check_start``)
    is fine-tuned with a weaker keep term and batch norm adapting.
    ``intensity`` is how grey levels are mapped for the network: "percentiles" of the whole
    volume, or "calibrated" on vacuum and Li (``calibration``; the default, as the shipped
    pre-trained network was trained on it); a model keeps its mapping and applies it to every
    tomogram it segments.
    """

    base_channels: int = setting(8, "network width (channels of the first level); another width starts from scratch", minimum=1)
    depth: int = setting(4, "network levels; another depth starts from scratch", minimum=1, maximum=6)
    smoothing_sigmas: tuple[float, ...] = (1.0, 2.5)
    patch_size: int = 48
    batch_size: int = 2
    minutes: float | None = setting(
        5.0, "training time budget in minutes: training stops after this long and keeps the best "
        "model", minimum=0.1, maximum=600.0)
    max_steps: int | None = setting(None, "stop after this many training steps (or when the time is up)", minimum=0, maximum=1_000_000)
    lr: float | None = None
    weight_decay: float = 1e-4
    dice_weight: float = 1.0
    ema: float | None = 0.99
    seed: int = setting(0, "random seed of the weights and of the patches drawn")
    device: str = "auto"
    val_fraction: float = 0.15
    eval_every: int = 25
    max_val_patches: int = 4
    patience: int | None = 12
    #: 0.3, not 1.0: the pre-trained network calls about half of the LiH Li, and a full-weight keep
    #: term held that line against the strokes (docs/segmentation.md, "A lighter keep term").
    keep_weight: float = 0.3
    #: The keep term counts this many times where the starting model is sure of background:
    #: strokes never ask empty space to change, yet some fine-tuning draws grew SEI into the
    #: vacuum of other tomograms (docs/segmentation.md, "SEI grown into vacuum").
    keep_background: float = 5.0
    freeze_norm: bool = True
    adapt_wrong_start: bool = True
    jitter: Jitter = WITHIN_TOMOGRAM
    intensity: str = setting(
        "calibrated", "grey levels for the network: percentiles of the whole volume, or "
        "calibrated on vacuum and Li metal (applied the same way to every tomogram the model "
        "segments; docs/segmentation.md)", choices=("percentiles", "calibrated"))
    restore_wedge: bool = setting(
        False, "restore each tomogram's missing wedge before the network reads it (calibrated "
        "grey levels; fields of several dendrites along the tilt axis; docs/segmentation.md)")
    tilt_range_deg: float = setting(60.0, "highest tilt angle of the series (±, degrees), for "
                                    "restoring the missing wedge", minimum=1.0, maximum=90.0)
    preview_z: int | None = None
    preview_every_s: float = 5.0

    def __post_init__(self) -> None:
        if self.minutes is None and self.max_steps is None:
            raise InputError("a training run needs a time budget (minutes) or a number of steps")
        if self.minutes is not None and self.minutes <= 0:
            raise InputError(f"the time budget must be positive, not {self.minutes} minutes")
        if self.max_steps is not None and self.max_steps < 1:
            raise InputError("a training run needs at least one step")
        if self.base_channels < 1 or not 1 <= self.depth <= 6:
            raise InputError("the network depth must be 1 to 6 levels and its width at least 1 channel")
        if self.batch_size < 1 or self.patch_size < 8:
            raise InputError("batch size must be at least 1 and patches at least 8 voxels wide")
        if self.lr is not None and not self.lr > 0:
            raise InputError(f"the learning rate must be positive, not {self.lr}")
        if self.intensity not in ("percentiles", "calibrated"):
            raise InputError(f"intensity must be 'percentiles' or 'calibrated', not {self.intensity!r}")
        if self.restore_wedge and self.intensity != "calibrated":
            raise InputError("restoring the missing wedge needs calibrated grey levels")
        if not 0 < self.tilt_range_deg <= 90:
            raise InputError(f"the tilt range must be within 0-90 degrees, not {self.tilt_range_deg}")
        if not self.keep_background > 0:
            raise InputError(f"the keep term's weight on background must be positive, not {self.keep_background}")
        if not 0 <= self.val_fraction < 0.5:
            raise InputError(f"the validation fraction must be in [0, 0.5), not {self.val_fraction}")


@dataclass(frozen=True)
class TrainProgress(Progress):
    """A training progress record; ``done/total`` count steps, or seconds when time-boxed."""

    step: int = 0
    loss: float = float("nan")
    val_dice: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    preview: np.ndarray | None = None  # uint8 labels of section preview_z, when refreshed


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The trained model (best on validation), whether it was stopped, and the run's record."""

    model: SegmentationModel
    stopped: bool
    history: dict[str, list]  # step, loss, val_step, val_dice (per class name), val_mean
    best_val_dice: dict[str, float]
    summary: dict[str, Any]


def train(
    image: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig = TrainConfig(),
    *,
    ontology: Ontology = DEFAULT_ONTOLOGY,
    voxel_size_nm: tuple[float, float, float] | None = None,
    init: SegmentationModel | None = None,
    checkpoint_path: str | Path | None = None,
    stop: threading.Event | None = None,
    more: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, ...] | float | None]] = (),
) -> Job[TrainResult]:
    """Check the inputs (raising ``InputError`` at once), then return the training job.

    With ``init`` the run fine-tunes that model (its classes and architecture win over
    ``ontology`` and the size settings). ``more`` holds further (image, labels, voxel size)
    pairs trained on in the same run: each is calibrated (or normalised) on itself and brought
    to the working voxel size, and batches draw from every pair alike. The best model is written
    atomically to ``checkpoint_path`` whenever it improves, and at the end.
    """
    if init is not None:
        ontology = init.ontology
    pairs = [(image, labels, voxel_size_nm), *more]
    painted: dict[int, int] = {}
    for i, (im, lab, _) in enumerate(pairs):
        try:
            for k, n in check_training_inputs(im, lab, ontology, single=len(pairs) == 1).items():
                painted[k] = painted.get(k, 0) + n
        except InputError as e:
            raise InputError(f"tomogram {i + 1}: {e}" if len(pairs) > 1 else str(e)) from None
    if len(painted) < 2:
        raise InputError("only one class is painted in all the tomograms: paint at least two")
    return with_cpu_math(_train_steps(
        pairs, painted, config, ontology, voxel_size_nm, init,
        None if checkpoint_path is None else Path(checkpoint_path), stop,
    ))


def check_training_inputs(image: np.ndarray, labels: np.ndarray, ontology: Ontology,
                          single: bool = True) -> dict[int, int]:
    """Painted voxels per class id, after checking that image and labels can train a model
    (alone when ``single``; one of several may hold a single class)."""
    if image.ndim != 3:
        raise InputError(f"training needs a 3D image, not an array of shape {image.shape}")
    if labels.shape != image.shape:
        raise InputError(
            f"the labels (shape {labels.shape}) do not match the image (shape {image.shape})"
        )
    if labels.dtype.kind not in "ui":
        raise InputError(f"labels must be integer class ids, not {labels.dtype} values")
    check_volume(image, "train on")
    if labels.dtype != np.uint8 and (labels.min(initial=0) < 0 or labels.max(initial=0) > 255):
        raise InputError("label ids must be between 0 and 255")
    painted: dict[int, int] = {}
    for z in range(0, labels.shape[0], 64):
        for k, n in count_voxels(np.asarray(labels[z : z + 64]).astype(np.uint8)).items():
            painted[k] = painted.get(k, 0) + n
    if not painted:
        raise InputError("nothing is painted: paint a few strokes of each class first")
    unknown = sorted(set(painted) - set(ontology.ids))
    if unknown:
        raise InputError(f"labels use ids {unknown} that are not classes of the model")
    if single and len(painted) < 2:
        (only,) = painted
        raise InputError(
            f"only {ontology.name_of(only)} is painted: paint at least two classes to train"
        )
    return painted


def sparse_loss(
    logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor, dice_weight: float = 1.0
) -> torch.Tensor:
    """Weighted cross-entropy plus soft Dice, over voxels whose target is not ``IGNORE``."""
    import torch
    from torch.nn import functional as F

    mask = target != IGNORE
    if not bool(mask.any()):
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits, target, weight=class_weights, ignore_index=IGNORE)
    if not dice_weight:
        return ce
    # Channels-first throughout: a channels-last gradient sends the convolutions' backward pass
    # down a path ~20x slower on CPUs.
    probs = torch.softmax(logits, dim=1) * mask[:, None]
    onehot = F.one_hot(target.clamp(min=0), logits.shape[1]).movedim(-1, 1).contiguous()
    onehot = onehot.to(probs.dtype) * mask[:, None]
    dims = (0, 2, 3, 4)
    true_n = onehot.sum(dims)
    present = true_n > 0
    inter = (probs * onehot).sum(dims)
    dice = (2 * inter + 1.0) / (probs.sum(dims) + true_n + 1.0)
    return ce + dice_weight * (1.0 - dice[present].mean())


#: Starting-model probability of background above which ``keep_loss`` holds a voxel harder.
SURE_BACKGROUND = 0.9


def keep_loss(logits: torch.Tensor, teacher, x: torch.Tensor, target: torch.Tensor,
              background_weight: float = 1.0, background: int = 0) -> torch.Tensor:
    """Mean KL divergence from the starting model's prediction over the unpainted voxels,
    ``background_weight`` times where it gives channel ``background`` more than
    ``SURE_BACKGROUND``.

    Strokes lie inside each phase and say nothing about the boundaries between them; without
    this term fine-tuning moves those boundaries freely (SEI thickens, the painted classes grow).
    """
    import torch

    with torch.no_grad():
        q = torch.softmax(teacher(x), dim=1)
    unpainted = (target == IGNORE).to(logits.dtype)
    if not bool(unpainted.any()):
        return logits.sum() * 0.0
    kl = (q * (torch.log(q.clamp_min(1e-8)) - torch.log_softmax(logits, dim=1))).sum(1)
    weight = unpainted
    if background_weight != 1.0:
        sure = (q[:, background] > SURE_BACKGROUND).to(logits.dtype)
        weight = unpainted * (1.0 + (background_weight - 1.0) * sure)
    return (kl * weight).sum() / unpainted.sum()


def _frozen(network, device: str):
    net = copy.deepcopy(network).to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@dataclass(frozen=True, eq=False)
class _Volume:
    """One training tomogram on the working grid, its strokes and its grey-level mapping."""

    image: np.ndarray
    sparse: SparseLabels
    sampler: PatchSampler
    norm: Any
    original_shape: tuple[int, ...]
    resampled: bool


def _train_steps(
    pairs: list,
    painted: dict[int, int],
    config: TrainConfig,
    ontology: Ontology,
    voxel_size_nm: tuple[float, float, float] | None,
    init: SegmentationModel | None,
    checkpoint_path: Path | None,
    stop: threading.Event | None,
) -> Job[TrainResult]:
    import torch

    started = time.perf_counter()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    working = init.voxel_size_nm if init is not None and init.voxel_size_nm else voxel_size_nm
    n_classes = len(ontology)
    lut = np.full(256, IGNORE, np.int64)
    lut[list(ontology.ids)] = np.arange(n_classes)
    lut[UNLABELED] = IGNORE
    multiple = 2 ** ((init.architecture.depth if init is not None else config.depth) - 1)
    patch = max(multiple, config.patch_size // multiple * multiple)
    voxels = [voxel if voxel is not None else voxel_size_nm for _, _, voxel in pairs]
    norms, intensity_note = grey_levels_of(
        [(image, labels, voxel or working) for (image, labels, _), voxel in zip(pairs, voxels)],
        calibrated=config.intensity == "calibrated")
    if intensity_note:
        yield Progress(0, 1, intensity_note, {"intensity_note": intensity_note})
    if config.restore_wedge:
        wedge = WedgeSettings(tilt_range_deg=config.tilt_range_deg)
        norms = [replace(n, wedge=wedge) if isinstance(n, Calibration) else n for n in norms]
        yield Progress(0, 1, "restoring the missing wedge")
    model_levels = norms[0]
    volumes: list[_Volume] = []
    noises = []  # voxel noise per working voxel, what noise matching aims at
    restorations = []
    for (image, labels, _), voxel, norm in zip(pairs, voxels, norms):
        shape = image.shape
        levels, norm, restored = with_wedge_restored(image, voxel or working or 1.0, norm)
        if restored is not None:  # held whole: patches are drawn from anywhere in it
            image = levels[0 : levels.shape[0]]
            restorations.append(restored.to_dict())
        resampled = needs_resampling(voxel, working)
        if isinstance(norm, Calibration):
            noises.append(per_working_voxel(voxel_noise(image, norm.li - norm.vacuum), voxel,
                                            working if resampled else None))
        if resampled:
            image = to_working_grid(image, voxel, working)
            labels = labels_to_working_grid(labels, voxel, working)
        sparse = SparseLabels.from_labels(labels, lut, val_fraction=config.val_fraction,
                                          block=max(8, patch // 2), rng=rng)
        volumes.append(_Volume(image, sparse, PatchSampler(sparse, patch), norm, shape, resampled))
    first = volumes[0]
    image, sparse, norm, intensity = first.image, first.sparse, first.norm, model_levels
    if len(noises) == len(volumes):
        intensity = replace(intensity, voxel_noise=round(min(noises), 4))
    original_shape, resampled = first.original_shape, first.resampled
    if init is not None:
        model = SegmentationModel(
            copy.deepcopy(init.network).to(device), ontology=ontology,
            normalisation=intensity, voxel_size_nm=working,
            patch_size=init.patch_size, summary={"fine_tuned_from": init.summary},
        )
    else:
        model = SegmentationModel.create(
            ontology=ontology, base_channels=config.base_channels, depth=config.depth,
            smoothing_sigmas=config.smoothing_sigmas, normalisation=intensity,
            voxel_size_nm=working, patch_size=config.patch_size, device=device,
        )
    counts = sum(v.sparse.counts(n_classes, "train") for v in volumes)
    class_weights = torch.tensor(_class_weights(counts), dtype=torch.float32, device=device)
    val_set = []
    for v in volumes:
        for b in v.sampler.covering_boxes("val", config.max_val_patches, rng):
            val_set.append((v.norm.apply(read_box(v.image, b, patch)),
                            pad_target(v.sparse.dense(b, _clip_size(b, patch, v.image.shape), "val"),
                                       patch)))
    held_out = {int(c) for v in volumes for c in v.sparse.channel[v.sparse.is_val]}

    fine_tuning = init is not None
    keep_weight, freeze_norm = config.keep_weight, config.freeze_norm
    has_background = BACKGROUND in ontology.ids
    background = list(ontology.ids).index(BACKGROUND) if has_background else 0
    hold_background = config.keep_background if has_background else 1.0
    start_check: dict[str, Any] = {}
    if fine_tuning:
        start_check = check_start(model, image, sparse, norm, patch, ontology, device, rng)
        if start_check["wrong"] and config.adapt_wrong_start:
            # Holding a wrong start's predictions would keep it wrong, and its batch-norm
            # statistics belong to other grey levels.
            keep_weight *= WRONG_START_KEEP
            freeze_norm = False
            hold_background = 1.0  # its sure background is no surer than the rest
        yield Progress(0, 1, start_check["note"], {"start_check": start_check})
    teacher = _frozen(init.network, device) if fine_tuning and keep_weight else None

    def train_mode() -> None:
        net.train()
        if fine_tuning and freeze_norm:
            for m in net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    net = model.network
    train_mode()
    ema_net = copy.deepcopy(net).eval() if config.ema else None
    params = [p for p in net.parameters() if p.requires_grad]
    lr = config.lr or (LR_FINE_TUNING if fine_tuning else LR_FROM_SCRATCH)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    history: dict[str, list] = {"step": [], "loss": [], "val_step": [], "val_dice": [],
                                "val_mean": []}
    best_mean, best_dice, best_step, best_state = -1.0, {}, 0, None
    evals_since_best = 0
    early_stopped = False
    step = 0
    last_preview = -np.inf
    preview_cost = 0.0
    budget_s = None if config.minutes is None else config.minutes * 60.0
    loop = StepLoop(net, opt, lr, budget_s, config.max_steps, ema_net=ema_net,
                    ema=config.ema or 0.0, stop=stop, started=started)

    def evaluated() -> SegmentationModel:
        return model if ema_net is None else _with_network(model, ema_net)

    if init is not None and len(val_set) and len(held_out) >= 2:
        # The starting model's score, for comparison. It is not a candidate: the few held-out
        # voxels (a few hundred) preferred it to fine-tuned models that were far better on
        # the whole tomogram (docs/segmentation.md).
        val_dice = _validate(evaluated().network, val_set, ontology, device)
        train_mode()
        history["val_step"].append(0)
        history["val_dice"].append(val_dice)
        history["val_mean"].append(float(np.mean(list(val_dice.values()))))

    def batch():
        x, t = _batch(volumes, patch, config.batch_size, config.jitter, rng)
        return torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)

    def loss_of(logits, x, t):
        loss = sparse_loss(logits, t, class_weights, config.dice_weight)
        if teacher is not None:
            loss = loss + keep_weight * keep_loss(logits, teacher, x, t, hold_background,
                                                  background)
        return loss

    for loss_value in loop.run(batch, loss_of):
        step = loop.step
        history["step"].append(step)
        history["loss"].append(loss_value)

        val_dice: dict[str, float] = {}
        if val_set and (step % config.eval_every == 0):
            val_dice = _validate(evaluated().network, val_set, ontology, device)
            train_mode()
            mean = float(np.mean(list(val_dice.values()))) if val_dice else 0.0
            history["val_step"].append(step)
            history["val_dice"].append(val_dice)
            history["val_mean"].append(mean)
            # A split that covers one class only (rare classes are never held out) cannot rank
            # models: the latest one is kept instead. A tie also goes to the later model: held-out
            # strokes often saturate at Dice 1.0, and the later model has been averaged longer.
            improved = mean > best_mean or len(val_dice) < 2
            evals_since_best = 0 if improved else evals_since_best + 1
            if improved or mean == best_mean:
                best_mean, best_dice, best_step = mean, val_dice, step
                best_state = state_copy(evaluated().network)
                if checkpoint_path is not None:
                    _snapshot(model, best_state, summary=None).save(checkpoint_path)
            if config.patience is not None and evals_since_best >= config.patience:
                early_stopped = True

        preview = None
        now = time.perf_counter()
        if config.preview_z is not None and now - last_preview >= max(config.preview_every_s,
                                                                       3 * preview_cost):
            if resampled:  # the section nearest to the one shown, on the shown grid
                z = int(config.preview_z * image.shape[0] / original_shape[0])
                section = preview_section(evaluated(), image, z, norm)
                rows = np.minimum((np.arange(original_shape[1]) + 0.5) * section.shape[0]
                                  / original_shape[1], section.shape[0] - 1).astype(int)
                cols = np.minimum((np.arange(original_shape[2]) + 0.5) * section.shape[1]
                                  / original_shape[2], section.shape[1] - 1).astype(int)
                preview = section[np.ix_(rows, cols)]
            else:
                preview = preview_section(evaluated(), image, config.preview_z, norm)
            last_preview = time.perf_counter()
            preview_cost = last_preview - now
            train_mode()
        elapsed = time.perf_counter() - started
        done, total = ((int(elapsed), int(budget_s)) if budget_s is not None
                       else (step, int(config.max_steps or 0)))
        if budget_s is not None and config.max_steps is not None:
            done, total = int(1000 * loop.fraction()), 1000
        yield TrainProgress(
            done=min(done, total), total=total,
            message=f"step {step} loss {loss_value:.3f}"
            + (f" val {np.mean(list(val_dice.values())):.2f}" if val_dice else ""),
            step=step, loss=loss_value, val_dice=val_dice, elapsed_s=elapsed, preview=preview,
        )
        if early_stopped:
            break
    stopped = loop.stopped

    final_state = best_state if best_state is not None else state_copy(evaluated().network)
    seconds = time.perf_counter() - started
    summary = {
        "steps": step,
        "seconds": round(seconds, 1),
        "best_step": best_step if best_state is not None else step,
        "best_val_dice": best_dice,
        "best_val_mean": best_mean if best_state is not None else None,
        "stopped": stopped,
        "early_stopped": early_stopped,
        "painted_voxels": {ontology.name_of(k): int(v) for k, v in sorted(painted.items())},
        "validation_voxels": int(sum(v.sparse.is_val.sum() for v in volumes)),
        "tomograms": len(volumes),
        "intensities": [v.norm.to_dict() for v in volumes],
        "device": device,
        "lr": lr,
        "intensity": intensity.to_dict(),
        **({"restorations": restorations} if restorations else {}),
        **({"intensity_note": intensity_note} if intensity_note else {}),
        **({"start_check": start_check} if start_check else {}),
        "trained_on_voxel_size_nm": None if voxel_size_nm is None
        else [float(v) for v in np.broadcast_to(voxel_size_nm, (3,))],
        "config": {k: v for k, v in asdict(config).items() if k not in ("preview_z",)},
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    result_model = _snapshot(model, final_state, summary)
    if checkpoint_path is not None:
        result_model.save(checkpoint_path)
    return TrainResult(result_model, stopped, history, best_dice, summary)


#: Below this mean Dice on the painted voxels the starting model is taken to be wrong for the
#: tomogram: fine-tuning then keeps a tenth of the keep term and lets batch norm adapt.
WRONG_START_DICE = 0.5
WRONG_START_KEEP = 0.1


def check_start(model: SegmentationModel, image: np.ndarray, sparse: SparseLabels, norm,
                patch: int, ontology: Ontology, device: str, rng: np.random.Generator,
                max_boxes: int = 8) -> dict[str, Any]:
    """How well the starting model labels the user's strokes (mean Dice over painted classes,
    boxes covering the painted voxels), and whether fine-tuning should treat it as wrong."""
    boxes = PatchSampler(sparse, patch).covering_boxes("train", max_boxes, rng)
    scored = [(norm.apply(read_box(image, b, patch)),
               pad_target(sparse.dense(b, _clip_size(b, patch, image.shape), "train"), patch))
              for b in boxes]
    dice = _validate(model.network, scored, ontology, device)
    mean = float(np.mean(list(dice.values()))) if dice else float("nan")
    wrong = bool(len(dice) >= 2 and mean < WRONG_START_DICE)
    note = (f"the starting model scores Dice {mean:.2f} on your strokes"
            + (": it does not fit this tomogram, so fine-tuning lets go of it (keep term x"
               f"{WRONG_START_KEEP:g}, batch norm adapting)" if wrong else ""))
    return {"dice": {k: round(v, 3) for k, v in dice.items()}, "mean": round(mean, 3),
            "wrong": wrong, "note": note}


def grey_levels(image: np.ndarray, labels: np.ndarray | None, voxel_size_nm, calibrated: bool):
    """The grey-level mapping a model trains with: the physical calibration (vacuum 0, Li 1;
    polarity from the strokes where they tell it), or percentiles for models made before it."""
    if not calibrated:
        return Normalisation.of(image)
    return calibrate(image, voxel_size_nm if voxel_size_nm is not None else 1.0, labels)


def grey_levels_of(pairs: list[tuple[np.ndarray, np.ndarray | None, Any]], calibrated: bool
                   ) -> tuple[list, str]:
    """Each (image, labels, voxel size)'s grey-level mapping, and a note when the calibration
    asked for could not be made: then every tomogram takes percentiles (one model, one kind of
    mapping), since training on data without a vacuum or a Li level should not stop."""
    if calibrated:
        try:
            return [grey_levels(*pair, calibrated=True) for pair in pairs], ""
        except InputError as e:
            note = f"grey levels from percentiles, as the calibration failed ({str(e).split(';')[0]})"
            return [grey_levels(*pair, calibrated=False) for pair in pairs], note
    return [grey_levels(*pair, calibrated=False) for pair in pairs], ""


def labels_to_working_grid(labels: np.ndarray, voxel_size_nm, working_nm) -> np.ndarray:
    """Sparse labels on the working grid: each working voxel takes the label at its centre."""
    from .resample import _centres, working_shape

    shape = working_shape(labels.shape, voxel_size_nm, working_nm)
    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    w = np.broadcast_to(np.asarray(working_nm, float), (3,))
    idx = [np.round(_centres(n, wi, hi, m)).astype(int)
           for n, wi, hi, m in zip(shape, w, h, labels.shape)]
    out = np.empty(shape, np.uint8)
    for k, z in enumerate(idx[0]):
        out[k] = np.asarray(labels[z])[np.ix_(idx[1], idx[2])]
    return out


def preview_section(
    model: SegmentationModel, image: np.ndarray, z: int, norm: Normalisation
) -> np.ndarray:
    """Labels of section ``z`` predicted from a slab of the image one patch deep (uint8)."""
    from .prediction import TileGrid, TileRunner, sliding_window

    z = int(np.clip(z, 0, image.shape[0] - 1))
    half = model.patch_size // 2
    z0 = max(0, min(z - half, image.shape[0] - model.patch_size))
    slab = image[z0 : z0 + model.patch_size]
    grid = TileGrid.for_volume(slab.shape, model.patch_size, 0.25, model.architecture.size_multiple)
    runner = TileRunner(model, "auto", False, str(model.device))
    out = np.zeros(image.shape[1:], np.uint8)
    for _, finished in sliding_window(slab, grid, runner, norm.apply, len(model.ontology), 4):
        if finished is not None:
            r0, r1, probs = finished
            if r0 <= z - z0 < r1:
                out = model.class_ids[np.argmax(probs[:, z - z0 - r0], axis=0)]
    return out


def _batch(volumes, patch, batch_size, jitter, rng):
    """Patches around painted voxels, each from a tomogram drawn alike among those painted."""
    xs, ts = [], []
    usable = [v for v in volumes if (~v.sparse.is_val).any()]
    for _ in range(batch_size):
        v = usable[int(rng.integers(len(usable)))]
        start = v.sampler.box(rng)
        x = v.norm.apply(read_box(v.image, start, patch))
        t = pad_target(v.sparse.dense(start, _clip_size(start, patch, v.image.shape), "train"),
                       patch)
        x, t = augment(x, t, rng, jitter)
        xs.append(x)
        ts.append(t)
    return np.stack(xs)[:, None], np.stack(ts)


def _clip_size(start, patch, shape) -> tuple[int, int, int]:
    return tuple(min(patch, n - s) for s, n in zip(start, shape))  # type: ignore[return-value]


def _class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse square-root frequency of the painted voxels, mean 1 over painted classes.

    Patches are already sampled class by class; the square root lifts rare classes (Cu) without
    making every uncertain voxel the rarest phase.
    """
    w = np.zeros(len(counts), np.float64)
    painted = counts > 0
    w[painted] = 1.0 / np.sqrt(counts[painted])
    w[painted] /= w[painted].mean()
    w[~painted] = 1.0
    return np.clip(w, 0.1, 10.0)


def _validate(network, val_set, ontology: Ontology, device: str) -> dict[str, float]:
    """Dice per painted class over the held-out voxels (unpainted voxels do not count)."""
    import torch

    n = len(ontology)
    inter, pred_n, true_n = np.zeros(n), np.zeros(n), np.zeros(n)
    network.eval()
    with torch.inference_mode():
        for x, t in val_set:
            pred = network(torch.from_numpy(x)[None, None].to(device)).argmax(1)[0].cpu().numpy()
            m = t != IGNORE
            p, g = pred[m], t[m]
            inter += np.bincount(g[p == g], minlength=n)
            pred_n += np.bincount(p, minlength=n)
            true_n += np.bincount(g, minlength=n)
    return {ontology.classes[c].name: float(2 * inter[c] / (pred_n[c] + true_n[c]))
            for c in range(n) if true_n[c] > 0}


def _with_network(model: SegmentationModel, network) -> SegmentationModel:
    return SegmentationModel(network, ontology=model.ontology, normalisation=model.normalisation,
                             voxel_size_nm=model.voxel_size_nm, patch_size=model.patch_size,
                             summary=model.summary)


def _snapshot(model: SegmentationModel, state: dict, summary: dict | None) -> SegmentationModel:
    """An independent model (eval mode) holding ``state``."""
    net = copy.deepcopy(model.network)
    net.load_state_dict(state)
    out = _with_network(model, net.eval())
    if summary is not None:
        out.summary = {**model.summary, **summary}
    return out
