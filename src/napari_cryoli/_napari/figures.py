"""Matplotlib figures inside dock widgets, each savable as PNG or SVG."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QVBoxLayout, QWidget


class FigurePanel(QWidget):
    """A figure canvas with a Save button; ``show_figure`` swaps in a new figure."""

    def __init__(self, figure: Figure | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.figure = figure or Figure(figsize=(5, 3), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(160)  # a 1600×1000 window holds the Workflow panel above
        self.save_button = QPushButton("Save plot…")
        self.save_button.clicked.connect(self._save_dialog)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.save_button)
        layout.addLayout(row)

    def show_figure(self, figure: Figure) -> None:
        layout = self.layout()
        old = self.canvas
        self.figure = figure
        self.canvas = FigureCanvasQTAgg(figure)
        self.canvas.setMinimumHeight(old.minimumHeight())
        layout.replaceWidget(old, self.canvas)
        old.deleteLater()
        self.canvas.draw_idle()

    def save(self, path: str) -> None:
        """Save as PNG (300 dpi) or SVG/PDF, by the file's extension."""
        self.figure.savefig(path, dpi=300)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save plot", "", "PNG image (*.png);;SVG vector image (*.svg);;PDF (*.pdf)"
        )
        if path:
            self.save(path)
