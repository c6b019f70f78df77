"""A combo box of the viewer's layers of one type that follows the layer list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QComboBox, QWidget

from .layers import same_layer

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer


class LayerPicker(QComboBox):
    """Pick a layer of ``layer_type``; the list updates as layers are added, renamed or removed.

    ``currentIndexChanged`` fires whenever the picked layer changes, including when it is removed.
    """

    def __init__(
        self,
        viewer: napari.Viewer,
        layer_type: type[Layer],
        parent: QWidget | None = None,
        *,
        none_text: str | None = None,
    ) -> None:
        super().__init__(parent)
        self._viewer = viewer
        self._type = layer_type
        self._none_text = none_text
        self._announced: Layer | None = None
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self.currentIndexChanged.connect(self._remember)
        events = viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.connect(self.refresh)
        self.destroyed.connect(self._disconnect)
        self.refresh()

    def _disconnect(self, *_) -> None:
        events = self._viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.disconnect(self.refresh)

    def _remember(self, *_) -> None:
        self._announced = self.layer()

    def layers(self) -> list[Layer]:
        return [layer for layer in self._viewer.layers if isinstance(layer, self._type)]

    def layer(self) -> Layer | None:
        """The selected layer, or None."""
        layer = self.currentData()
        return layer if layer is not None and layer in self._viewer.layers else None

    def set_layer(self, layer: Layer | None) -> None:
        for i in range(self.count()):
            if same_layer(self.itemData(i), layer):
                self.setCurrentIndex(i)
                return

    def refresh(self, event=None) -> None:
        """Rebuild the list, keeping the current choice when it still exists."""
        current = self.layer()
        if current is None and event is not None and isinstance(event.value, self._type):
            current = event.value  # the first layer of our type selects itself
        self.blockSignals(True)
        self.clear()
        if self._none_text is not None:
            self.addItem(self._none_text, None)
        for layer in self.layers():
            layer.events.name.connect(self.refresh)  # napari ignores repeated connections
            self.addItem(layer.name, layer)
        if current is not None:
            self.set_layer(current)
        self.blockSignals(False)
        selected, before = self.layer(), self._announced
        if (selected is None) != (before is None) or not (
            selected is None or same_layer(selected, before)
        ):
            self.currentIndexChanged.emit(self.currentIndex())
