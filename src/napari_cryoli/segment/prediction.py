"""Sliding-window prediction of a whole tomogram with bounded memory.

Tiles overlap and are blended with a Gaussian weight (centres count more than borders, so tile
edges leave no seams). Tiles are processed layer by layer along z; the blended class
probabilities live only in a rolling buffer one tile deep, and each z-section is finished (argmax,
uncertainty, optional probabilities) and written out as soon as no later tile touches it. Memory
is therefore about ``classes x tile x Y x X`` half floats, whatever the depth of the tomogram, and
the input and outputs may be memory-mapped files larger than RAM.
"""

from __future__ import annotations

import functools
import math
import mmap
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import InputError
from ..jobs import Job, Progress, stop_requested
from ..settings import setting
from .model import SegmentationModel, resolve_device, with_cpu_math

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "bf16"]


#: Li and LiH grains are single crystals tens of nm across whose grey levels differ by about
#: the noise. Pooling their evidence over this Gaussian (nm) raised LiH Dice by 0.04-0.12 on
#: the selection phantoms (2 nm voxels), and Dice peaked at 10-12 nm (docs/segmentation.md).
PHASE_SIGMA_NM = 10.0


@dataclass(frozen=True)
class PredictConfig:
    """How to run the network over a volume.

    ``tile`` None uses the model's training patch size; ``overlap`` is the fraction of a tile
    shared with its neighbour. ``precision`` "auto" is bf16 autocast on a GPU and on CPUs with
    native bf16 (AVX-512 BF16/AMX), fp32 elsewhere (bf16 is emulated, and very slow, on AVX2).
    ``phase_sigma_nm`` is the Gaussian (nm) over which the evidence for Li against LiH is pooled
    before each voxel is labelled (``pool_phases``); 0 labels each voxel on its own evidence.
    ``match_noise`` brings a tomogram whose voxel noise is clearly below the model's training
    tomograms' up to it (``segment.noise``).
    """

    tile: int | None = setting(None, "tile side in voxels (default: the training patch)",
                               minimum=8)
    overlap: float = 0.25
    batch_size: int = 2
    tta: bool = setting(False, "flip test-time augmentation")
    device: str = setting("auto", "where to compute", choices=("auto", "cpu", "cuda"))
    precision: Precision = "auto"
    probabilities: bool = False
    uncertainty: bool = True
    phase_sigma_nm: float = setting(
        PHASE_SIGMA_NM, "Gaussian (nm) over which Li-vs-LiH evidence is pooled before labelling; "
        "0: each voxel on its own evidence", minimum=0.0,
    )
    match_noise: bool = setting(
        True, "add white noise to a tomogram clearly cleaner than the model's training "
        "tomograms, up to their voxel noise (calibrated models only)")
    tilt_range_deg: float | None = setting(
        None, "highest tilt angle (±, degrees) of the tomogram's series, for a model that "
        "restores the missing wedge (default: the model's)", minimum=1.0, maximum=90.0)

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < 1:
            raise InputError(f"tile overlap must be in [0, 1), not {self.overlap}")
        if self.batch_size < 1:
            raise InputError("batch size must be at least 1")
        if not self.phase_sigma_nm >= 0:
            raise InputError(
                f"the phase pooling sigma must be 0 nm or more, not {self.phase_sigma_nm}")
        if self.tilt_range_deg is not None and not 0 < self.tilt_range_deg <= 90:
            raise InputError(f"the tilt range must be within 0-90 degrees, not {self.tilt_range_deg}")
        if self.tile is not None and self.tile < 8:
            raise InputError(f"a tile of {self.tile} voxels is too small; use 32 or more")


@dataclass(frozen=True)
class PredictOutputs:
    """Where to stream the outputs (MRC files, written atomically) instead of memory.

    Probabilities go to one file per class, ``<stem>_<class name>.mrc`` next to ``probabilities``.
    """

    labels: Path | None = None
    probabilities: Path | None = None
    uncertainty: Path | None = None
    voxel_size_nm: tuple[float, ...] = (1.0, 1.0, 1.0)
    origin_nm: tuple[float, ...] | None = None

    def probability_paths(self, class_names: tuple[str, ...]) -> list[Path]:
        assert self.probabilities is not None
        p = self.probabilities
        return [p.with_name(f"{p.stem}_{_safe(n)}{p.suffix or '.mrc'}") for n in class_names]


