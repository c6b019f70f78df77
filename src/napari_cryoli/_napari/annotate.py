"""The Annotate dock widget: paint sparse training labels with the Li/LiH/Cu/SEI ontology."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..annotation_session import AutosaveScheduler, ClassCounts, touched_rows
from ..annotations import (
    AutosaveLocation,
    autosave_location,
    find_annotations,
    load_annotations,
    save_annotations,
)
from ..classes import LabelClass, Ontology
from ..contrast import percentile_limits, smoothed_view
from ..errors import CryoliError
from . import layers as L
from .pickers import LayerPicker
from .status import StatusLabel
from .worker import quiet_worker, report_error

if TYPE_CHECKING:
    import napari

SMOOTHED_SUFFIX = " (smoothed)"


def autosave_location_for(image: Image, labels: Labels | None = None) -> AutosaveLocation:
    """Where the labels painted on ``image`` autosave (a folder chosen for them wins)."""
    folder = labels.metadata.get(L.KEY, {}).get("autosave_folder") if labels is not None else None
    return autosave_location(L.source_path(image), image.name, folder)


class AnnotateWidget(QWidget):
    """Create or pick the labels of a tomogram, choose a class, paint; counts and autosave follow."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self._labels: Labels | None = None
        self.class_counts = ClassCounts()
        self.autosaves: AutosaveScheduler[tuple[Labels | None, Image | None]] = AutosaveScheduler()
        self._watching_window = False
        self.last_saved: float | None = None

        self.image_picker = LayerPicker(napari_viewer, Image, self)
        self.image_picker.setToolTip("The tomogram to annotate")
        self.labels_picker = LayerPicker(napari_viewer, Labels, self, none_text="(none)")
        self.labels_picker.setToolTip("The labels layer painted on it")
        self.new_labels_button = QPushButton("New labels layer")
        self.new_labels_button.setToolTip("Create an empty uint8 labels layer on the tomogram's grid")

        self.restore_label = StatusLabel()
        self.restore_button = QPushButton("Restore autosaved labels")
        self.restore_button.setToolTip("Load the labels saved beside the tomogram (or in the "
                                       "autosave folder) into its labels layer")
        restore_row = QHBoxLayout()
        restore_row.addWidget(self.restore_label, 1)
        restore_row.addWidget(self.restore_button)
        self.restore_box = QWidget()
        self.restore_box.setLayout(restore_row)
        self.restore_box.setVisible(False)

        self.class_group = QButtonGroup(self)
        self.class_group.setExclusive(True)
        self.class_grid = QGridLayout()
        self.class_buttons: dict[int, QPushButton] = {}
        self.new_class_edit = QLineEdit()
        self.new_class_edit.setPlaceholderText("new class name, e.g. extended SEI")
        self.new_class_edit.setToolTip("Name of a class of your own (ids 6 and up)")
        self.add_class_button = QPushButton("Add class")
        self.add_class_button.setToolTip("Add the class named on the left, with its own colour")

        self.brush_size = QSpinBox()
        self.brush_size.setRange(1, 200)
        self.brush_size.setValue(10)
        self.brush_size.setSuffix(" px")
        self.brush_size.setToolTip("Brush diameter in screen pixels of the data ([ and ] change it)")

        self.auto_contrast_button = QPushButton("Auto contrast")
        self.auto_contrast_button.setToolTip("Clip the tomogram's contrast to these percentiles")
        self.low_percentile = QDoubleSpinBox(decimals=1, minimum=0.0, maximum=49.0, value=0.5)
        self.low_percentile.setToolTip("Darkest shown grey level, as a percentile")
        self.high_percentile = QDoubleSpinBox(decimals=1, minimum=51.0, maximum=100.0, value=99.5)
        self.high_percentile.setToolTip("Brightest shown grey level, as a percentile")
        self.smooth_check = QCheckBox("Smoothed preview")
        self.smooth_check.setToolTip("Show a Gaussian-smoothed copy (for the eye only: training "
                                     "uses the tomogram itself)")
        self.smooth_sigma = QDoubleSpinBox(decimals=1, minimum=0.1, maximum=50.0, value=2.0)
        self.smooth_sigma.setSuffix(" nm")
        self.smooth_sigma.setToolTip("Width (s.d.) of the smoothing Gaussian")
        self.slab = QSpinBox()
        self.slab.setRange(1, 51)
        self.slab.setSingleStep(2)
        self.slab.setSuffix(" slices")
        self.slab.setToolTip("Show the mean of this many slices around the current one")

        self.autosave_label = StatusLabel("Autosave: no labels yet")
        self.autosave_folder_button = QPushButton("Autosave folder…")
        self.autosave_folder_button.setToolTip("Autosave the labels to another folder (e.g. when "
                                               "the tomogram's folder is read-only)")

        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Tomogram", self.image_picker)
        labels_row = QHBoxLayout()
        labels_row.addWidget(self.labels_picker, 1)
        labels_row.addWidget(self.new_labels_button)
        form.addRow("Labels", labels_row)
        layout.addLayout(form)
        layout.addWidget(self.restore_box)

        classes_box = QGroupBox("Classes (Alt+number to pick)")
        classes_layout = QVBoxLayout(classes_box)
        classes_layout.addLayout(self.class_grid)
        add_row = QHBoxLayout()
        add_row.addWidget(self.new_class_edit, 1)
        add_row.addWidget(self.add_class_button)
        classes_layout.addLayout(add_row)
        brush_row = QHBoxLayout()
        brush_row.addWidget(QLabel("Brush size"))
        brush_row.addWidget(self.brush_size)
        brush_row.addStretch(1)
        classes_layout.addLayout(brush_row)
        layout.addWidget(classes_box)

        view_box = QGroupBox("View")
        view_layout = QGridLayout(view_box)
        view_layout.addWidget(self.auto_contrast_button, 0, 0)
        percentiles = QHBoxLayout()
        percentiles.addWidget(self.low_percentile)
        percentiles.addWidget(QLabel("–"))
        percentiles.addWidget(self.high_percentile)
        percentiles.addWidget(QLabel("%"))
        view_layout.addLayout(percentiles, 0, 1)
        view_layout.addWidget(self.smooth_check, 1, 0)
        view_layout.addWidget(self.smooth_sigma, 1, 1)
        view_layout.addWidget(QLabel("Slab average"), 2, 0)
        view_layout.addWidget(self.slab, 2, 1)
        layout.addWidget(view_box)

        save_row = QHBoxLayout()
        save_row.addWidget(self.autosave_label, 1)
        save_row.addWidget(self.autosave_folder_button)
        layout.addLayout(save_row)
        layout.addStretch(1)

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.timeout.connect(self._save_due)

        self.image_picker.currentIndexChanged.connect(self._on_image_changed)
        self.labels_picker.currentIndexChanged.connect(self._on_labels_changed)
        self.new_labels_button.clicked.connect(self.new_labels)
        self.restore_button.clicked.connect(self.restore)
        self.class_group.idClicked.connect(self.select_class)
        self.add_class_button.clicked.connect(self._on_add_class)
        self.new_class_edit.returnPressed.connect(self._on_add_class)
        self.brush_size.valueChanged.connect(self._on_brush_size)
        self.auto_contrast_button.clicked.connect(self.auto_contrast)
        self.smooth_check.toggled.connect(self._update_smoothed)
        self.smooth_sigma.editingFinished.connect(self._update_smoothed)
        self.slab.valueChanged.connect(self._on_slab)
        self.autosave_folder_button.clicked.connect(self._choose_autosave_folder)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)

        self._build_class_buttons()
        self._on_image_changed()

    # --- layers -----------------------------------------------------------------------------

    @property
    def image(self) -> Image | None:
        return self.image_picker.layer()

    @property
    def labels(self) -> Labels | None:
        return self._labels

    @property
    def ontology(self) -> Ontology:
        return L.layer_ontology(self._labels) if self._labels is not None else Ontology()

    def new_labels(self) -> Labels | None:
        """Create an empty labels layer for the selected tomogram (or reuse its existing one)."""
        image = self.image
        if image is None:
            show_info("Open a tomogram first (File ▸ Open, or File ▸ Open Sample)")
            return None
        existing = L.annotation_layer(self.viewer.layers, image)
        if existing is not None:
            self.labels_picker.set_layer(existing)
            return existing
        layer = L.add_labels_for(self.viewer, image)
        layer.metadata[L.KEY]["path"] = None
        self.labels_picker.set_layer(layer)
        return layer

    def _on_layer_inserted(self, event) -> None:
        if isinstance(event.value, Image) and L.same_layer(event.value, self.image):
            self._check_autosave()

    def _on_image_changed(self, *_) -> None:
        if self.autosaves.pending is not None:
            self.flush_autosave()
        image = self.image
        if image is not None:
            existing = L.annotation_layer(self.viewer.layers, image)
            if existing is not None:
                self.labels_picker.set_layer(existing)
        self._check_autosave()

    def _on_labels_changed(self, *_) -> None:
        layer = self.labels_picker.layer()
        if layer is self._labels or L.same_layer(layer, self._labels):
            return
        if self.autosaves.pending is not None:
            self.flush_autosave()
        if self._labels is not None:
            self._labels.events.paint.disconnect(self._on_paint)
            self._labels.events.data.disconnect(self._recount)
        self._labels = layer
        if layer is not None:
            if self.image is not None and layer.data.shape == self.image.data.shape:
                layer.metadata.setdefault(L.KEY, {}).setdefault("image", self.image.name)
            layer.events.paint.connect(self._on_paint)
            layer.events.data.connect(self._recount)
            layer.brush_size = self.brush_size.value()
            self._bind_shortcuts(layer)
        self._build_class_buttons()
        self._recount()
        self._check_autosave()

    # --- classes ----------------------------------------------------------------------------

    def _build_class_buttons(self) -> None:
        for button in self.class_buttons.values():
            self.class_group.removeButton(button)
            button.deleteLater()
        self.class_buttons.clear()
        for i, cls in enumerate(self.ontology):
            button = QPushButton()
            button.setCheckable(True)
            button.setStyleSheet(_button_style(cls))
            button.setToolTip(f"Paint {cls.name} (id {cls.id}); the number is its painted voxels")
            self.class_group.addButton(button, cls.id)
            self.class_grid.addWidget(button, i // 2, i % 2)
            self.class_buttons[cls.id] = button
        if self._labels is not None and self._labels.selected_label in self.class_buttons:
            self.class_buttons[self._labels.selected_label].setChecked(True)
        self._update_counts()

    def select_class(self, class_id: int) -> None:
        """Paint with ``class_id`` on the labels layer (created if needed)."""
        layer = self._labels or self.new_labels()
        if layer is None:
            return
        layer.selected_label = class_id
        layer.mode = "paint"
        self.viewer.layers.selection.active = layer
        if class_id in self.class_buttons:
            self.class_buttons[class_id].setChecked(True)

    def add_class(self, name: str) -> LabelClass | None:
        """Add a user class (next free id, its own colour) to the labels layer's ontology."""
        layer = self._labels or self.new_labels()
        if layer is None:
            return None
        try:
            ontology = self.ontology.with_class(name)
        except ValueError as e:
            show_warning(str(e))
            return None
        L.apply_ontology(layer, ontology)
        self._bind_shortcuts(layer)
        self._build_class_buttons()
        return ontology.classes[-1]

    def _on_add_class(self) -> None:
        if self.add_class(self.new_class_edit.text()) is not None:
            self.new_class_edit.clear()

    def _bind_shortcuts(self, layer: Labels) -> None:
        for i, cls in enumerate(self.ontology.classes[:9]):
            layer.bind_key(f"Alt-{i + 1}", _class_selector(self, cls.id), overwrite=True)

    def _on_brush_size(self, size: int) -> None:
        if self._labels is not None:
            self._labels.brush_size = size

    # --- counts -----------------------------------------------------------------------------

    def _on_paint(self, event) -> None:
        # napari emits `paint` before it writes the stroke into the data: count on the next loop turn
        data = self._labels.data
        n = data.shape[0] if data.ndim > 2 else 1
        self.class_counts.touch(*(touched_rows(event.value, n) if data.ndim > 2 else (0, 1)))
        QTimer.singleShot(0, self._count_dirty_rows)
        self.restore_box.setVisible(False)  # new work: the next autosave replaces the old one
        self.schedule_autosave()

    def _count_dirty_rows(self) -> None:
        if self._labels is not None and self.class_counts.update(self._labels.data):
            self._update_counts()

    def _recount(self, *_) -> None:
        self.class_counts.recount(self._labels.data if self._labels is not None else None)
        self._update_counts()

    def counts(self) -> dict[int, int]:
        """Painted voxels per class id of the current labels layer."""
        return self.class_counts.totals(cls.id for cls in self.ontology)

    def _update_counts(self) -> None:
        counts = self.counts()
        for i, cls in enumerate(self.ontology):
            button = self.class_buttons.get(cls.id)
            if button is not None:
                key = f"Alt+{i + 1}  " if i < 9 else ""
                button.setText(f"{key}{cls.name}  ({counts.get(cls.id, 0):,})")

    # --- view helpers -----------------------------------------------------------------------

    def auto_contrast(self) -> None:
        image = self.image
        if image is None:
            return
        image.contrast_limits = percentile_limits(
            image.data, self.low_percentile.value(), self.high_percentile.value()
        )
        smoothed = self._smoothed_layer()
        if smoothed is not None:
            smoothed.contrast_limits = image.contrast_limits

    def _smoothed_layer(self) -> Image | None:
        image = self.image
        if image is None:
            return None
        name = image.name + SMOOTHED_SUFFIX
        return self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401

    def _update_smoothed(self, *_) -> None:
        image, existing = self.image, self._smoothed_layer()
        if existing is not None:
            self.viewer.layers.remove(existing)
        if image is None or not self.smooth_check.isChecked():
            return
        sigma = tuple(self.smooth_sigma.value() / s for s in image.scale)
        layer = self.viewer.add_image(
            smoothed_view(image.data, sigma),
            name=image.name + SMOOTHED_SUFFIX,
            scale=image.scale,
            translate=image.translate,
            contrast_limits=image.contrast_limits,
            colormap=image.colormap,
            multiscale=False,
        )
        image.visible = False
        layer.events.visible.connect(lambda e: setattr(image, "visible", not e.value))
        if self._labels is not None:  # keep labels on top and active for painting
            self.viewer.layers.move(self.viewer.layers.index(self._labels), len(self.viewer.layers))
            self.viewer.layers.selection.active = self._labels

    def _on_slab(self, n_slices: int) -> None:
        dims = self.viewer.dims
        thickness = list(dims.thickness_step)
        for axis in dims.not_displayed:
            thickness[axis] = max(n_slices - 1, 0)
        dims.thickness_step = tuple(thickness)

    # --- autosave ---------------------------------------------------------------------------

    def location(self) -> AutosaveLocation | None:
        image = self.image
        return None if image is None else autosave_location_for(image, self._labels)

    def _check_autosave(self) -> None:
        location, image = self.location(), self.image
        path = find_annotations(location, image.data.shape) if location is not None else None
        has_work = self._labels is not None and self.counts() and any(self.counts().values())
        if path is None or has_work:
            self.restore_box.setVisible(False)
            return
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
        self.restore_label.setText(f"Autosaved labels for {image.name} from {when}")
        self.restore_box.setVisible(True)
        show_info(f"Autosaved labels found for {image.name}: press Restore in the Annotate panel")

    def restore(self) -> Labels | None:
        """Load the autosaved labels of the selected tomogram into its labels layer."""
        image, location = self.image, self.location()
        if image is None or location is None:
            return None
        try:
            saved = load_annotations(location, image.data.shape)
        except CryoliError as e:
            report_error(e, "Restore")
            return None
        layer = L.annotation_layer(self.viewer.layers, image)
        if layer is None:
            layer = L.add_labels_for(self.viewer, image, saved.labels, ontology=saved.ontology)
        else:
            layer.data = saved.labels
            L.apply_ontology(layer, saved.ontology)
        self.labels_picker.set_layer(layer)
        self._on_labels_changed()
        self._build_class_buttons()
        self.restore_box.setVisible(False)
        show_info(f"Restored {sum(saved.counts.values()):,} labelled voxels from {saved.path.name}")
        return layer

    def schedule_autosave(self) -> None:
        self.autosaves.stroke((self._labels, self.image))
        self._arm_save_timer()

    def _arm_save_timer(self) -> None:
        wait = self.autosaves.wait_s()
        if wait is None:
            self._save_timer.stop()
        else:
            self._save_timer.start(round(1000 * wait))

    def flush_autosave(self) -> None:
        """Save pending strokes now, on this thread (their layer is going, or napari closing)."""
        pending = self.autosaves.flush()
        self._save_timer.stop()
        request = self._save_request(*pending) if pending else None
        if request is not None:
            try:
                save_annotations(*request[:2], **request[2])
            except CryoliError as e:
                report_error(e, "Autosave")

    def _save_request(self, layer: Labels | None, image: Image | None):
        """(location, data, keyword arguments) of a save of ``layer``, or None."""
        if layer is None or image is None:
            return None
        kwargs = {
            "voxel_size_nm": L.voxel_size_nm(layer),
            "origin_nm": tuple(float(t) for t in layer.translate),
            "ontology": L.layer_ontology(layer),
            "source": str(L.source_path(image) or image.name),
        }
        return autosave_location_for(image, layer), layer.data, kwargs

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._watching_window:  # docked now: save pending strokes when the window closes
            self.window().installEventFilter(self)
            self._watching_window = True

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Close and self.autosaves.pending is not None:
            self.flush_autosave()
        return False

    def autosave(self) -> Any:
        """Save the labels now in a worker thread (atomic, previous copy kept); returns the
        worker (None when a save is running: this one follows it)."""
        self.autosaves.save_soon((self._labels, self.image))
        return self._save_due()

    def _save_due(self) -> Any:
        target = self.autosaves.take()
        if target is None:
            self._arm_save_timer()
            return None
        request = self._save_request(*target)
        if request is None:
            self.autosaves.finished()
            return None
        location, data, kwargs = request
        worker = quiet_worker(save_annotations, location, data, **kwargs,
                              on_error=lambda e: report_error(e, "Autosave"))
        self._saving_to = location
        worker.returned.connect(self._on_saved)  # a method: dropped if the panel is closed
        worker.finished.connect(self._save_finished)
        worker.start()
        return worker

    def _on_saved(self, _result: None) -> None:
        self._saved(self._saving_to)

    def _saved(self, location: AutosaveLocation) -> None:
        self.last_saved = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(self.last_saved))
        self.autosave_label.setText(f"Autosaved {stamp} to {location.labels}")
        self.autosave_label.setToolTip(str(location.labels))

    def _save_finished(self) -> None:
        self.autosaves.finished()
        self._save_due()

    def _choose_autosave_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Autosave labels to")
        if folder and self._labels is not None:
            self._labels.metadata.setdefault(L.KEY, {})["autosave_folder"] = folder
            self.schedule_autosave()


def _class_selector(widget: AnnotateWidget, class_id: int):
    def select(layer: Labels) -> None:
        widget.select_class(class_id)

    return select


def _button_style(cls: LabelClass) -> str:
    r, g, b, _ = (int(255 * c) for c in cls.color)
    text = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"
    return (
        f"QPushButton {{ background-color: rgb({r},{g},{b}); color: {text}; padding: 4px;"
        f" border: 2px solid transparent; border-radius: 3px; text-align: left; }}"
        f" QPushButton:checked {{ border: 2px solid white; font-weight: bold; }}"
    )
