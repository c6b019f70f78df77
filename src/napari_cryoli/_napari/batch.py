"""The Batch dock widget: many tomograms predicted and measured on a Dask cluster, one table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..dataset.batch import BatchConfig, BatchResult, batch_on_cluster, plan_batch
from ..errors import CryoliError, InputError
from ..jobs import Progress
from .figures import FigurePanel
from .job_controls import JobControls
from .worker import report_error

if TYPE_CHECKING:
    import napari

COLUMNS = ("tomogram", "condition", "status", "dendrites", "seconds", "error")
_CONDITION = COLUMNS.index("condition")


class BatchWidget(QWidget):
    """Gather tomograms, conditions, a model and a folder; run the batch in a worker; show each
    tomogram's fate, open its segmentation, compare the conditions."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.result: BatchResult | None = None
        self.comparison = None
        self._paths: list[Path] = []

        from ..segment.pretrained import pretrained_path

        shipped = pretrained_path()
        self.model_edit = QLineEdit(str(shipped) if shipped else "")
        self.model_edit.setToolTip("Model file (.pt); the shipped pre-trained model by default")
        self.out_edit = QLineEdit()
        self.out_edit.setToolTip("Folder for <name>.seg.mrc, <name>.report.json and dataset.csv")
        self.condition_edit = QLineEdit()
        self.condition_edit.setPlaceholderText("e.g. fresh, 24h, 7d")
        self.condition_edit.setToolTip("Condition given to the tomograms added next (edit a "
                                       "row's condition in the table)")
        self.workers = QSpinBox(minimum=1, maximum=max(1, os.cpu_count() or 1), value=min(
            2, os.cpu_count() or 1))
        self.workers.setToolTip("Worker processes of the local Dask cluster")
        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setPlaceholderText("local cluster")
        self.scheduler_edit.setToolTip("Address of a running Dask scheduler (tcp://host:8786); "
                                       "empty: a local cluster")
        self.add_button = QPushButton("Add tomograms…")
        self.remove_button = QPushButton("Remove selected")
        self.controls = JobControls(
            napari_viewer, "Run batch",
            start_tip="Predict and measure every tomogram not done yet",
            stop_tip="Cancel the tomograms not finished (a rerun completes them)",
            status="Add tomograms, choose an output folder and press Run batch.")
        self.run_button, self.status = self.controls.start_button, self.controls.status
        self.controls.progress.setFormat("%v/%m tomograms")
        self.dashboard = QLabel("")
        self.dashboard.setOpenExternalLinks(True)
        self.dashboard.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.controls.layout().insertWidget(2, self.dashboard)  # between the bar and the status

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setMinimumHeight(120)
        self.table.setToolTip("Double-click a row to open its segmentation")
        self.open_button = QPushButton("Open segmentation")
        self.compare_button = QPushButton("Compare conditions")
        self.compare_button.setToolTip("Bootstrap intervals and tests per condition, from "
                                       "dataset.csv; written to <folder>/compare")
        for b in (self.open_button, self.compare_button):
            b.setEnabled(False)
        self.plot = FigurePanel()
        self.plot.canvas.setMinimumHeight(380)

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        layout.addLayout(row)
        form = QFormLayout()
        form.addRow("Condition", self.condition_edit)
        form.addRow("Model", _with_browse(self.model_edit, self._browse_model))
        form.addRow("Output folder", _with_browse(self.out_edit, self._browse_out))
        form.addRow("Workers", self.workers)
        form.addRow("Scheduler", self.scheduler_edit)
        layout.addLayout(form)
        layout.addWidget(self.controls)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.compare_button)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)

        self.add_button.clicked.connect(self._add_dialog)
        self.remove_button.clicked.connect(self._remove_selected)
        self.run_button.clicked.connect(self.start)
        self.open_button.clicked.connect(self._open_selected)
        self.compare_button.clicked.connect(self.compare)
        self.table.cellDoubleClicked.connect(lambda row, _: self.open_segmentation(row))

    # --- inputs -----------------------------------------------------------------------------

    def add_tomograms(self, paths: list[str | Path], condition: str | None = None) -> None:
        """Add rows for ``paths`` (already listed ones are skipped) with ``condition``."""
        condition = self.condition_edit.text().strip() if condition is None else condition
        for path in map(Path, paths):
            if path.absolute() in self._paths:
                continue
            self._paths.append(path.absolute())
            row = self.table.rowCount()
            self.table.insertRow(row)
            shown = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
            for col, text in enumerate((shown, condition, "", "", "", "")):
                item = QTableWidgetItem(text)
                if col != _CONDITION:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, col, item)
            self.table.item(row, 0).setToolTip(str(path))

    def conditions(self) -> list[str]:
        rows = range(self.table.rowCount())
        return [self.table.item(r, _CONDITION).text().strip() for r in rows]

    def _add_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add tomograms", "",
                                                "Tomograms (*.mrc *.rec *.map *.mrc.gz)")
        self.add_tomograms(paths)

    def _remove_selected(self) -> None:
        for row in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(row)
            del self._paths[row]

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model", "", "Model (*.pt)")
        if path:
            self.model_edit.setText(path)

    def _browse_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.out_edit.setText(path)

    # --- running ----------------------------------------------------------------------------

    def start(self) -> Any:
        """Run the batch in a worker thread; returns the job handle (None if refused)."""
        try:
            if not self._paths:
                raise InputError("add tomograms first")
            if not self.out_edit.text().strip():
                raise InputError("choose an output folder")
            conditions = {str(p): c for p, c in zip(self._paths, self.conditions())}
            self.items = plan_batch(self._paths, conditions=conditions)
            config = BatchConfig(model=Path(self.model_edit.text().strip()).absolute(),
                                 out_dir=Path(self.out_edit.text().strip()).absolute())
        except CryoliError as e:
            report_error(e, "Batch")
            return None
        scheduler = self.scheduler_edit.text().strip() or None
        workers = self.workers.value()
        items = self.items
        self.config = config
        handle = self.controls.run(
            "Batch", lambda stop: batch_on_cluster(items, config, workers, scheduler, stop),
            on_progress=self._on_progress, on_result=self.show_result)
        if handle is not None:
            self.controls.progress.setMaximum(len(items))
            self.status.setText("starting the cluster…")
        return handle

    def _on_progress(self, p: Progress) -> None:
        link = p.metrics.get("dashboard")
        if link:
            self.dashboard.setText(f'Dask dashboard: <a href="{link}">{link}</a>')
        self.status.setText(p.message)

    def show_result(self, result: BatchResult) -> None:
        """Fill the table with each tomogram's status; enable opening and comparing."""
        self.result = result
        for row, r in enumerate(result.results):
            n = "" if r.status in ("failed", "not run") else str(r.n_dendrites or "")
            self.table.item(row, 0).setText(r.item.name)
            values = (r.status, n, f"{r.seconds:.1f}" if r.seconds else "", r.error)
            for col, text in zip(range(2, len(COLUMNS)), values):
                self.table.item(row, col).setText(text)
            self.table.item(row, COLUMNS.index("error")).setToolTip(r.error)
        self.table.resizeColumnsToContents()
        what = (f"{result.count('done')} done, {result.count('skipped')} already done, "
                f"{result.count('failed')} failed, {result.count('not run')} not run")
        self.status.setText(f"{what}; table: {result.table}")
        self.open_button.setEnabled(True)
        self.compare_button.setEnabled(result.count("done") + result.count("skipped") > 0)

    # --- results ----------------------------------------------------------------------------

    def open_segmentation(self, row: int) -> Any:
        """Add the segmentation of table row ``row`` as a Labels layer on its own grid."""
        from ..io import read_labels
        from .layers import volume_layer_data

        if self.result is None or row >= len(self.result.results):
            return None
        r = self.result.results[row]
        path = r.item.segmentation(self.config.out_dir)
        if r.status not in ("done", "skipped") or not path.exists():
            show_info(f"{r.item.name} has no segmentation ({r.status})")
            return None
        try:
            data, kwargs, _ = volume_layer_data(read_labels(path), name=f"{r.item.name} seg")
        except CryoliError as e:
            report_error(e, "Batch")
            return None
        return self.viewer.add_labels(data, **kwargs)

    def _open_selected(self) -> None:
        for row in sorted({i.row() for i in self.table.selectedIndexes()}):
            self.open_segmentation(row)

    def compare(self) -> Any:
        """Compare the conditions of the dataset table in a worker; the plot shows here."""
        from ..dataset.statistics import CompareConfig, compare, write_comparison

        if self.result is None:
            return None
        table, out = self.result.table, self.result.table.parent / "compare"

        def job(stop):
            result = yield from compare(table, CompareConfig(), stop=stop)
            if result is not None:
                write_comparison(result, out)
            return result

        return self.controls.run("Comparison", job, on_result=self._show_comparison,
                                 progress_format="comparison %p%")

    def _show_comparison(self, result) -> None:
        from ..dataset.statistics import comparison_figure

        if result is None:
            return
        self.comparison = result
        self.plot.show_figure(comparison_figure(result, columns=2))
        self.status.setText("; ".join(result.headline()[:1]) + " (all in compare/)")


def _with_browse(edit: QLineEdit, browse) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    button = QPushButton("…")
    button.setMaximumWidth(30)
    button.clicked.connect(browse)
    row.addWidget(button)
    return box
