"""Train and Predict dock widgets: sparse labels -> 3D U-Net -> prediction -> correct -> fine-tune.

Both widgets of a viewer share a :class:`ModelStore`: the model just trained (or loaded from a
file) is what Predict uses and what Fine-tune continues from.
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..annotations import save_annotations
from ..errors import CryoliError, InputError
from ..jobs import Progress
from ..segment.calibration import describe_intensity, intensity_warning
from ..segment.session import TrainingSession, history_figure
from ..segment.training import TrainConfig
from ..settings import default_of, spin_box_options
from . import layers as L
from .annotate import autosave_location_for
from .figures import FigurePanel
from .job_controls import JobControls
from .pickers import LayerPicker
from .uncertain import UncertainRegionsPanel
from .worker import report_error, unwrapped

if TYPE_CHECKING:
    import napari

    from ..segment.model import SegmentationModel
    from ..segment.prediction import Prediction
    from ..segment.training import TrainResult

PREDICTION = "prediction"
UNCERTAINTY = "uncertainty"
PREVIEW = "training preview"
#: Network sizes offered in the Train widget: (base channels, levels); None = TrainConfig's own.
MODEL_SIZES = {
    "standard (CPU, minutes)": None,
    "small (fastest)": (4, 3),
    "large (GPU)": (32, 4),
}
#: What training starts from (the Train widget's "Start from").
START_CURRENT, START_PRETRAINED, START_SCRATCH = "current", "pretrained", "scratch"


class ModelStore(QObject):
    """The models of one viewer's session, newest last; ``changed`` fires on every addition."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, SegmentationModel] = {}

    def add(self, name: str, model: SegmentationModel) -> str:
        base, n = name, 2
        while name in self.models:
            name, n = f"{base} ({n})", n + 1
        self.models[name] = model
        self.changed.emit()
        return name

    @property
    def latest(self) -> tuple[str, SegmentationModel] | None:
        return next(reversed(self.models.items()), None)


_STORES: weakref.WeakKeyDictionary[Any, ModelStore] = weakref.WeakKeyDictionary()


def model_store(viewer: Any) -> ModelStore:
    """The model store of a viewer (shared by all its widgets)."""
    viewer = unwrapped(viewer)
    if viewer not in _STORES:
        _STORES[viewer] = ModelStore()
    return _STORES[viewer]


def load_model_into_store(viewer: Any, path: str | Path) -> str | None:
    """Load a checkpoint (weights only) into the viewer's store; notify on problems."""
    from ..segment.model import SegmentationModel

    try:
        model = SegmentationModel.load(path)
    except CryoliError as e:
        report_error(e, "Load model")
        return None
    return model_store(viewer).add(Path(path).name, model)


def warn_if_incompatible(model: SegmentationModel, image: Image, labels: Labels | None) -> None:
    ontology = L.layer_ontology(labels) if labels is not None else model.ontology
    for warning in model.compatibility_warnings(ontology, L.voxel_size_nm(image)):
        show_warning(warning)


# --- training ------------------------------------------------------------------------------------


