"""The Reconstruct dock widget: weighted back-projection of a tilt series into a tomogram layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_info
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..contrast import percentile_limits
from ..errors import CryoliError, InputError
from ..settings import spin_box_options
from ..tomo.wbp import AXIS_ANGLES, WBPSettings
from . import layers as L
from .job_controls import JobControls
from .pickers import LayerPicker
from .worker import report_error

if TYPE_CHECKING:
    import napari

    from ..tomo.wbp import Reconstruction


def layer_angles(layer: Image, angle_file: str) -> np.ndarray:
    """Tilt angles for a tilt-series layer: the angle file if given, else those the file carried."""
    from ..io.angles import find_angle_file, read_angles

    n = layer.data.shape[0]
    if angle_file:
        return read_angles(angle_file, n_expected=n)
    carried = layer.metadata.get(L.KEY, {}).get("tilt_angles_deg")
    if carried:
        return np.asarray(carried, dtype=float)
    path = L.source_path(layer)
    found = find_angle_file(path) if path is not None else None
    if found is None:
        raise InputError(f"{layer.name} carries no tilt angles: choose an angle file (.tlt/.rawtlt)")
    return read_angles(found, n_expected=n)


class ReconstructWidget(QWidget):
    """Pick a tilt series and its angles, set IMOD-like filter options, reconstruct in a worker."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self._source: Image | None = None

        self.series_picker = LayerPicker(napari_viewer, Image, self)
        self.series_picker.setToolTip("The aligned tilt series (one image per tilt)")
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open a tilt series file (.st, .ali, .mrcs, .mrc)")
        self.angle_edit = QLineEdit()
        self.angle_edit.setPlaceholderText("from the file's header or a .tlt beside it")
        self.angle_edit.setToolTip("Tilt angles in degrees, one per line (.tlt/.rawtlt); empty: "
                                   "the file's header or a .tlt beside the series")
        self.angle_button = QPushButton("Angles…")
        self.angle_button.setToolTip("Choose an angle file")
        self.axis = QComboBox()
        for angle in AXIS_ANGLES:
            self.axis.addItem("along y (aligned)" if angle == 0 else f"{angle:+d}° from y", angle)
        self.axis.setToolTip("Where the tilt axis lies in the images; it is turned onto y first")
        self.thickness = QSpinBox(**spin_box_options(WBPSettings, "thickness"))
        self.thickness.setSpecialValueText("as wide as the images")
        self.thickness.setSuffix(" voxels")
        self.thickness.setToolTip("Tomogram thickness along z (IMOD's THICKNESS)")
        self.cutoff = QDoubleSpinBox(decimals=3, **spin_box_options(WBPSettings, "radial_cutoff"))
        self.cutoff.setToolTip("Where the radial filter starts to fall (IMOD's RADIAL, first value)")
        self.falloff = QDoubleSpinBox(decimals=3, **spin_box_options(WBPSettings, "radial_falloff"))
        self.falloff.setToolTip("Gaussian fall-off width of the radial filter (RADIAL, second value)")
        self.sirt = QSpinBox(**spin_box_options(WBPSettings, "sirt_like_iterations"))
        self.sirt.setSpecialValueText("off")
        self.sirt.setToolTip("SIRT-like filter equivalent to this many iterations (less streaking, "
                             "smoother); off: plain weighted back-projection")
        self.controls = JobControls(
            napari_viewer, "Reconstruct",
            start_tip="Reconstruct in the background; adds a tomogram layer",
            stop_tip="Stop the reconstruction (nothing is added)", progress_tip="Slices reconstructed")
        self.run_button = self.controls.start_button

        layout = QVBoxLayout(self)
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.series_picker, 1)
        row.addWidget(self.open_button)
        form.addRow("Tilt series", row)
        row = QHBoxLayout()
        row.addWidget(self.angle_edit, 1)
        row.addWidget(self.angle_button)
        form.addRow("Angle file", row)
        form.addRow("Tilt axis", self.axis)
        form.addRow("Thickness", self.thickness)
        form.addRow("Radial cutoff (cycles/px)", self.cutoff)
        form.addRow("Radial falloff (cycles/px)", self.falloff)
        form.addRow("SIRT-like iterations", self.sirt)
        layout.addLayout(form)
        layout.addWidget(self.controls)
        layout.addStretch(1)

        self.open_button.clicked.connect(self._open_dialog)
        self.angle_button.clicked.connect(self._angle_dialog)
        self.run_button.clicked.connect(self.start)

    def start(self) -> Any:
        """Reconstruct the picked tilt series in a worker; returns the job handle or None."""
        from ..tomo.wbp import WBPSettings, axis_on_y, reconstruct

        layer = self.series_picker.layer()
        if layer is None:
            show_info("Open a tilt series first")
            return None
        try:
            if layer.data.ndim != 3:
                raise InputError(f"{layer.name} is not a stack of tilt images")
            angles = layer_angles(layer, self.angle_edit.text().strip())
            tilts = axis_on_y(layer.data, self.axis.currentData())  # a view: read-only in the worker
            settings = WBPSettings(
                thickness=self.thickness.value() or None,
                radial_cutoff=self.cutoff.value(),
                radial_falloff=self.falloff.value(),
                sirt_like_iterations=self.sirt.value(),
            )
        except CryoliError as e:
            report_error(e, "Reconstruct")
            return None
        self._source = layer
        return self.controls.run("Reconstruction",
                                 lambda stop: reconstruct(tilts, angles, settings, stop),
                                 on_result=self.show_result)

    def show_result(self, result: Reconstruction) -> None:
        if result.stopped:
            show_info("Reconstruction stopped: no tomogram added")
            return
        source = self._source
        pixel = float(source.scale[-1])
        self.viewer.add_image(
            result.volume,
            name=f"{source.name.split(' (')[0]} tomogram",
            scale=(pixel, pixel, pixel),
            translate=(0.0, *source.translate[-2:]),
            contrast_limits=percentile_limits(result.volume),
            metadata={L.KEY: {"path": None, "voxel_size_nm": [pixel] * 3,
                              "reconstructed_from": str(L.source_path(source) or source.name)}},
        )

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open tilt series", "", "Tilt series (*.st *.ali *.mrc *.mrcs *.st.gz)"
        )
        if path:
            try:
                self.viewer.open(path, plugin="napari-cryoli")
            except Exception as e:  # noqa: BLE001 - napari wraps reader errors in its own type
                report_error(e.__cause__ or e, "Open")

    def _angle_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Tilt angles", "", "Angle files (*.tlt *.rawtlt);;All files (*)"
        )
        if path:
            self.angle_edit.setText(path)
