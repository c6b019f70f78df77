"""Training patches from sparse labels: where to cut them, the validation split, augmentation.

Pure numpy. Labels are painted on a few slices in any orientation, so patches are centred (with
jitter) on painted voxels, picking the class first so that rare classes (a few dozen Cu voxels)
are seen as often as the background strokes. The validation set is whole blocks of painted voxels
held out of the loss: neighbouring voxels of one stroke are too alike to tell overfitting apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Label value of voxels that do not count in the loss (not painted, or held out).
IGNORE = -1

#: Classes with fewer painted voxels than this are never held out for validation.
MIN_VOXELS_TO_VALIDATE = 200


@dataclass(frozen=True)
class SparseLabels:
    """Painted voxels as coordinates and class channels (index into the ontology's classes)."""

    shape: tuple[int, int, int]
    coords: np.ndarray  # (n, 3) int32
    channel: np.ndarray  # (n,) int8
    is_val: np.ndarray  # (n,) bool

    @classmethod
    def from_labels(
        cls,
        labels: np.ndarray,
        lut: np.ndarray,
        *,
        val_fraction: float,
        block: int,
        rng: np.random.Generator,
    ) -> SparseLabels:
        """Index the painted voxels of ``labels``; ``lut`` maps label ids to channels (-1: none)."""
        coords_list, channel_list = [], []
        for z in range(labels.shape[0]):  # slice by slice: never a full-volume temporary
            section = np.asarray(labels[z])
            yx = np.nonzero(section)
            if yx[0].size:
                coords_list.append(np.column_stack([np.full(yx[0].size, z), *yx]).astype(np.int32))
                channel_list.append(lut[section[yx]].astype(np.int8))
        coords = np.concatenate(coords_list) if coords_list else np.zeros((0, 3), np.int32)
        channel = np.concatenate(channel_list) if channel_list else np.zeros(0, np.int8)
        is_val = _validation_blocks(coords, channel, val_fraction, block, rng)
        return cls(tuple(labels.shape), coords, channel, is_val)  # type: ignore[arg-type]

    def counts(self, n_classes: int, which: str = "all") -> np.ndarray:
        mask = {"all": slice(None), "train": ~self.is_val, "val": self.is_val}[which]
        return np.bincount(self.channel[mask], minlength=n_classes)

    def dense(self, start: tuple[int, int, int], size: tuple[int, int, int], which: str) -> np.ndarray:
        """The painted channels of one box (``IGNORE`` elsewhere), train or validation voxels."""
        out = np.full(size, IGNORE, np.int64)
        keep = ~self.is_val if which == "train" else self.is_val
        rel = self.coords - np.asarray(start)
        inside = keep & np.all((rel >= 0) & (rel < np.asarray(size)), axis=1)
        r = rel[inside]
        out[r[:, 0], r[:, 1], r[:, 2]] = self.channel[inside]
        return out


def _validation_blocks(
    coords: np.ndarray, channel: np.ndarray, fraction: float, block: int, rng: np.random.Generator
) -> np.ndarray:
    is_val = np.zeros(len(coords), bool)
    if fraction <= 0 or len(coords) == 0:
        return is_val
    keys = coords // block
    _, block_of = np.unique(keys, axis=0, return_inverse=True)
    block_of = block_of.ravel()
    n_blocks = block_of.max() + 1
    chosen = rng.random(n_blocks) < fraction
    is_val = chosen[block_of]
    for c in np.unique(channel):
        mine = channel == c
        n, n_val = mine.sum(), (mine & is_val).sum()
        # Rare classes stay whole for training; no class loses more than twice its share.
        if n < MIN_VOXELS_TO_VALIDATE or n_val > 2 * fraction * n or n_val == n:
            is_val[mine] = False
    return is_val


@dataclass(frozen=True)
class PatchSampler:
    """Cuts training boxes around painted voxels of a balanced choice of classes."""

    labels: SparseLabels
    patch: int

    def box(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """Start of a box containing a painted training voxel of a random class."""
        train = ~self.labels.is_val
        present = np.unique(self.labels.channel[train])
        c = rng.choice(present)
        candidates = np.flatnonzero(train & (self.labels.channel == c))
        centre = self.labels.coords[rng.choice(candidates)]
        jitter = rng.integers(self.patch // 4, 3 * self.patch // 4 + 1, size=3)
        start = centre - jitter
        limit = np.maximum(np.asarray(self.labels.shape) - self.patch, 0)
        return tuple(int(v) for v in np.clip(start, 0, limit))  # type: ignore[return-value]

    def covering_boxes(self, which: str, max_boxes: int, rng: np.random.Generator) -> list:
        """Up to ``max_boxes`` box starts that together cover many ``which`` voxels."""
        mask = self.labels.is_val if which == "val" else ~self.labels.is_val
        remaining = self.labels.coords[mask]
        limit = np.maximum(np.asarray(self.labels.shape) - self.patch, 0)
        boxes = []
        while len(remaining) and len(boxes) < max_boxes:
            centre = remaining[rng.integers(len(remaining))]
            start = np.clip(centre - self.patch // 2, 0, limit)
            boxes.append(tuple(int(v) for v in start))
            inside = np.all((remaining >= start) & (remaining < start + self.patch), axis=1)
            remaining = remaining[~inside]
        return boxes


def read_box(image: np.ndarray, start: tuple[int, int, int], size: int) -> np.ndarray:
    """A cube of ``image`` (float32), edge-padded where the volume is smaller than the cube."""
    block = np.asarray(image[tuple(slice(s, s + size) for s in start)], dtype=np.float32)
    if block.shape != (size,) * 3:
        block = np.pad(block, [(0, size - n) for n in block.shape], mode="edge")
    return block


def pad_target(target: np.ndarray, size: int) -> np.ndarray:
    if target.shape == (size,) * 3:
        return target
    return np.pad(target, [(0, size - n) for n in target.shape], constant_values=IGNORE)


@dataclass(frozen=True)
class Jitter:
    """Ranges of the intensity augmentation, in normalised grey levels: the log of the gain is
    drawn from ``±log_gain``, the offset from ``±offset``, and the noise s.d. from ``[0, noise]``."""

    log_gain: float
    offset: float
    noise: float


#: Pre-training on phantoms of varied physics: grey levels differ between tomograms.
ACROSS_TOMOGRAMS = Jitter(0.3, 0.2, 0.1)
#: Training on one tomogram's strokes. Li and LiH differ by ~0.12 normalised units, so the
#: jitter above would relabel one as the other from batch to batch; each tomogram is already
#: normalised by its own statistics.
WITHIN_TOMOGRAM = Jitter(0.05, 0.03, 0.05)


def augment(
    image: np.ndarray, target: np.ndarray, rng: np.random.Generator,
    jitter: Jitter = ACROSS_TOMOGRAMS,
) -> tuple[np.ndarray, np.ndarray]:
    """Random geometry that respects the missing wedge, and random contrast and noise.

    Flips of any axis and quarter turns in the x-y plane keep the wedge along z; rotating z into
    x or y would show the network blur it never sees in real tomograms. Contrast, offset and noise
    vary within ``jitter`` because grey levels differ between tomograms.
    """
    for axis in range(3):
        if rng.random() < 0.5:
            image, target = np.flip(image, axis), np.flip(target, axis)
    k = int(rng.integers(4))
    if k:
        image, target = np.rot90(image, k, axes=(1, 2)), np.rot90(target, k, axes=(1, 2))
    gain = np.exp(rng.uniform(-jitter.log_gain, jitter.log_gain))
    offset = rng.uniform(-jitter.offset, jitter.offset)
    noise = rng.uniform(0.0, jitter.noise)
    image = image * np.float32(gain) + np.float32(offset)
    if noise:
        image = image + rng.normal(0.0, noise, image.shape).astype(np.float32)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(target)
