"""The Measure dock widget: SEI thickness overlays, dendrite/particle table, plots, export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..errors import CryoliError
from ..measure.overlays import MeasuredOverlays, measure_with_overlays
from ..measure.plots import compare_conditions, lih_fraction_per_dendrite, thickness_histograms
from ..measure.report import MeasureSettings, Report, read_report, write_report
from ..measure.view import TABLE_COLUMNS, summary_text, table_rows
from ..settings import spin_box_options
from . import layers as L
from .figures import FigurePanel
from .job_controls import JobControls
from .pickers import LayerPicker
from .worker import report_error

if TYPE_CHECKING:
    import napari

THICKNESS_IMAGE = "SEI thickness (nm)"
THICKNESS_SURFACE = "SEI thickness 3D (nm)"  # the metal surface, coloured
DENDRITES = "dendrites"


class MeasureWidget(QWidget):
    """Measure a segmentation in a worker and show the results as layers, a table and plots."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.result: MeasuredOverlays | None = None
        self._source: Labels | None = None

        self.labels_picker = LayerPicker(napari_viewer, Labels, self)
        self.labels_picker.setToolTip("The segmentation to measure: the prediction or any labels")
        self.threshold = QDoubleSpinBox(
            decimals=1, **spin_box_options(MeasureSettings, "extended_threshold_nm"))
        self.threshold.setSuffix(" nm")
        self.threshold.setToolTip("SEI thicker than this at a point counts as extended SEI")
        self.controls = JobControls(
            napari_viewer, "Measure", start_tip="Measure SEI thickness, LiH fraction, dendrites "
            "and Cu particles in the background",
            stop_tip="Stop the measurement (nothing is shown) or the mesh export (nothing is "
                     "written)",
            progress_tip="Measurement steps done",
            status="Pick a segmentation (prediction or labels) and press Measure.")
        self.measure_button, self.summary = self.controls.start_button, self.controls.status
        self.controls.progress.setFormat("%p%  %v/%m")

        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels([heading for heading, _ in TABLE_COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(False)
        self.table.setMinimumHeight(90)
        self.table.setToolTip("Click a row to centre the view on that object")

        self.histogram_panel = FigurePanel()
        self.fraction_panel = FigurePanel()
        self.plots = QTabWidget()
        self.plots.addTab(self.histogram_panel, "SEI thickness: Li vs LiH")
        self.plots.addTab(self.fraction_panel, "LiH fraction per dendrite")

        self.export_json_button = QPushButton("Export JSON…")
        self.export_json_button.setToolTip("Write the whole report (every number, in nm) as JSON")
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.setToolTip("Write the dendrite table as CSV")
        self.compare_button = QPushButton("Compare reports…")
        self.compare_button.setToolTip("Plot saved reports (e.g. fresh, 24 h, 7 d) side by side")
        self.export_mesh_button = QPushButton("Export meshes…")
        self.export_mesh_button.setToolTip("One mesh per class in Å on the map's grid (GLB: metal "
                                           "coloured by SEI thickness; OBJ/STL) and a ChimeraX "
                                           "command file")
        self.exported: list[Path] = []  # files written by export(), newest last
        for button in (self.export_json_button, self.export_csv_button, self.export_mesh_button):
            button.setEnabled(False)

        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Segmentation", self.labels_picker)
        form.addRow("Extended SEI above", self.threshold)
        layout.addLayout(form)
        layout.addWidget(self.controls)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.plots, 2)
        row = QHBoxLayout()
        row.addWidget(self.export_json_button)
        row.addWidget(self.export_csv_button)
        row.addWidget(self.export_mesh_button)
        row.addWidget(self.compare_button)
        layout.addLayout(row)

        self.measure_button.clicked.connect(self.start)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        self.export_json_button.clicked.connect(lambda: self._export("json"))
        self.export_csv_button.clicked.connect(lambda: self._export("csv"))
        self.export_mesh_button.clicked.connect(self._export_meshes_dialog)
        self.compare_button.clicked.connect(self._compare_dialog)

    # --- running ----------------------------------------------------------------------------

    def start(self) -> Any:
        """Measure the picked segmentation in a worker; returns the job handle (None if refused)."""
        layer = self.labels_picker.layer()
        if layer is None:
            show_info("Pick a segmentation layer to measure")
            return None
        if layer.data.ndim != 3:
            report_error(CryoliError("measurements need a 3D segmentation"), "Measure")
            return None
        try:
            settings = MeasureSettings(extended_threshold_nm=self.threshold.value())
        except CryoliError as e:
            report_error(e, "Measure")
            return None
        labels = np.array(layer.data, dtype=np.uint8)  # the worker gets its own copy
        voxel = L.voxel_size_nm(layer)
        file_notes = L.file_warnings(layer)  # what the file said, as the CLI's report says it
        self._source = layer
        return self.controls.run(
            "Measurement",
            lambda stop: measure_with_overlays(labels, voxel, settings, stop, file_notes),
            on_progress=lambda p: self.controls.progress.setFormat(f"%p%  {p.message}"),
            on_result=self.show_result)

    # --- results ----------------------------------------------------------------------------

    def show_result(self, result: MeasuredOverlays) -> None:
        """Put a measurement into layers, the table and the plots (GUI thread)."""
        self.result = result
        report = result.report
        if report.stopped:
            self.summary.setText("Stopped: nothing measured.")
            return
        source = self._source
        grid = {"scale": source.scale, "translate": source.translate} if source else {}
        self._replace_layers(result, grid)
        self.summary.setText(summary_text(report))
        self._fill_table(report)
        self.histogram_panel.show_figure(thickness_histograms(report))
        self.fraction_panel.show_figure(lih_fraction_per_dendrite(report))
        for button in (self.export_json_button, self.export_csv_button, self.export_mesh_button):
            button.setEnabled(True)

    def _replace_layers(self, result: MeasuredOverlays, grid: dict) -> None:
        for name in (THICKNESS_IMAGE, THICKNESS_SURFACE, DENDRITES):
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
        if result.dendrite_ids is not None:
            self.viewer.add_labels(result.dendrite_ids, name=DENDRITES, opacity=0.4,
                                   visible=False, **grid)
        if result.thickness_image is None:
            return
        finite = result.thickness_image[np.isfinite(result.thickness_image)]
        top = float(np.percentile(finite, 98)) if finite.size else 1.0
        limits = (0.0, max(top, 1.0))
        self.viewer.add_image(
            result.thickness_image, name=THICKNESS_IMAGE, colormap="turbo",
            contrast_limits=limits, blending="translucent", interpolation2d="nearest", **grid,
        ).colorbar.visible = True
        vertices, faces, values = result.mesh
        if len(faces):
            surface = self.viewer.add_surface(
                (vertices, faces, values), name=THICKNESS_SURFACE, colormap="turbo",
                contrast_limits=limits, **grid,
            )
            surface.visible = self.viewer.dims.ndisplay == 3

    def _fill_table(self, report: Report) -> None:
        self._table_rows = table_rows(report)
        self.table.setRowCount(len(self._table_rows))
        for r, row in enumerate(self._table_rows):
            for c, text in enumerate(row.cells()):
                item = QTableWidgetItem(text)
                if c:  # numbers right-aligned
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()

    def _on_row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.focus_row(rows[0].row())

    def focus_row(self, index: int) -> None:
        """Centre the view on a table row's object and select it."""
        row = self._table_rows[index]
        centroid = row.centroid_nm
        if centroid is None:
            return
        translate = np.asarray(self._source.translate) if self._source is not None else 0.0
        world = np.asarray(centroid, dtype=float) + translate
        dims = self.viewer.dims
        point = list(dims.point)
        for axis in dims.not_displayed:
            point[axis] = world[axis]
        dims.point = point
        self.viewer.camera.center = tuple(world[list(dims.displayed)])
        if row.object == "dendrite" and DENDRITES in self.viewer.layers:
            layer = self.viewer.layers[DENDRITES]
            layer.visible = True
            layer.selected_label = int(row.id)
            layer.show_selected_label = True
        elif DENDRITES in self.viewer.layers:
            self.viewer.layers[DENDRITES].show_selected_label = False

    # --- export and comparison --------------------------------------------------------------

    def export(self, json_path: str | Path | None = None, csv_path: str | Path | None = None) -> None:
        """Write the report JSON and/or the dendrite CSV (atomic)."""
        if self.result is None:
            return
        report = self.result.report
        if json_path is not None:
            write_report(report, json_path)
            self.exported.append(Path(json_path))
        if csv_path is not None:
            from ..io.atomic import atomic_write_bytes
            from ..measure.report import dendrite_table

            atomic_write_bytes(csv_path, dendrite_table(report).encode())
            self.exported.append(Path(csv_path))

    def _export(self, kind: str) -> None:
        filters = {"json": "Report (*.json)", "csv": "Dendrite table (*.csv)"}
        path, _ = QFileDialog.getSaveFileName(self, f"Export {kind.upper()}", "", filters[kind])
        if not path:
            return
        try:
            self.export(**{f"{kind}_path": path})
        except (CryoliError, OSError) as e:
            report_error(e, "Export")
        else:
            show_info(f"Wrote {path}")

    def export_meshes(self, path: str | Path) -> Any:
        """Write the measured segmentation's meshes (and ``.cxc``) in a worker; the job handle."""
        from ..dataset.mesh import export_meshes

        if self.result is None or self._source is None:
            return None
        layer = self._source
        labels = np.array(layer.data, dtype=np.uint8)
        voxel, origin = L.voxel_size_nm(layer), tuple(layer.translate)
        surface, source = self.result.report.surface, L.source_path(layer)

        def done(paths) -> None:
            if paths:
                self.exported.extend(paths)
                show_info(f"Wrote {', '.join(p.name for p in paths)}")

        return self.controls.run("Mesh export", lambda stop: export_meshes(
            labels, voxel, origin, path, surface=surface, map_path=source, stop=stop),
            on_result=done, progress_format="meshes %p%")

    def _export_meshes_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export meshes", "", "glTF binary (*.glb);;"
                                              "Wavefront OBJ (*.obj);;STL (*.stl)")
        if path:
            self.export_meshes(path)

    def compare(self, paths: list[str | Path]) -> QDialog | None:
        """Show saved reports side by side (LiH fraction, SEI on Li vs LiH) in a dialog."""
        try:
            reports = {Path(p).stem: read_report(p) for p in paths}
        except CryoliError as e:
            report_error(e, "Compare")
            return None
        if self.result is not None and not self.result.report.stopped:
            reports.setdefault("current", self.result.report.to_dict())
        dialog = QDialog(self)
        dialog.setWindowTitle("Compare conditions")
        panel = FigurePanel(compare_conditions(reports))
        QVBoxLayout(dialog).addWidget(panel)
        dialog.panel = panel
        dialog.resize(1000, 420)
        dialog.show()
        return dialog

    def _compare_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Reports to compare", "", "Reports (*.json)")
        if paths:
            self.compare(paths)