class TrainWidget(QWidget):
    """Train (or fine-tune) a U-Net on an image and its sparse labels, with live feedback."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.store = model_store(napari_viewer)
        self.result: TrainResult | None = None
        self.session = TrainingSession()

        self.image_picker = LayerPicker(napari_viewer, Image, self)
        self.labels_picker = LayerPicker(napari_viewer, Labels, self, none_text="(none)")
        self.image_picker.setToolTip("The tomogram to learn from")
        self.labels_picker.setToolTip("The labels painted on it (0 = not annotated is ignored)")
        self.size = QComboBox()
        self.size.addItems(list(MODEL_SIZES))
        self.size.setToolTip("Network width and depth: standard is the pre-trained network; "
                             "small trains fastest; large needs a GPU")
        self.minutes = QDoubleSpinBox(decimals=1, **spin_box_options(TrainConfig, "minutes"))
        self.minutes.setSuffix(" min")
        self.max_steps = QSpinBox(**{**spin_box_options(TrainConfig, "max_steps"), "value": 0})
        self.max_steps.setSpecialValueText("until the time is up")
        self.start_from = QComboBox()
        self.start_from.setToolTip(
            "Pre-trained: fine-tune the network trained on simulated tomograms (best with few "
            "strokes). Current model: continue from the newest model, e.g. with corrected labels. "
            "Random weights: learn from the strokes alone."
        )
        self.intensity = QComboBox()
        self.intensity.addItem("percentiles of the volume", "percentiles")
        self.intensity.addItem("calibrated on vacuum and Li", "calibrated")
        self.intensity.setCurrentIndex(self.intensity.findData(default_of(TrainConfig, "intensity")))
        self.intensity.setToolTip(
            "How grey levels reach the network. Percentiles move with how much of the field is "
            "metal; the calibration anchors vacuum and Li metal, so a model keeps its Li/LiH line "
            "on other tomograms (docs/segmentation.md)."
        )
        self.restore_wedge = QCheckBox("Restore the missing wedge")
        self.restore_wedge.setChecked(default_of(TrainConfig, "restore_wedge"))
        self.restore_wedge.setToolTip(
            "Restore each tomogram's missing wedge before the network reads it (calibrated grey "
            "levels): in fields of several dendrites along the tilt axis the wedge shades whole "
            "dendrites as dark as LiH. Dendrites across the tilt axis are left as they are "
            "(docs/segmentation.md).")
        self.tilt_range = QDoubleSpinBox(decimals=0, **spin_box_options(TrainConfig,
                                                                        "tilt_range_deg"))
        self.tilt_range.setPrefix("±")
        self.tilt_range.setSuffix("°")
        self.pairs = QListWidget()
        self.pairs.setMaximumHeight(70)
        self.pairs.setToolTip("Further tomograms trained on in the same run, each with its labels")
        self._pairs: list[tuple[Image, Labels]] = []
        self.add_pair_button = QPushButton("Add this pair")
        self.add_pair_button.setToolTip(
            "Keep the picked image and labels for this run, then pick another pair: the model "
            "learns from all of them"
        )
        self.add_pair_button.clicked.connect(self.add_pair)
        self.remove_pair_button = QPushButton("Remove")
        self.remove_pair_button.setToolTip("Drop the selected pair from the run")
        self.remove_pair_button.clicked.connect(self.remove_pair)
        self.controls = JobControls(
            napari_viewer, "Train", start_tip="Save the labels, then train in the background",
            stop_tip="Stop after the current step and keep the best model so far",
            progress_tip="Share of the time budget (or of the steps) used",
            status="Paint a few strokes of each class, then press Train.",
            stopping="Stopping after this step…")
        self.train_button, self.status = self.controls.start_button, self.controls.status
        self.plot = FigurePanel(history_figure())
        self.plot.setToolTip("Training loss (grey) and validation Dice per class")
        self.save_button = QPushButton("Save model…")
        self.save_button.setToolTip("Write the newest model (.pt) with its classes and voxel size")
        self.load_button = QPushButton("Load model…")
        self.load_button.setToolTip("Load a model file (.pt) to predict with or continue from")

        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Image", self.image_picker)
        form.addRow("Labels", self.labels_picker)
        form.addRow("Model size", self.size)
        form.addRow("Time budget", self.minutes)
        form.addRow("Steps", self.max_steps)
        form.addRow("Start from", self.start_from)
        form.addRow("Grey levels", self.intensity)
        wedge = QHBoxLayout()
        wedge.addWidget(self.restore_wedge)
        wedge.addWidget(self.tilt_range)
        form.addRow("Tilt series", wedge)
        form.addRow("Also train on", self.pairs)
        layout.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.add_pair_button)
        row.addWidget(self.remove_pair_button)
        layout.addLayout(row)
        layout.addWidget(self.controls)
        layout.addWidget(self.plot, 1)
        row = QHBoxLayout()
        row.addWidget(self.save_button)
        row.addWidget(self.load_button)
        layout.addLayout(row)

        self.train_button.clicked.connect(self.start)
        self.save_button.clicked.connect(self._save_dialog)
        self.load_button.clicked.connect(self._load_dialog)
        self.store.changed.connect(self._on_models_changed)
        self.image_picker.currentIndexChanged.connect(self._pick_annotation)
        napari_viewer.layers.events.inserted.connect(self._pick_annotation)
        self._on_models_changed()
        self._pick_annotation()

    def _pick_annotation(self, *_) -> None:
        """Train on the labels painted on the picked image unless the user chose other labels."""
        image = self.image_picker.layer()
        if image is not None and self.labels_picker.layer() is None:
            self.labels_picker.set_layer(L.annotation_layer(self.viewer.layers, image))

    def _on_models_changed(self) -> None:
        """Offer the newest model to continue from, and pick it: correcting and training again
        is the usual next step."""
        self.start_from.clear()
        if self.store.latest is not None:
            self.start_from.addItem(f"current model ({self.store.latest[0]})", START_CURRENT)
        self.start_from.addItem("pre-trained on simulated tomograms", START_PRETRAINED)
        self.start_from.addItem("random weights", START_SCRATCH)
        self.start_from.setCurrentIndex(0)

    def add_pair(self) -> None:
        """Keep the picked (image, labels) for the next run; the pickers are free for another."""
        image, labels = self.image_picker.layer(), self.labels_picker.layer()
        if image is None or labels is None:
            show_info("Pick an image and the labels painted on it, then add the pair")
            return
        try:
            L.check_same_grid(image, labels.data.shape, labels)
        except CryoliError as e:
            report_error(e, "Train")
            return
        if any(image is a and labels is b for a, b in self._pairs):
            return
        self._pairs.append((image, labels))
        self.pairs.addItem(f"{image.name} + {labels.name}")

    def remove_pair(self) -> None:
        row = self.pairs.currentRow()
        if 0 <= row < len(self._pairs):
            del self._pairs[row]
            self.pairs.takeItem(row)

    def config(self, preview_z: int | None = None):
        from ..segment.training import TrainConfig

        size = MODEL_SIZES[self.size.currentText()]
        width = {} if size is None else {"base_channels": size[0], "depth": size[1]}
        return TrainConfig(minutes=self.minutes.value(), max_steps=self.max_steps.value() or None,
                           preview_z=preview_z, intensity=self.intensity.currentData(),
                           restore_wedge=self.restore_wedge.isChecked(),
                           tilt_range_deg=self.tilt_range.value(), **width)

    def start(self) -> Any:
        """Autosave the labels, then train in a worker; returns the job handle or None."""
        from ..segment.pretrained import choose_start
        from ..segment.training import train

        image, labels = self.image_picker.layer(), self.labels_picker.layer()
        if image is None or labels is None:
            show_info("Pick an image and the labels painted on it")
            return None
        start_from = self.start_from.currentData()
        init = self.store.latest[1] if start_from == START_CURRENT and self.store.latest else None
        try:
            L.check_same_grid(image, labels.data.shape, labels)
            config = self.config(self._preview_index(image))
        except CryoliError as e:
            report_error(e, "Train")
            return None
        if init is not None:
            warn_if_incompatible(init, image, labels)
        ontology = L.layer_ontology(labels)
        voxel = L.voxel_size_nm(image)
        label_copy = np.array(labels.data, dtype=np.uint8)
        location = autosave_location_for(image, labels)
        checkpoint = location.labels.with_name(location.labels.name.replace("-labels.mrc", "-model.pt"))
        grid = {"voxel_size_nm": voxel, "origin_nm": tuple(float(t) for t in labels.translate)}
        self._preview_grid = (image, config.preview_z)
        # The picked pair trains first (its preview is shown); kept pairs other than it follow.
        more = [(np.asarray(im.data), np.array(lab.data, dtype=np.uint8), L.voxel_size_nm(im))
                for im, lab in self._pairs if not (im is image and lab is labels)
                and im in self.viewer.layers and lab in self.viewer.layers]

        def job(stop):
            save_annotations(location, label_copy, ontology=ontology, **grid)
            yield Progress(0, 1000, "annotations saved")
            start = choose_start(init, start_from == START_PRETRAINED, ontology, config, voxel)
            if start_from == START_PRETRAINED:
                note = "; ".join(start.notes)
                yield Progress(0, 1000, note, {"start": note})
            return (yield from train(image.data, label_copy, config, ontology=ontology,
                                     voxel_size_nm=voxel, init=start.model,
                                     checkpoint_path=checkpoint,
                                     stop=stop, more=more))

        self.session.reset()
        self.plot.show_figure(history_figure())
        handle = self.controls.run("Training", job, on_progress=self._on_progress,
                                   on_result=self._on_result)
        if handle is not None:
            self.status.setText(f"Training… best model checkpointed to {checkpoint.name}")
        return handle

    def _preview_index(self, image: Image) -> int | None:
        if image.data.ndim != 3 or 0 not in self.viewer.dims.not_displayed:
            return None
        z = image.world_to_data(self.viewer.dims.point)[0]
        return int(np.clip(round(z), 0, image.data.shape[0] - 1))

    def _on_progress(self, p: Progress) -> None:
        update = self.session.update(p)
        if update.status is not None:
            self.status.setText(update.status)
        if update.warning is not None:
            show_warning(update.warning)
        if update.preview is not None:
            self._show_preview(update.preview)
        if update.redraw:
            self._draw_plot()

    def _draw_plot(self) -> None:
        self.session.draw(self.plot.figure, self._class_color)
        self.plot.canvas.draw_idle()

    def _class_color(self, name: str) -> Any:
        labels = self.labels_picker.layer()
        ontology = L.layer_ontology(labels) if labels is not None else None
        if ontology is not None and name in ontology.names:
            return ontology.classes[ontology.names.index(name)].color
        return None

    def _show_preview(self, plane: np.ndarray) -> None:
        image, z = self._preview_grid
        data = plane[np.newaxis].astype(np.uint8)
        translate = np.asarray(image.translate) + np.array([z, 0, 0]) * np.asarray(image.scale)
        # The layer stays after a run and is reused by the next: adding or removing a layer
        # stalls napari for about half a second.
        if PREVIEW in self.viewer.layers:
            layer = self.viewer.layers[PREVIEW]
            layer.data = data
            layer.translate = translate
        else:
            labels = self.labels_picker.layer()
            ontology = L.layer_ontology(labels) if labels is not None else None
            style = L.labels_style(ontology) if ontology is not None else {}
            self.viewer.add_labels(data, name=PREVIEW, scale=image.scale, translate=translate,
                                   opacity=0.5, **style)

    def _on_result(self, result: TrainResult) -> None:
        self.result = result
        self._draw_plot()
        best = result.best_val_dice
        scored = f" (val Dice {np.mean(list(best.values())):.2f})" if best else ""
        stamp = time.strftime("%H:%M")
        name = self.store.add(f"trained {stamp}{scored}", result.model)
        self.status.setText(self.session.finished_text(result, name))

    def save_model(self, path: str | Path) -> None:
        latest = self.store.latest
        if latest is None:
            show_info("No model yet: train or load one first")
            return
        try:
            latest[1].save(path)
        except CryoliError as e:
            report_error(e, "Save model")
        else:
            show_info(f"Saved {latest[0]} to {path}")

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "", "Model (*.pt)")
        if path:
            self.save_model(path)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "Model (*.pt)")
        if path:
            load_model_into_store(self.viewer, path)


# --- prediction ----------------------------------------------------------------------------------


class PredictWidget(QWidget):
    """Segment a whole tomogram with a model; copy the result into the labels to correct it."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.store = model_store(napari_viewer)
        self._image: Image | None = None
        self._model: SegmentationModel | None = None
        self._model_name = ""

        self.image_picker = LayerPicker(napari_viewer, Image, self)
        self.image_picker.setToolTip("The tomogram to segment")
        self.model_box = QComboBox()
        self.model_box.setToolTip("A model of this session (newest last) or one loaded from a file")
        self.load_button = QPushButton("Load…")
        self.load_button.setToolTip("Load a model file (.pt)")
        self.tta = QCheckBox("Flip test-time augmentation (slower, smoother)")
        self.tta.setToolTip("Average the predictions of mirrored copies: 8 times the work")
        self.match_noise = QCheckBox("Match the model's noise")
        self.match_noise.setChecked(True)
        self.match_noise.setToolTip(
            "Add white noise to a tomogram clearly cleaner than the one the model was trained on, "
            "up to its noise: a model trained on one noisy tomogram misreads cleaner ones")
        self.controls = JobControls(
            napari_viewer, "Predict", start_tip="Segment the whole tomogram in the background; "
            "adds the prediction and uncertainty layers",
            stop_tip="Stop the prediction (nothing is added)", progress_tip="Tiles predicted",
            status="")
        self.predict_button, self.status = self.controls.start_button, self.controls.status
        self.target_picker = LayerPicker(napari_viewer, Labels, self)
        self.target_picker.setToolTip("The labels layer to copy the prediction into and correct")
        self.copy_scope = QComboBox()
        self.copy_scope.addItems(["whole volume", "current slice"])
        self.copy_scope.setToolTip("Copy every slice, or only the slice on screen")
        self.copy_button = QPushButton("Copy prediction into labels")
        self.copy_button.setToolTip(
            "Replace the labels with the prediction (whole volume or the slice on screen) so you "
            "can correct it by painting, then Fine-tune in the Train panel"
        )

        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Image", self.image_picker)
        row = QHBoxLayout()
        row.addWidget(self.model_box, 1)
        row.addWidget(self.load_button)
        form.addRow("Model", row)
        layout.addLayout(form)
        layout.addWidget(self.tta)
        layout.addWidget(self.match_noise)
        layout.addWidget(self.controls)
        correct = QFormLayout()
        correct.addRow("Correct in", self.target_picker)
        correct.addRow("Copy", self.copy_scope)
        layout.addLayout(correct)
        layout.addWidget(self.copy_button)
        self.regions = UncertainRegionsPanel(napari_viewer, self.target_picker.layer)
        layout.addWidget(self.regions, 1)

        self.load_button.clicked.connect(self._load_dialog)
        self.predict_button.clicked.connect(self.start)
        self.copy_button.clicked.connect(self.copy_prediction)
        self.store.changed.connect(self._refresh_models)
        self._refresh_models()

    def _refresh_models(self) -> None:
        names = list(self.store.models)
        self.model_box.clear()
        self.model_box.addItems(names)
        if names:
            self.model_box.setCurrentIndex(len(names) - 1)
        else:
            self.status.setText("No model yet: train one in the Train panel or load a file.")

    def model(self) -> SegmentationModel | None:
        return self.store.models.get(self.model_box.currentText())

    def start(self) -> Any:
        """Predict the picked image in a worker; returns the job handle or None."""
        from ..segment.prediction import PredictConfig, predict

        image, model = self.image_picker.layer(), self.model()
        if image is None or model is None:
            show_info("Pick an image and a model (train one, or Load… a file)")
            return None
        warn_if_incompatible(model, image, None)
        config = PredictConfig(tta=self.tta.isChecked(), uncertainty=True,
                               match_noise=self.match_noise.isChecked())
        data = image.data
        voxel = L.voxel_size_nm(image)
        self._image, self._model = image, model
        self._model_name = self.model_box.currentText()
        return self.controls.run(
            "Prediction", lambda stop: predict(data, model, config, voxel_size_nm=voxel, stop=stop),
            on_progress=lambda p: self.status.setText(p.message), on_result=self.show_result)

    def show_result(self, prediction: Prediction) -> None:
        if prediction.stopped or prediction.labels is None:
            self.status.setText("Stopped: no prediction added.")
            return
        image = self._image
        grid = {"scale": image.scale, "translate": image.translate}
        for name in (PREDICTION, UNCERTAINTY):
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
        style = L.labels_style(self._model.ontology)
        layer = self.viewer.add_labels(
            np.asarray(prediction.labels), name=PREDICTION, opacity=0.6,
            metadata={L.KEY: {"predicted_from": image.name, "classes": self._model.ontology.to_dict(),
                              "path": None, "model": self._model_name,
                              "intensity": prediction.intensity,
                              "resampled_from_nm": prediction.resampled_from_nm}},
            **style, **grid,
        )
        if prediction.uncertainty is not None:
            uncertainty = self.viewer.add_image(
                np.asarray(prediction.uncertainty), name=UNCERTAINTY, colormap="magma",
                contrast_limits=(0.0, 1.0), opacity=0.6, blending="additive", visible=False, **grid)
            self.regions.find(uncertainty)
        self.viewer.layers.selection.active = layer
        target = L.annotation_layer(self.viewer.layers, image)
        if target is not None:
            self.target_picker.set_layer(target)
        resampled = ("" if prediction.resampled_from_nm is None else
                     f" (resampled to the model's {self._model.voxel_size_nm[0]:.3g} nm voxels)")
        doubt = intensity_warning(prediction.intensity)
        self.status.setText(
            f"Predicted {prediction.tiles} tiles in {prediction.seconds:.1f} s{resampled}. Check "
            f"the '{UNCERTAINTY}' layer for places to correct.\n"
            f"Grey levels: {describe_intensity(prediction.intensity)}"
            + (f"\nWarning: {doubt}" if doubt else "")
        )
        if doubt:
            show_warning(f"Grey levels: {doubt}")

    def copy_prediction(self) -> None:
        """Copy the prediction into the picked labels layer (undoable in napari)."""
        if PREDICTION not in self.viewer.layers:
            show_info("Predict first")
            return
        target = self.target_picker.layer()
        prediction = self.viewer.layers[PREDICTION]
        if target is None or L.same_layer(target, prediction):
            show_info("Pick the labels layer to correct (not the prediction itself)")
            return
        if target.data.shape != prediction.data.shape:
            report_error(InputError("the prediction and the labels have different shapes"), "Copy")
            return
        source = np.asarray(prediction.data)
        if self.copy_scope.currentText() == "current slice":
            z = round(prediction.world_to_data(self.viewer.dims.point)[0])
            index = (slice(z, z + 1),)
        else:
            index = (slice(None),)
        changed = np.nonzero(np.asarray(target.data[index]) != source[index])
        offset = index[0].start or 0
        indices = (changed[0] + offset, *changed[1:])
        target.data_setitem(indices, source[indices])  # one undoable step; counts follow
        show_info(f"Copied {len(changed[0]):,} voxels into {target.name}: correct them by painting, "
                  "then Fine-tune")

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "Model (*.pt)")
        if path:
            load_model_into_store(self.viewer, path)
