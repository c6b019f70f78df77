"""A status line that wraps and always gets the height of all its lines."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QSizePolicy, QWidget


class StatusLabel(QLabel):
    """A word-wrapped, selectable label that asks its layout for every line it needs.

    A plain word-wrapped QLabel in a dock widget is laid out at the height of its unwrapped text,
    so lines beyond the first are cut when space is short; this one sets its minimum height from
    its width whenever its text or width changes.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)

    def setText(self, text: str) -> None:
        super().setText(text)
        self._fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit()

    def _fit(self) -> None:
        if not self.isVisible():  # not laid out yet: its width means nothing (showEvent fits)
            return
        self.setMinimumHeight(0)  # QLabel's heightForWidth never answers below the minimum
        height = self.heightForWidth(self.width()) if self.text() else 0
        self.setMinimumHeight(max(height, 0))
