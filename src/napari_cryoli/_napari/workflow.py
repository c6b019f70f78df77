"""The Workflow dock widget: from a tomogram to an exported measurement, one step at a time.

The steps (open → annotate → train → predict → correct → measure → export), what each needs,
which are done and the next action are worked out by :func:`workflow_steps` from a
:class:`SessionState`, a plain record of what the viewer holds; the widget gathers that record
from the layers and the other panels and opens each step's panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from napari.layers import Image
from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QLabel,
    QMainWindow,
    QMenu,
    QScrollArea,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..annotation_session import ClassCounts, touched_rows
from ..classes import UNLABELED
from . import layers as L
from .status import StatusLabel
from .worker import active_job, report_error, unwrapped

if TYPE_CHECKING:
    import napari
    from napari.layers import Labels

PLUGIN = "napari-cryoli"
#: Layers the plugin derives from a tomogram: never "the tomogram" themselves.
DERIVED = ("uncertainty", "SEI thickness (nm)", "training preview")
PREDICTION = "prediction"
MEASURED = ("SEI thickness (nm)", "dendrites")
#: Running job name (worker.start_job) -> the step it belongs to.
JOB_STEPS = {"Reconstruction": "open", "Training": "train", "Prediction": "predict",
             "Measurement": "measure"}
REFRESH_MS = 500


@dataclass(frozen=True)
class SessionState:
    """What the viewer holds, as far as the workflow is concerned."""

    tomogram: str | None = None
    shape: tuple[int, ...] = ()
    painted: tuple[tuple[str, int], ...] = ()  # (class name, voxels) of each painted class
    models: tuple[str, ...] = ()  # the session's models, oldest first
    running: str | None = None  # the step whose job is running
    prediction_by: str | None = None  # model of the 'prediction' layer ("" when unknown)
    first_prediction_by: str | None = None  # model of the first prediction seen
    regions: int | None = None  # uncertain regions listed in the Predict panel
    measured: str | None = None  # the measurement's summary ("" when measured, text unknown)
    exported: tuple[str, ...] = ()  # names of the files exported


@dataclass(frozen=True)
class Step:
    """One step of the workflow as the panel shows it."""

    key: str
    title: str
    panel: str | None  # the dock widget (its display name in napari.yaml) that does it
    done: bool
    ready: bool  # what it needs is there
    text: str  # what was done, or what to do, or what is missing
    optional: bool = False


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _voxels(n: int) -> str:
    return f"{n:,}" if n < 10_000 else f"{n / 1000:.0f}k"


def workflow_steps(s: SessionState) -> tuple[Step, ...]:
    """The seven steps for session state ``s``, in order."""
    painted_classes = [name for name, n in s.painted if n > 0]
    painted = " · ".join(f"{name} {_voxels(n)}" for name, n in s.painted if n > 0)
    latest = s.models[-1] if s.models else None
    outdated = s.prediction_by is not None and latest is not None and s.prediction_by not in ("",
                                                                                           latest)
    fine_tuned = (s.first_prediction_by in s.models
                  and s.models.index(s.first_prediction_by) < len(s.models) - 1)
    panel = "Reconstruct" if s.running == "open" else (s.running or "").title()
    running = {s.running: f"Running… (progress in the {panel} panel)"} if s.running else {}

    steps = [
        Step("open", "Open", None, s.tomogram is not None, True,
             f"{s.tomogram}: {' × '.join(map(str, s.shape))} voxels" if s.tomogram else
             "A tomogram file, the sample or a tilt series to reconstruct (button ▾)."),
        Step("annotate", "Annotate", "Annotate", len(painted_classes) >= 2, s.tomogram is not None,
             (painted if len(painted_classes) >= 2 else
              "Paint strokes of each class on a few slices (Alt+1…Alt+5)"
              + (f"; so far {painted}." if painted else "."))
             if s.tomogram else "Needs a tomogram."),
        Step("train", "Train", "Train", bool(s.models), len(painted_classes) >= 2,
             f"{_count(len(s.models), 'model')}; newest: {latest}" if s.models else
             "Press Train (fine-tunes the pre-trained network, minutes)."
             if len(painted_classes) >= 2 else "Needs strokes of at least two classes."),
        Step("predict", "Predict", "Predict", s.prediction_by is not None and not outdated,
             bool(s.models),
             f"Predict again with '{latest}' (the prediction is from '{s.prediction_by}')."
             if outdated else
             "Done" + (f"; {_count(s.regions, 'uncertain region')}" if s.regions is not None else "")
             if s.prediction_by is not None else
             "Press Predict (the whole tomogram, with its uncertainty)."
             if s.models else "Needs a model: train one (or Load… a model file)."),
        Step("correct", "Correct", "Predict", fine_tuned, s.prediction_by is not None,
             "Fine-tuned on the corrections." if fine_tuned else
             "Copy it into the labels, fix the uncertain regions, Train again."
             if s.prediction_by is not None else "Needs a prediction.", optional=True),
        Step("measure", "Measure", "Measure", s.measured is not None, s.prediction_by is not None,
             (s.measured or "Measured.") if s.measured is not None else
             "Press Measure on the prediction."
             if s.prediction_by is not None else "Needs a segmentation (the prediction)."),
        Step("export", "Export", "Measure", bool(s.exported), s.measured is not None,
             "Wrote " + ", ".join(s.exported) if s.exported else
             "Export JSON… and Export CSV… in the Measure panel."
             if s.measured is not None else "Needs a measurement."),
    ]
    if s.running:
        steps = [Step(st.key, st.title, st.panel, st.done, st.ready, running[st.key],
                      st.optional) if st.key in running else st for st in steps]
    return tuple(steps)


def next_step(steps: tuple[Step, ...]) -> Step | None:
    """The first step not done; an optional one only when it is ready and no later step is
    done (once measured, correcting is no longer suggested)."""
    for i, step in enumerate(steps):
        if step.done:
            continue
        if not step.optional:
            return step
        if step.ready and not any(later.done for later in steps[i + 1:]):
            return step
    return None


def next_action(s: SessionState, steps: tuple[Step, ...]) -> str:
    """One sentence: what to do now."""
    if s.running:
        title = next(st.title for st in steps if st.key == s.running)
        return f"{title} is running: wait, or Stop it in its panel."
    step = next_step(steps)
    if step is None:
        return "All done: the segmentation is measured and exported."
    text = f"{step.title}. {step.text}"
    if step.optional:
        return f"{text} Or go on to Measure."
    return text


# --- the widget -----------------------------------------------------------------------------------


def shortcut_rows() -> list[tuple[str, str]]:
    """(what, keys) of the keys used along the workflow, as napari's settings bind them now."""
    try:
        from napari.settings import get_settings

        bound = get_settings().shortcuts.shortcuts
    except Exception:  # noqa: BLE001 - settings unreadable: napari's defaults below
        bound = {}

    def keys(action: str, default: str) -> str:
        found = [str(k) for k in bound.get(f"napari:{action}", [])]
        return " / ".join(found) if found else default

    return [
        ("Choose a class", "Alt+1 … Alt+5"),
        ("Paint / erase", (f"{keys('activate_labels_paint_mode', 'P')} · "
                          f"{keys('activate_labels_erase_mode', 'E')}")),
        ("Fill", keys("activate_labels_fill_mode", "F")),
        ("Pan and zoom", keys("activate_labels_pan_zoom_mode", "Z")),
        ("Brush size", f"{keys('decrease_brush_size', '[')} · {keys('increase_brush_size', ']')}"),
        ("Undo · redo", "Ctrl+Z · Ctrl+Shift+Z"),
        ("Previous · next slice", (f"{keys('increment_dims_left', 'Left')} · "
                                  f"{keys('increment_dims_right', 'Right')}")),
        ("2D / 3D · reset view", (f"{keys('toggle_ndisplay', 'Ctrl+Y')} · "
                                 f"{keys('reset_view', 'Ctrl+R')}")),
    ]


