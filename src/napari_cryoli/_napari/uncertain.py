"""The list of regions where the prediction hesitates: jump to each, paint, next."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.notifications import show_info
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import CryoliError
from ..segment.uncertain_regions import RegionSettings, UncertainRegion, uncertain_regions
from .status import StatusLabel
from .worker import quiet_worker, report_error

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels


def region_text(region: UncertainRegion) -> str:
    axes = ("slice", "y", "x")[-len(region.peak):]
    where = ", ".join(f"{axis} {index}" for axis, index in zip(axes, region.peak))
    return f"{region.rank}. {where}: {region.n_voxels:,} voxels, mean {region.mean_uncertainty:.2f}"


class UncertainRegionsPanel(QGroupBox):
    """Rank the uncertainty layer's regions (size × mean uncertainty) and step through them.

    Jumping shows a region's most uncertain voxel in the middle of the view and makes the labels
    being corrected (``target()``) the active layer, in paint mode.
    """

    def __init__(
        self,
        napari_viewer: napari.Viewer,
        target: Callable[[], Labels | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Where the model hesitates", parent)
        self.viewer = napari_viewer
        self._target = target
        self._layer: Image | None = None
        self._worker = None
        self.regions: tuple[UncertainRegion, ...] = ()
        self.current = -1

        self.threshold = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=1.0, singleStep=0.05,
                                        value=RegionSettings().threshold)
        self.threshold.setToolTip("A voxel counts as uncertain at or above this normalised "
                                  "entropy (0: certain, 1: every class equally likely)")
        self.find_button = QPushButton("Find regions")
        self.find_button.setToolTip("Rank the connected regions of the uncertainty layer by "
                                    "size × mean uncertainty")
        self.list = QListWidget()
        self.list.setToolTip("Click a region to show it; paint corrections, then Next")
        self.list.setMinimumHeight(70)
        self.previous_button = QPushButton("◀ Previous")
        self.previous_button.setToolTip("Show the previous region")
        self.next_button = QPushButton("Next ▶")
        self.next_button.setToolTip("Show the next most uncertain region")
        self.status = StatusLabel("Predict first: the regions come from its uncertainty layer.")

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Uncertain above"))
        row.addWidget(self.threshold)
        row.addWidget(self.find_button, 1)
        layout.addLayout(row)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(self.previous_button)
        row.addWidget(self.next_button)
        layout.addLayout(row)
        layout.addWidget(self.status)

        self.find_button.clicked.connect(lambda: self.find())
        self.list.currentRowChanged.connect(self._on_row)
        self.previous_button.clicked.connect(self.previous)
        self.next_button.clicked.connect(self.next)
        self._update_buttons()

    def find(self, layer: Image | None = None) -> Any:
        """Rank the regions of ``layer`` (or the last one given) in a worker; returns it."""
        self._layer = layer or self._layer
        if self._layer is None or self._layer not in self.viewer.layers:
            show_info("Predict first: the regions come from its uncertainty layer")
            return None
        try:
            settings = RegionSettings(threshold=self.threshold.value())
        except CryoliError as e:
            report_error(e, "Uncertain regions")
            return None
        data = np.asarray(self._layer.data)
        self.find_button.setEnabled(False)
        self.status.setText("Finding uncertain regions…")
        worker = quiet_worker(uncertain_regions, data, settings,
                              on_error=lambda e: report_error(e, "Uncertain regions"))
        worker.returned.connect(self.show_regions)
        worker.finished.connect(self._found)
        self._worker = worker
        worker.start()
        return worker

    def _found(self) -> None:
        self.find_button.setEnabled(True)

    def show_regions(self, regions: tuple[UncertainRegion, ...]) -> None:
        self.regions = tuple(regions)
        self.current = -1
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems([region_text(r) for r in self.regions])
        self.list.blockSignals(False)
        if self.regions:
            voxels = sum(r.n_voxels for r in self.regions)
            self.status.setText(f"{len(self.regions)} regions ({voxels:,} voxels), most uncertain "
                                "first: Next ▶ shows each; paint over mistakes.")
        else:
            self.status.setText("No region above the threshold: the model is sure everywhere.")
        self._update_buttons()

    def next(self) -> None:
        if self.regions:
            self.jump(min(self.current + 1, len(self.regions) - 1))

    def previous(self) -> None:
        if self.regions:
            self.jump(max(self.current - 1, 0))

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self.regions) and row != self.current:
            self.jump(row)

    def jump(self, index: int) -> None:
        """Centre the view on region ``index``'s most uncertain voxel; ready the labels to paint."""
        self.current = index
        region = self.regions[index]
        layer = self._layer if self._layer in self.viewer.layers else None
        scale = np.asarray(layer.scale) if layer is not None else np.ones(len(region.peak))
        translate = np.asarray(layer.translate) if layer is not None else 0.0
        world = np.asarray(region.peak, dtype=float) * scale + translate
        dims = self.viewer.dims
        point = list(dims.point)
        offset = dims.ndim - len(world)
        for axis in dims.not_displayed:
            if axis >= offset:
                point[axis] = world[axis - offset]
        dims.point = point
        self.viewer.camera.center = tuple(world[[a - offset for a in dims.displayed if a >= offset]])
        target = self._target()
        if target is not None and target in self.viewer.layers:
            target.visible = True
            target.mode = "paint"
            self.viewer.layers.selection.active = target
        self.list.blockSignals(True)
        self.list.setCurrentRow(index)
        self.list.blockSignals(False)
        self.status.setText(f"Region {index + 1} of {len(self.regions)} ({region.n_voxels:,} "
                            "voxels): paint corrections, then Next ▶.")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.previous_button.setEnabled(self.current > 0)
        self.next_button.setEnabled(bool(self.regions) and self.current < len(self.regions) - 1)
