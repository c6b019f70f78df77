"""Start, stop, progress and status: how every panel runs its long jobs (``jobs.py`` protocol)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qtpy.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..jobs import Progress
from .status import StatusLabel
from .worker import JobHandle, start_job


class JobControls(QWidget):
    """A start button and a stop button, a progress bar and a status line for one panel's jobs.

    ``run`` starts a job in a worker (one per viewer, see ``worker.start_job``): the start buttons
    are disabled and Stop enabled until it finishes, the bar follows its ``Progress`` records, and
    Stop asks it to stop. Without a ``start`` text the panel has its own start buttons (given as
    ``also_disable``) and the bar sits beside Stop; without a ``status`` text there is no line.
    """

    def __init__(
        self,
        viewer: Any,
        start: str | None,
        *,
        start_tip: str = "",
        stop_tip: str = "",
        progress_tip: str = "",
        status: str | None = None,
        stopping: str = "",
        also_disable: Sequence[QWidget] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.job: JobHandle | None = None
        self._stopping = stopping
        self.start_button = QPushButton(start) if start is not None else None
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(stop_tip)
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setToolTip(progress_tip)
        self.status = StatusLabel(status) if status is not None else None
        self._busy = [b for b in (self.start_button, *also_disable) if b is not None]

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        if self.start_button is not None:
            self.start_button.setToolTip(start_tip)
            row.addWidget(self.start_button)
            row.addWidget(self.stop_button)
            layout.addLayout(row)
            layout.addWidget(self.progress)
        else:
            row.addWidget(self.progress, 1)
            row.addWidget(self.stop_button)
            layout.addLayout(row)
        if self.status is not None:
            layout.addWidget(self.status)
        self.stop_button.clicked.connect(self.stop)

    def run(
        self,
        name: str,
        job_factory: Callable[[Any], Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_finish: Callable[[], None] | None = None,
        progress_format: str | None = None,
    ) -> JobHandle | None:
        """Start ``job_factory(stop)`` in a worker; the handle, or None when another job runs.

        ``progress_format`` labels the bar for this job only (a panel running jobs of two kinds).
        """
        panel_format = self.progress.format()

        def progress(p: Progress) -> None:
            if p.total:
                self.progress.setMaximum(p.total)
                self.progress.setValue(min(p.done, p.total))
            if on_progress is not None:
                on_progress(p)

        def finished() -> None:
            self.job = None
            self.progress.setFormat(panel_format)
            for button in self._busy:
                button.setEnabled(True)
            self.stop_button.setEnabled(False)
            if on_finish is not None:
                on_finish()

        handle = start_job(self.viewer, name, job_factory, owner=self, on_progress=progress,
                           on_result=on_result, on_finish=finished)
        if handle is not None:
            self.job = handle
            for button in self._busy:
                button.setEnabled(False)
            self.stop_button.setEnabled(True)
            self.progress.setValue(0)
            if progress_format is not None:
                self.progress.setFormat(progress_format)
        return handle

    def stop(self) -> None:
        """Ask the running job to stop after its current step."""
        if self.job is not None:
            self.job.stop()
            if self._stopping and self.status is not None:
                self.status.setText(self._stopping)