@dataclass(frozen=True, eq=False)
class Prediction:
    """Labels (class ids, uint8), per-class probabilities (float16, classes first) and a
    normalised-entropy uncertainty in [0, 1] (float32); arrays are read-only memmaps when streamed
    to files. A stopped prediction holds no arrays and leaves no files."""

    labels: np.ndarray | None
    probabilities: np.ndarray | None
    uncertainty: np.ndarray | None
    class_ids: tuple[int, ...]
    stopped: bool = False
    tiles: int = 0
    seconds: float = 0.0
    intensity: dict | None = None  # the calibration (or normalisation) applied
    resampled_from_nm: tuple[float, ...] | None = None  # the grid's voxel size, when resampled


def predict(
    image: np.ndarray,
    model: SegmentationModel,
    config: PredictConfig = PredictConfig(),
    *,
    outputs: PredictOutputs | None = None,
    voxel_size_nm: tuple[float, ...] | float | None = None,
    stop: threading.Event | None = None,
) -> Job[Prediction]:
    """Segment ``image`` (z, y, x) with ``model``; yields a progress record per batch of tiles.

    ``voxel_size_nm`` (default: the outputs', else the model's) is the image's: an image whose
    voxels differ from the model's working size is resampled for the network and the results
    come back on the image's grid. Grey levels are calibrated on the image itself (vacuum and
    Li, ``calibration``); ``Prediction.intensity`` records the calibration used.

    Checks the image at once (3D, numeric, finite: ``InputError`` before any work), then returns
    the job. With ``outputs`` the results stream into MRC files (renamed into place only when the
    whole volume is done) and the returned arrays are read-only memmaps of them; otherwise they
    are arrays in memory. ``probabilities`` is a tuple of per-class arrays in ``class_ids`` order.
    """
    check_volume(image, "segment")
    return with_cpu_math(_predict_tiles(image, model, config, outputs, stop, voxel_size_nm))