class _TabTidier(QObject):
    """Tidies the window's dock tab bars as Qt makes them (it sets eliding after creating one)."""

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.ChildAdded and isinstance(event.child(), QTabBar):
            QTimer.singleShot(0, lambda: tidy_tabs(obj))
        return False


def tidy_tabs(window: QMainWindow) -> None:
    """Show dock tab titles whole (scroll when they do not fit) instead of eliding them, now and
    for the tab bars Qt makes later."""
    if window.findChild(_TabTidier) is None:
        window.installEventFilter(_TabTidier(window))
    for bar in window.findChildren(QTabBar):
        if bar.parent() is window:
            bar.setElideMode(Qt.TextElideMode.ElideNone)
            bar.setUsesScrollButtons(True)
            bar.setExpanding(False)


def _dock_of(widget: QWidget | None) -> QDockWidget | None:
    while widget is not None and not isinstance(widget, QDockWidget):
        widget = widget.parentWidget()
    return widget


class WorkflowWidget(QWidget):
    """The steps, which are done, the next action; a button per step opens its panel."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = SessionState()
        self.steps: tuple[Step, ...] = ()
        self._first_prediction_by: str | None = None
        self._counted: Labels | None = None
        self._counts = ClassCounts()

        self.next_label = StatusLabel()
        self.next_label.setObjectName("workflowNext")
        font = self.next_label.font()
        font.setBold(True)
        self.next_label.setFont(font)
        self.marks: dict[str, QLabel] = {}
        self.buttons: dict[str, QToolButton] = {}
        self.texts: dict[str, StatusLabel] = {}

        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.setSpacing(4)
        outer.addWidget(self.next_label)
        # the steps scroll, never overlap, when the panel below leaves them too little height
        self.body = QWidget()
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # a fixed width for the texts: a scroll bar coming and going would re-wrap them
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.scroll.setWidget(self.body)
        outer.addWidget(self.scroll, 1)
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        grid = QGridLayout()
        grid.setColumnStretch(2, 1)
        grid.setVerticalSpacing(0)
        for row, step in enumerate(workflow_steps(self.state)):
            mark = QLabel()
            mark.setFixedWidth(18)
            button = QToolButton()
            button.setText(f"{row + 1}  {step.title}")
            button.setMinimumWidth(104)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setAutoRaise(True)
            button.setStyleSheet("QToolButton { padding: 0px 4px; }")
            text = StatusLabel()
            mark.setContentsMargins(0, 3, 0, 0)  # first lines level with the button's text
            text.setContentsMargins(0, 3, 0, 0)
            text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            grid.addWidget(mark, row, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(button, row, 1, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(text, row, 2, Qt.AlignmentFlag.AlignTop)
            self.marks[step.key], self.buttons[step.key], self.texts[step.key] = mark, button, text
            if step.panel is not None:
                button.setToolTip(f"Open the {step.panel} panel")
                button.clicked.connect(lambda _=False, name=step.panel: self.open_panel(name))
        layout.addLayout(grid)
        self._open_menu()

        keys = QGroupBox("Over the image")
        key_grid = QGridLayout(keys)
        key_grid.setVerticalSpacing(1)
        rows = shortcut_rows()
        half = (len(rows) + 1) // 2
        for i, (what, key) in enumerate(rows):
            r, c = i % half, 2 * (i // half)
            key_label = QLabel(f"<b>{key}</b>")
            key_grid.addWidget(QLabel(what), r, c)
            key_grid.addWidget(key_label, r, c + 1)
        key_grid.setColumnStretch(1, 1)
        key_grid.setColumnStretch(3, 1)
        self.shortcuts = keys
        self.shortcuts_button = QToolButton()
        self.shortcuts_button.setText("Keyboard shortcuts")
        self.shortcuts_button.setCheckable(True)
        self.shortcuts_button.setChecked(True)
        self.shortcuts_button.setAutoRaise(True)
        self.shortcuts_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.shortcuts_button.setToolTip("Show or hide the keys used along the workflow")
        self.shortcuts_button.toggled.connect(self.show_shortcuts)
        layout.addWidget(self.shortcuts_button)
        layout.addWidget(keys)
        layout.addStretch(1)
        self.show_shortcuts(True)

        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self._refresh_soon = QTimer(self)
        self._refresh_soon.setSingleShot(True)
        self._refresh_soon.setInterval(0)
        self._refresh_soon.timeout.connect(self.refresh)
        events = napari_viewer.layers.events
        for event in (events.inserted, events.removed):
            event.connect(self._soon)
        self.refresh()

    def show_shortcuts(self, show: bool) -> None:
        self.shortcuts.setVisible(show)
        self.shortcuts_button.setChecked(show)
        arrow = Qt.ArrowType.DownArrow if show else Qt.ArrowType.RightArrow
        self.shortcuts_button.setArrowType(arrow)

    def _soon(self, *_) -> None:
        try:
            self._refresh_soon.start()  # a child timer: it dies with the panel
        except RuntimeError:  # the panel is closed; napari drops this handler with it
            pass

    def _open_menu(self) -> None:
        menu = QMenu(self)
        menu.addAction("Tomogram file…", self.open_file_dialog)
        menu.addAction("Sample tomogram (synthetic dendrite)", self.open_sample)
        menu.addAction("Reconstruct a tilt series…", lambda: self.open_panel("Reconstruct"))
        button = self.buttons["open"]
        button.setMenu(menu)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        button.setToolTip("Open a tomogram file, the sample, or reconstruct a tilt series")

    # --- gathering the state -----------------------------------------------------------------

    def tomogram(self) -> Image | None:
        """The tomogram being worked on: the active image, else the first one opened."""
        def is_tomogram(layer) -> bool:
            meta = layer.metadata.get(L.KEY, {})
            return (isinstance(layer, Image) and layer.data.ndim == 3
                    and meta.get("kind") != "stack" and layer.name not in DERIVED
                    and not layer.name.endswith(" (smoothed)"))

        active = self.viewer.layers.selection.active
        if active is not None and is_tomogram(active):
            return active
        return next((layer for layer in self.viewer.layers if is_tomogram(layer)), None)

    def _painted(self, image: Image | None) -> tuple[tuple[str, int], ...]:
        labels = L.annotation_layer(self.viewer.layers, image) if image is not None else None
        if labels is None:
            self._watch(None)
            return ()
        self._watch(labels)
        self._counts.update(labels.data)
        classes = [cls for cls in L.layer_ontology(labels) if cls.id != UNLABELED]
        totals = self._counts.totals(cls.id for cls in classes)
        return tuple((cls.name, totals[cls.id]) for cls in classes)

    def _watch(self, labels: Labels | None) -> None:
        """Count the labels layer's voxels incrementally: slices a stroke touched, or all."""
        if L.same_layer(labels, self._counted) or (labels is None and self._counted is None):
            return
        if self._counted is not None:
            self._counted.events.paint.disconnect(self._on_paint)
            self._counted.events.data.disconnect(self._on_data)
        self._counted = labels
        self._counts = ClassCounts()
        self._counts.touch()  # counted in full on the next look
        if labels is not None:
            labels.events.paint.connect(self._on_paint)
            labels.events.data.connect(self._on_data)

    def _on_paint(self, event) -> None:
        data = self._counted.data
        self._counts.touch(*(touched_rows(event.value, data.shape[0]) if data.ndim > 2 else ()))
        # napari emits `paint` before writing the stroke: count on a later turn of the loop
        self._soon()

    def _on_data(self, *_) -> None:
        self._counts.touch()
        self._soon()

    def _panel(self, name: str) -> Any:
        """The open panel ``name`` of this plugin, or None."""
        try:
            return self.viewer.window.dock_widgets.get(f"{name} ({PLUGIN})")
        except AttributeError:  # a viewer without a window
            return None

    def gather(self) -> SessionState:
        """Read the session state off the viewer and the open panels."""
        from .segment import model_store

        image = self.tomogram()
        layers = self.viewer.layers
        prediction_by = None
        if PREDICTION in layers:
            prediction_by = layers[PREDICTION].metadata.get(L.KEY, {}).get("model") or ""
            if self._first_prediction_by is None and prediction_by:
                self._first_prediction_by = prediction_by
        job = active_job(self.viewer)
        predict, measure = self._panel("Predict"), self._panel("Measure")
        regions = None
        if predict is not None and prediction_by is not None and predict.regions.list.count():
            regions = len(predict.regions.regions)
        measured = None
        if any(name in layers for name in MEASURED):
            measured = ""
            if measure is not None and measure.result is not None:
                measured = measure.summary.text().split("\n")[0]
        return SessionState(
            tomogram=image.name if image is not None else None,
            shape=tuple(image.data.shape) if image is not None else (),
            painted=self._painted(image),
            models=tuple(model_store(self.viewer).models),
            running=JOB_STEPS.get(job.name) if job is not None and not job.done else None,
            prediction_by=prediction_by,
            first_prediction_by=self._first_prediction_by,
            regions=regions,
            measured=measured,
            exported=tuple(p.name for p in getattr(measure, "exported", ())),
        )

    # --- showing it ----------------------------------------------------------------------------

    def refresh(self) -> None:
        state = self.gather()
        if state == self.state and self.steps:
            self._fit_dock()
            return
        self.state = state
        self.steps = workflow_steps(state)
        current = next_step(self.steps)
        self.next_label.setText("Next: " + next_action(state, self.steps)
                                if current is not None or state.running else
                                next_action(state, self.steps))
        for step in self.steps:
            is_next = current is not None and step.key == current.key
            mark = "✔" if step.done else "▶" if is_next else "○"
            self.marks[step.key].setText(mark)
            self.marks[step.key].setStyleSheet("color: #5fb55f;" if step.done else "")
            text = step.text + (" (optional)" if step.optional and not step.done else "")
            self.texts[step.key].setText(text)
            self.texts[step.key].setEnabled(step.ready or step.done)
            font = self.buttons[step.key].font()
            font.setBold(is_next)
            self.buttons[step.key].setFont(font)
        self._fit_dock()

    def _fit_dock(self) -> None:
        """Grow the dock (taking height from the panel below) until the steps show whole."""
        own = _dock_of(self)
        window = own.parentWidget() if own is not None else None
        if not isinstance(window, QMainWindow) or own.isFloating():
            return
        self.body.layout().activate()
        missing = self.body.minimumSizeHint().height() + 4 - self.scroll.viewport().height()
        if missing > 0 and self.scroll.viewport().height() > 0:
            window.resizeDocks([own], [own.height() + missing], Qt.Orientation.Vertical)

    # --- actions -------------------------------------------------------------------------------

    def open_panel(self, name: str) -> Any:
        """Open (or show) the plugin panel ``name`` below this one, tabbed with the other
        step panels; returns the panel's widget."""
        window = unwrapped(self.viewer).window  # the plugin's viewer proxy hides Qt objects
        others = [d for d in window._qt_window.findChildren(QDockWidget)
                  if d.objectName().endswith(f"({PLUGIN})") and not d.isHidden()
                  and d is not _dock_of(self) and not d.objectName().startswith(f"{name} (")]
        new = self._panel(name) is None
        dock, widget = window.add_plugin_dock_widget(PLUGIN, name)
        dock = unwrapped(dock)
        dock.setWindowTitle(name)  # the tab's title; napari's own title bar keeps the full name
        qt_window = window._qt_window
        own = _dock_of(self)
        if new and others:
            qt_window.tabifyDockWidget(others[0], dock)
        elif new and own is not None and qt_window.dockWidgetArea(own) == \
                qt_window.dockWidgetArea(dock):
            qt_window.splitDockWidget(own, dock, Qt.Orientation.Vertical)
            self.show_shortcuts(False)  # room for the panel; the button shows them again
        dock.show()
        dock.raise_()
        if own is not None:  # the steps keep the height they need; the panel gets the rest
            self.body.layout().activate()
            height = (own.height() - self.scroll.viewport().height()
                      + self.body.minimumSizeHint().height() + 4)
            qt_window.resizeDocks([own], [height], Qt.Orientation.Vertical)
        tidy_tabs(qt_window)
        self._soon()
        return widget

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open tomogram", "", "Tomograms (*.mrc *.rec *.map *.mrc.gz *.rec.gz);;"
            "All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> list:
        """Open a tomogram file through the plugin's reader (problems: a notification)."""
        try:
            return self.viewer.open(path, plugin=PLUGIN)
        except Exception as e:  # noqa: BLE001 - napari wraps reader errors in its own type
            report_error(e.__cause__ or e, "Open")
            return []

    def open_sample(self) -> None:
        self.viewer.open_sample(PLUGIN, "dendrite")
