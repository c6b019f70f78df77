"""Long work as generators: the one protocol the GUI, the command line and tests share.

A job is a generator that yields :class:`Progress` records between steps and returns its result.
It takes an optional :class:`threading.Event` named ``stop``; when the event is set the job
finishes its current step, cleans up (no half-written outputs) and returns early, its result
saying it was stopped. napari's ``thread_worker`` runs such a generator off the GUI thread; the
command line drives it with :func:`run_job` and a text progress bar.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Progress:
    """One progress record: ``done`` of ``total`` steps (``total`` 0 when unknown)."""

    done: int
    total: int = 0
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


Job = Generator[Progress, None, R]


def stop_requested(stop: threading.Event | None) -> bool:
    """True when ``stop`` is set (a ``None`` event never stops)."""
    return stop is not None and stop.is_set()


def run_job(
    job: Job[R],
    on_progress: Callable[[Progress], None] | None = None,
) -> R:
    """Drive a job to the end and return its result."""
    while True:
        try:
            record = next(job)
        except StopIteration as done:
            return done.value
        if on_progress is not None:
            on_progress(record)


class TextProgressBar:
    """A one-line progress bar on a stream (stderr), redrawn at most every 0.2 s."""

    def __init__(self, label: str, stream: Any = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._last = 0.0
        self._started = time.monotonic()
        self._drawn = False

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last < 0.2 and p.done != p.total:
            return
        self._last = now
        elapsed = now - self._started
        if p.total:
            filled = int(self.width * min(p.done, p.total) / p.total)
            bar = "#" * filled + "-" * (self.width - filled)
            head = f"{self.label} [{bar}] {p.done}/{p.total}"
        else:
            head = f"{self.label} {p.done}"
        text = f"\r{head} {elapsed:6.1f}s {p.message}"[:160]
        self.stream.write(text.ljust(100))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:  # a job that failed before its first record leaves no empty line
            self.stream.write("\n")
            self.stream.flush()