def check_volume(image: np.ndarray, task: str) -> None:
    """Raise ``InputError`` unless ``image`` is a 3D numeric volume without NaN or infinities.

    Read in slabs whose pages are released after the check, so a memory-mapped tomogram larger
    than RAM is checked in bounded memory.
    """
    if image.ndim != 3:
        raise InputError(f"cannot {task} an array of shape {image.shape}: it needs a 3D volume")
    if image.dtype.kind not in "uif":
        raise InputError(f"cannot {task} an image of type {image.dtype}")
    if image.dtype.kind != "f":
        return
    step = max(1, (16 << 20) // max(1, image[0].nbytes))
    for z in range(0, image.shape[0], step):
        finite = np.isfinite(image[z : z + step]).all()
        release_pages(image, z, z + step)
        if not finite:
            raise InputError("the image holds NaN or infinite values; fix or crop it first")


def _predict_tiles(
    image: np.ndarray,
    model: SegmentationModel,
    config: PredictConfig,
    outputs: PredictOutputs | None,
    stop: threading.Event | None,
    voxel_size_nm: tuple[float, ...] | None,
) -> Job[Prediction]:
    import time
    from dataclasses import replace

    from .missing_wedge import with_wedge_restored
    from .resample import WorkingGrid, needs_resampling

    device = resolve_device(config.device)
    model.to(device)
    out = outputs or PredictOutputs()
    voxel = voxel_size_nm or (outputs.voxel_size_nm if outputs is not None else None)
    working = model.voxel_size_nm
    resampled = needs_resampling(voxel, working)
    calibration = model.normalisation.for_image(image, voxel or working or 1.0)
    if config.tilt_range_deg is not None and getattr(calibration, "wedge", None) is not None:
        calibration = replace(calibration, wedge=replace(calibration.wedge,
                                                         tilt_range_deg=config.tilt_range_deg))
    levels, norm, restored = with_wedge_restored(image, voxel or working or 1.0, calibration)
    names = model.ontology.names
    class_ids = model.class_ids
    want_prob = config.probabilities or out.probabilities is not None
    want_unc = config.uncertainty or out.uncertainty is not None
    started = time.perf_counter()
    source, norm, intensity = _matched_noise(levels, model, norm, voxel or working or 1.0,
                                             working if resampled else None, config.match_noise)
    if restored is not None:  # recorded as the tomogram's own calibration, and what was done
        intensity = {**intensity, **calibration.to_dict(), "restoration": restored.to_dict()}
    network_input = WorkingGrid(source, voxel, working) if resampled else source
    grid = TileGrid.for_volume(
        network_input.shape, config.tile or model.patch_size, config.overlap,
        model.architecture.size_multiple,
    )
    grid_voxel = working if resampled else (voxel or working)
    # A grid of unknown voxel size is taken as 2 nm, the sample's and pre-training's.
    sigma = config.phase_sigma_nm / float(np.mean(grid_voxel or 2.0))

    applied = calibration if restored is not None else norm  # the tomogram's own levels
    files = _OutputFiles(out, (f"napari-cryoli intensity {_calibration_label(applied)}",))
    try:
        labels = files.array(out.labels, image.shape, np.uint8, labels=True)
        prob_paths = out.probability_paths(names) if out.probabilities else [None] * len(names)
        probs = [files.array(p, image.shape, np.float16) for p in prob_paths] if want_prob else None
        unc = files.array(out.uncertainty, image.shape, np.float32) if want_unc else None
        runner = TileRunner(model, config.precision, config.tta, device, sigma)
        done = 0
        events = sliding_window(network_input, grid, runner, norm.apply, len(names),
                                config.batch_size)
        if resampled:
            events = _on_original_grid(events, len(names), network_input.shape, image.shape,
                                       voxel, working)
        for n_tiles, finished in events:
            if finished is None:
                done += n_tiles
                yield Progress(done, grid.n_tiles, f"tile {done}/{grid.n_tiles}")
                if stop_requested(stop):
                    files.close(discard=True)
                    return Prediction(None, None, None, tuple(map(int, class_ids)), True, done,
                                      time.perf_counter() - started, intensity)
                continue
            z0, z1, blended = finished
            labels[z0:z1] = class_ids[np.argmax(blended, axis=0)]
            if probs is not None:
                for c, p in enumerate(probs):
                    p[z0:z1] = blended[c]
            if unc is not None:
                unc[z0:z1] = normalised_entropy(blended)
            for a in (image, labels, unc, *(probs or ())):
                release_pages(a, z0, z1)
    except BaseException:
        files.close(discard=True)
        raise
    del labels, probs, unc  # drop the writable maps before the files are finished
    arrays = files.close(discard=False)
    n = len(names) if want_prob else 0
    return Prediction(
        labels=arrays[0],
        probabilities=tuple(arrays[1 : 1 + n]) if want_prob else None,
        uncertainty=arrays[1 + n] if want_unc else None,
        class_ids=tuple(map(int, class_ids)),
        stopped=False,
        tiles=grid.n_tiles,
        seconds=time.perf_counter() - started,
        intensity=intensity,
        resampled_from_nm=tuple(map(float, np.broadcast_to(voxel, (3,)))) if resampled else None,
    )


def _matched_noise(image: np.ndarray, model: SegmentationModel, norm, voxel, working,
                   match: bool):
    """``image`` with noise matched to the model's training tomograms where asked and needed
    (``segment.noise``), its calibration, and the grey-level record of the prediction, which says
    how much was added. The noisy image is calibrated again: that is what the network reads.
    ``working`` is the network's voxel size where it differs from ``voxel``, else None."""
    from .calibration import Calibration
    from .noise import NoiseAdded, noise_to_add, per_working_voxel, voxel_noise

    trained = model.normalisation
    if not (isinstance(norm, Calibration) and isinstance(trained, Calibration)
            and trained.voxel_noise):
        return image, norm, norm.to_dict()
    unit = norm.li - norm.vacuum
    noise = per_working_voxel(voxel_noise(image, unit), voxel, working)
    add = noise_to_add(trained.voxel_noise, noise) if match else 0.0
    if add:
        image = NoiseAdded(image, add / per_working_voxel(1.0, voxel, working) * abs(unit))
        norm = norm.for_image(image, voxel)
    record = {**norm.to_dict(), "tomogram_voxel_noise": round(noise, 4),
              "model_voxel_noise": trained.voxel_noise, "noise_added": round(add, 4)}
    return image, norm, record


def _on_original_grid(events, n_classes: int, work_shape, shape, voxel, working):
    """The events of a run on the working grid, its finished sections mapped to the original
    grid: the probabilities of the working sections still needed are held (float16), and each
    few original sections are interpolated as soon as the sections they need are finished."""
    from .resample import to_original_grid, working_sections_needed

    held = np.zeros((n_classes, 0, *work_shape[1:]), np.float16)  # sections first, first + 1, ...
    first, z0 = 0, 0  # the first working section held; the next original section to finish
    for n, finished in events:
        if finished is None:
            yield n, None
            continue
        _, r1, blended = finished
        held = np.concatenate([held, blended.astype(np.float16)], axis=1)
        while z0 < shape[0]:
            z1 = min(shape[0], z0 + _FINISH_ROWS)
            lo, hi = working_sections_needed(z0, z1, shape, voxel, working, work_shape[0])
            if hi > r1:
                break
            p = to_original_grid(held, z0, z1, shape, voxel, working, first, work_shape[0])
            yield 0, (z0, z1, p / np.maximum(p.sum(axis=0, keepdims=True), 1e-6))
            z0 = z1
            if z0 < shape[0]:  # drop the sections no later one needs
                lo, _ = working_sections_needed(z0, z0 + 1, shape, voxel, working, work_shape[0])
                held, first = held[:, lo - first :], lo


def _calibration_label(norm) -> str:
    d = norm.to_dict()
    if d.get("kind") == "calibration":
        return f"vacuum {d['vacuum']:.5g} Li {d['li']:.5g} ({d['source']})"
    return f"centre {d['center']:.5g} scale {d['scale']:.5g}"


class _OutputFiles:
    """The outputs of one prediction: arrays in memory, or memmaps of MRC files being written."""

    def __init__(self, outputs: PredictOutputs, notes: tuple[str, ...] = ()) -> None:
        self.outputs = outputs
        self.notes = notes
        self._items: list[tuple[Path | None, object, np.ndarray]] = []

    def array(self, path: Path | None, shape: tuple[int, ...], dtype, labels: bool = False):
        if path is None:
            a = np.zeros(shape, dtype)
            self._items.append((None, None, a))
            return a
        from ..io import open_mrc_for_writing

        cm = open_mrc_for_writing(path, shape, dtype, voxel_size_nm=self.outputs.voxel_size_nm,
                                  origin_nm=self.outputs.origin_nm, labels=labels,
                                  extra_labels=self.notes)
        a = cm.__enter__()
        self._items.append((path, cm, a))
        return a

    def close(self, discard: bool) -> list[np.ndarray | None]:
        """Finish every file (or discard them all); return the final arrays in request order."""
        from ..io import DiscardWrite, read_mrc

        items, self._items = self._items, []
        error: BaseException | None = None
        for path, cm, _ in items:
            if cm is None:
                continue
            try:
                if discard or error is not None:
                    cm.__exit__(DiscardWrite, DiscardWrite(), None)
                else:
                    cm.__exit__(None, None, None)
            except BaseException as e:  # noqa: BLE001 - finish the others, then re-raise
                error = error or e
        if error is not None:
            raise error
        if discard:
            return []
        return [a if path is None else read_mrc(path).data for path, _, a in items]


@dataclass(frozen=True)
class TileGrid:
    """Tile positions over a volume: a Cartesian product of start offsets per axis.

    Starts are spaced ``tile * (1 - overlap)`` apart, the last one flush with the end (the scheme
    MONAI's ``sliding_window_inference`` uses). An axis shorter than the tile gets one tile,
    padded by repeating edge voxels.
    """

    shape: tuple[int, int, int]
    tile: tuple[int, int, int]
    starts: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]

    @classmethod
    def for_volume(cls, shape: tuple[int, ...], tile: int, overlap: float, multiple: int) -> TileGrid:
        tile = max(multiple, tile // multiple * multiple)
        tiles, starts = [], []
        for n in shape:
            t = min(tile, -(-n // multiple) * multiple)  # no bigger than the axis needs
            step = max(1, int(t * (1 - overlap)))
            count = 1 if n <= t else -(-(n - t) // step) + 1
            tiles.append(t)
            starts.append(tuple(sorted({min(i * step, max(n - t, 0)) for i in range(count)})))
        return cls(tuple(shape), tuple(tiles), tuple(starts))  # type: ignore[arg-type]

    @property
    def n_tiles(self) -> int:
        return math.prod(len(s) for s in self.starts)

    def weights(self, axis: int) -> np.ndarray:
        """Gaussian weight along one axis of a tile (sigma = tile / 8, peak 1), as MONAI's."""
        t = self.tile[axis]
        x = np.arange(t, dtype=np.float64) - t // 2
        return np.exp(-0.5 * (x / (0.125 * t)) ** 2).astype(np.float32)

    def normaliser(self, axis: int) -> np.ndarray:
        """Sum of the weights of all tiles covering each position along one axis."""
        n, w = self.shape[axis], self.weights(axis)
        total = np.zeros(n, np.float64)
        for s in self.starts[axis]:
            m = min(len(w), n - s)
            total[s : s + m] += w[:m]
        return total.astype(np.float32)


class TileRunner:
    """The network applied to a batch of normalised tiles: class probabilities, no gradients."""

    def __init__(self, model: SegmentationModel, precision: Precision, tta: bool, device: str,
                 phase_sigma: float = PHASE_SIGMA_NM / 2.0) -> None:
        import torch

        from ..classes import LI, LIH

        self.network = model.network.eval()
        ids = list(map(int, model.class_ids))
        self.phases = (ids.index(LI), ids.index(LIH)) if LI in ids and LIH in ids else None
        self.phase_sigma = phase_sigma
        self.device = torch.device(device)
        self.bf16 = precision == "bf16" or (precision == "auto" and native_bf16(self.device))
        self.flips: list[tuple[int, ...]] = [()] + ([(2,), (3,), (4,)] if tta else [])
        if self.bf16:
            self.network.to(memory_format=torch.channels_last_3d)
        else:
            self.network.to(memory_format=torch.contiguous_format)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(batch).to(self.device)
        if self.bf16:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        total = None
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16,
                                                    enabled=self.bf16):
            for dims in self.flips:
                xi = torch.flip(x, dims) if dims else x
                p = torch.softmax(self.network(xi).float(), dim=1)
                p = torch.flip(p, dims) if dims else p
                total = p if total is None else total + p
            p = total / len(self.flips)
            if self.phases is not None and self.phase_sigma > 0:
                p = pool_phases(p, self.phases, self.phase_sigma)
        return p.cpu().numpy()


def pool_phases(p: torch.Tensor, pair: tuple[int, int], sigma: float) -> torch.Tensor:
    """Class probabilities (batch, classes, z, y, x) with the evidence between two phases pooled.

    The log-odds of ``pair[1]`` over ``pair[0]`` are averaged over a Gaussian of ``sigma`` voxels,
    weighted by each voxel's probability of being either phase, so that other classes and the
    tile's edges do not dilute them. Each voxel keeps its probability of being one of the two.
    """
    import torch

    a, b = pair
    either = p[:, a : a + 1] + p[:, b : b + 1]
    log_odds = torch.log(p[:, b : b + 1].clamp_min(1e-6)) - torch.log(p[:, a : a + 1].clamp_min(1e-6))
    smooth = _smoothing(sigma)
    pooled = smooth.blur(either * log_odds, sigma) / smooth.blur(either, sigma).clamp_min(1e-6)
    out = p.clone()
    out[:, b : b + 1] = either * torch.sigmoid(pooled)
    out[:, a : a + 1] = either - out[:, b : b + 1]
    return out


@functools.lru_cache(maxsize=4)
def _smoothing(sigma: float):
    """One blur per sigma, so that its banded matrices are built once, not once per tile."""
    from .network import GaussianSmoothing

    return GaussianSmoothing((sigma,))


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 runs natively (GPU, or CPU with AVX-512 BF16 / AMX) rather than emulated."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


#: Sections finished at once: bounds the float32 temporaries to classes x 4 x Y x X.
_FINISH_ROWS = 4


def sliding_window(
    image: np.ndarray,
    grid: TileGrid,
    runner,
    normalise,
    n_classes: int,
    batch_size: int,
):
    """Run ``runner`` over every tile of ``grid`` and blend; a generator of events.

    Yields ``(n, None)`` after each batch of ``n`` tiles and ``(0, (z0, z1, probabilities))``
    for each run of finished z-sections (float32, classes first), in order along z.
    """
    Z, Y, X = grid.shape
    tz, ty, tx = grid.tile
    # Each tile's weight is divided in advance by the total weight of all tiles at each voxel
    # (both separable), so the buffer sums finished probabilities directly: values stay in [0, 1],
    # where half floats are precise enough, even at corners where the raw Gaussian is ~1e-11.
    weights = [grid.weights(a) for a in range(3)]
    totals = [grid.normaliser(a) for a in range(3)]
    acc = np.zeros((n_classes, tz, Y, X), np.float16)  # z rows [base, base + tz)
    base = 0
    positions = [(y, x) for y in grid.starts[1] for x in grid.starts[2]]
    zs = grid.starts[0]
    for k, z0 in enumerate(zs):
        for b in range(0, len(positions), batch_size):
            batch = positions[b : b + batch_size]
            blocks, extents = [], []
            for y0, x0 in batch:
                block = np.asarray(image[z0 : z0 + tz, y0 : y0 + ty, x0 : x0 + tx])
                extents.append(block.shape)
                block = normalise(block)
                if block.shape != grid.tile:
                    pad = [(0, t - s) for t, s in zip(grid.tile, block.shape)]
                    block = np.pad(block, pad, mode="edge")
                blocks.append(block)
            probs = runner(np.stack(blocks)[:, None])
            for (y0, x0), (dz, dy, dx), p in zip(batch, extents, probs):
                w = [weights[a][:d] / totals[a][s : s + d]
                     for a, (s, d) in enumerate(zip((z0, y0, x0), (dz, dy, dx)))]
                w3 = w[0][:, None, None] * w[1][None, :, None] * w[2]
                target = acc[:, z0 - base : z0 - base + dz, y0 : y0 + dy, x0 : x0 + dx]
                np.add(target, p[:, :dz, :dy, :dx] * w3, out=target, casting="same_kind")
            yield len(batch), None
        z_next = zs[k + 1] if k + 1 < len(zs) else Z
        for r0 in range(base, z_next, _FINISH_ROWS):
            r1 = min(r0 + _FINISH_ROWS, z_next)
            yield 0, (r0, r1, acc[:, r0 - base : r1 - base].astype(np.float32))
        n = z_next - base
        acc[:, : tz - n] = acc[:, n:]
        acc[:, tz - n :] = 0
        base = z_next


def normalised_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy of class probabilities (classes first) divided by its maximum: 0 sure, 1 unsure."""
    q = np.clip(p, 1e-7, 1.0)
    h = -np.sum(q * np.log(q), axis=0)
    return (h / np.log(p.shape[0])).astype(np.float32)


def release_pages(array: np.ndarray | None, z0: int, z1: int) -> None:
    """Let the kernel drop the resident pages of sections ``z0:z1`` of a file-backed memmap.

    Pages of a memory-mapped file count in the process's resident memory until unmapped; a
    prediction reads and writes each section once, so dropping them keeps memory bounded on
    volumes larger than RAM. Writes are kept: for a shared (or read-only) file mapping the page
    cache holds the data. Private copy-on-write maps and plain arrays are left alone.
    """
    mm = getattr(array, "_mmap", None)
    if mm is None or getattr(array, "mode", "c") not in ("r", "r+", "readonly", "readwrite"):
        return
    block = array[z0:z1]
    if block.size == 0 or not block.flags.c_contiguous:
        return
    start_of_map = np.frombuffer(mm, np.uint8).ctypes.data
    page = mmap.PAGESIZE
    lo = block.ctypes.data - start_of_map
    hi = lo + block.nbytes
    lo = -(-lo // page) * page
    hi = hi // page * page
    if hi > lo:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
