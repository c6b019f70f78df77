"""Painting labels, without Qt: voxels per class kept up to date stroke by stroke, and when to
autosave (a while after the last stroke, one save at a time). The Annotate and Workflow panels are
views over these; tests drive them with a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import numpy as np

from .classes import slab_counts

T = TypeVar("T")

#: Seconds after the last stroke before the labels are autosaved.
AUTOSAVE_DELAY_S = 3.0


def touched_rows(history_item: list, n_rows: int) -> tuple[int, int]:
    """The range of indices along axis 0 that a napari paint-history item changed."""
    lo, hi = n_rows, 0
    for atom in history_item:
        key = getattr(atom, "slice_key", None)
        if key is not None:  # a masked paint atom: a bounding box of slices
            start, stop, _ = key[0].indices(n_rows)
        else:  # a (indices, old values, new value) atom
            rows = np.asarray(atom[0][0])
            if rows.size == 0:
                continue
            start, stop = int(rows.min()), int(rows.max()) + 1
        lo, hi = min(lo, start), max(hi, stop)
    return (0, n_rows) if hi <= lo else (lo, hi)


class ClassCounts:
    """Voxels per label id, kept per index along axis 0 so that a stroke recounts only the
    slices it touched."""

    def __init__(self) -> None:
        self.rows = np.zeros((0, 256), dtype=np.int64)
        self._dirty: tuple[int, int] | None = None  # None: nothing to recount; (0, 0): all

    def recount(self, data: np.ndarray | None) -> None:
        """Count every slice of ``data`` now (no data: nothing painted)."""
        self._dirty = None
        self.rows = slab_counts(data) if data is not None else np.zeros((0, 256), np.int64)

    def touch(self, lo: int = 0, hi: int = 0) -> None:
        """Slices ``lo:hi`` changed (``hi <= lo``: the whole volume); counted by :meth:`update`."""
        if hi <= lo or self._dirty == (0, 0):
            self._dirty = (0, 0)
        elif self._dirty is None:
            self._dirty = (lo, hi)
        else:
            self._dirty = (min(lo, self._dirty[0]), max(hi, self._dirty[1]))

    def update(self, data: np.ndarray) -> bool:
        """Recount the slices touched since the last update; False when there were none."""
        if self._dirty is None:
            return False
        (lo, hi), self._dirty = self._dirty, None
        n = data.shape[0] if data.ndim > 2 else 1
        if hi <= lo or self.rows.shape[0] != n:
            self.recount(data)
        else:
            self.rows[lo:hi] = slab_counts(data, lo, hi)
        return True

    def totals(self, ids: Iterable[int]) -> dict[int, int]:
        """Painted voxels of each of ``ids``."""
        totals = self.rows.sum(axis=0)
        return {i: int(totals[i]) for i in ids}


class AutosaveScheduler(Generic[T]):
    """When to save what: ``delay_s`` after the last stroke, one save at a time.

    ``T`` is whatever names the labels to save (the Annotate panel: its labels and image layers).
    The view asks :meth:`wait_s` to arm a timer, and :meth:`take` when it fires or a save ends;
    strokes made while a save runs are saved after it. ``clock`` (seconds) is replaceable.
    """

    def __init__(self, delay_s: float = AUTOSAVE_DELAY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.delay_s = delay_s
        self.clock = clock
        self.pending: T | None = None
        self.saving = False
        self._due = 0.0

    def stroke(self, target: T) -> None:
        """``target`` changed: save it ``delay_s`` from now (a later stroke postpones it)."""
        self.pending, self._due = target, self.clock() + self.delay_s

    def save_soon(self, target: T) -> None:
        """Save now: what is pending, else ``target``."""
        if self.pending is None:
            self.pending = target
        self._due = self.clock()

    def wait_s(self) -> float | None:
        """Seconds until the pending save is due (0: now); None when nothing is pending or a save
        is running (its end is the next moment to ask)."""
        if self.pending is None or self.saving:
            return None
        return max(self._due - self.clock(), 0.0)

    def take(self) -> T | None:
        """What to save now, marking a save as running; None when nothing is due."""
        if self.wait_s() != 0.0:
            return None
        target, self.pending, self.saving = self.pending, None, True
        return target

    def finished(self) -> None:
        """The running save ended (saved or failed)."""
        self.saving = False

    def flush(self) -> T | None:
        """What is pending, at once, to be saved on the caller's thread (napari is closing, or
        the labels are going); nothing stays pending."""
        target, self.pending = self.pending, None
        return target
