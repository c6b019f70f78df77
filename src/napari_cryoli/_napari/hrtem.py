"""The HRTEM dock widget: spectrum in 1/Å with rings and reflections, phases, local phase map,
ABSF, and layer thickness from a line; plus the reader hook for DM3/DM4 and TIFF micrographs.

Micrograph-space layers (image, region, phase map, ABSF, line) are in nm like every other layer
of the plugin; spectrum-space layers (power spectrum, rings, reflections) are in 1/Å with the zero
frequency at the origin. "Spectrum view" shows one set or the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Points, Shapes
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import CryoliError, InputError
from ..jobs import Progress
from ..settings import spin_box_options
from . import layers as L
from .figures import FigurePanel
from .job_controls import JobControls
from .pickers import LayerPicker
from .worker import report_error

if TYPE_CHECKING:
    import napari

    from ..hrtem.lattice import LatticeAnalysis

SPECTRUM_ROLE = "hrtem-spectrum"  # metadata role of layers in 1/Å
DEFAULT_RINGS = "2.48, 2.36, 2.04, 1.75, 1.44"


# --- reader hook ------------------------------------------------------------------------------


def get_reader(path: str | list[str]) -> Callable | None:
    """Reader for .dm3/.dm4/.tif/.tiff micrographs, else None."""
    from ..hrtem.io import is_micrograph_path

    paths = [path] if isinstance(path, str) else list(path)
    if not paths or not all(is_micrograph_path(p) for p in paths):
        return None
    return read_micrographs


def read_micrographs(path: str | list[str]) -> list[tuple]:
    """Each micrograph as a 2D image layer with its pixel size as scale (nm)."""
    from ..hrtem.io import read_micrograph

    paths = [path] if isinstance(path, str) else list(path)
    out = []
    for p in paths:
        m = read_micrograph(p)
        for note in m.notes:
            show_warning(f"{Path(p).name}: {note}")
        if m.pixel_size_A is None:
            show_warning(f"{Path(p).name} carries no pixel size: set it in the HRTEM widget")
        nm = m.pixel_size_nm or 1.0
        meta = {L.KEY: {"path": str(p), "voxel_size_nm": [nm, nm], "kind": "image",
                        "pixel_size_A": m.pixel_size_A, "warnings": list(m.notes)}}
        out.append((m.data, {"name": Path(p).stem, "scale": (nm, nm), "metadata": meta},
                    "image"))
    return out


# --- helpers ----------------------------------------------------------------------------------


def layer_pixel_size_A(layer: Image) -> float | None:
    """Pixel size (Å) a micrograph layer carries: the reader's, else its scale when not 1."""
    meta = layer.metadata.get(L.KEY, {})
    if "pixel_size_A" in meta:
        return meta["pixel_size_A"]
    if meta.get("voxel_size_nm"):
        return float(meta["voxel_size_nm"][-1]) * 10.0
    scale = float(layer.scale[-1])
    return None if scale == 1.0 else scale * 10.0


def region_from_shapes(shapes: Shapes | None, image: Image) -> tuple[int, int, int, int] | None:
    """Pixel box (y0, x0, y1, x1) of the selected shape (else the last) in the image's grid."""
    if shapes is None or len(shapes.data) == 0:
        return None
    index = max(shapes.selected_data) if shapes.selected_data else len(shapes.data) - 1
    if shapes.shape_type[index] not in ("rectangle", "polygon", "ellipse"):
        raise InputError(f"the region is a {shapes.shape_type[index]} in {shapes.name}: draw a "
                         "rectangle, polygon or ellipse")
    corners = np.asarray(shapes.data[index])[:, -2:]
    world = corners * np.asarray(shapes.scale[-2:]) + np.asarray(shapes.translate[-2:])
    pixels = (world - np.asarray(image.translate[-2:])) / np.asarray(image.scale[-2:])
    (y0, x0), (y1, x1) = pixels.min(0), pixels.max(0)
    return (math.floor(y0), math.floor(x0), math.ceil(y1), math.ceil(x1))


def parse_rings(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError as e:
        raise InputError(f"rings must be spacings in Å separated by commas, not {text!r}") from e
    if any(v <= 0 for v in values):
        raise InputError("ring spacings must be positive")
    return values


def ring_polygons(spacings: list[float], points: int = 180) -> list[np.ndarray]:
    """Circles of radius 1/d (1/Å), as closed paths (y, x)."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return [np.stack([np.sin(t) / d, np.cos(t) / d], axis=1) for d in spacings]


def profile_figure(profile, result):
    """The band-averaged profile along the line with the two edges found."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 2.4), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(profile.distance_nm, profile.values, color="0.3", lw=1)
    for edge in result.edges_nm:
        ax.axvline(edge, color="magenta", lw=1)
    ax.set_xlabel("distance along the line (nm)")
    ax.set_ylabel("mean intensity")
    ax.set_title(f"thickness {result.thickness_nm:.2f} nm", fontsize=9)
    return figure


class MicrographShapesPicker(LayerPicker):
    """Shapes layers drawn on micrographs (not the rings of a spectrum); with ``auto=False`` a new
    layer is not picked by itself (the region stays "whole image" until chosen)."""

    def __init__(self, viewer, parent=None, *, auto: bool = True, **kwargs) -> None:
        self._auto = auto
        super().__init__(viewer, Shapes, parent, **kwargs)

    def layers(self):
        return [layer for layer in super().layers()
                if layer.metadata.get("role") != SPECTRUM_ROLE]

    def refresh(self, event=None) -> None:
        super().refresh(event if self._auto else None)


class HrtemWidget(QWidget):
    """Lattice analysis of HRTEM micrographs (see the module docstring)."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self._source: Image | None = None
        self.analysis: LatticeAnalysis | None = None
        self.phase_map = None
        self.thickness = None

        self.image_picker = LayerPicker(napari_viewer, Image, self)
        self.image_picker.setToolTip("The micrograph (a 2D image)")
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open a micrograph (.dm3, .dm4, .tif, .tiff, .mrc)")
        self.pixel_size = QDoubleSpinBox(decimals=4, minimum=0.0, maximum=1000.0, value=0.0)
        self.pixel_size.setSuffix(" Å")
        self.pixel_size.setSpecialValueText("unknown: enter it")
        self.pixel_size.setToolTip("Pixel size of the micrograph in Å (every spacing scales "
                                   "with it)")
        self.region_picker = MicrographShapesPicker(napari_viewer, self, auto=False,
                                                    none_text="whole image")
        self.region_picker.setToolTip("A Shapes layer whose selected (else last) shape bounds "
                                      "the region to transform")
        self.rings = QLineEdit(DEFAULT_RINGS)
        self.rings.setToolTip("Resolution rings to draw, spacings in Å")
        self.rings_box = QCheckBox("Rings")
        self.rings_box.setChecked(True)
        self.spectrum_button = QPushButton("Spectrum + reflections")
        self.spectrum_button.setToolTip("Power spectrum (1/Å), reflections and phases")
        self.picks_button = QPushButton("Identify with picks")
        self.picks_button.setToolTip("Refine the points of the reflections layer (add some with "
                                     "the Points tools) and identify again")
        self.view_box = QCheckBox("Spectrum view")
        self.view_box.setToolTip("Show the spectrum-space layers (1/Å) instead of the "
                                 "micrograph-space layers (nm)")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(["d (Å)", "azimuth (°)", "∠ to 1st (°)", "SNR",
                                              "phase", "hkl", "candidates"])
        self.table.setToolTip("Reflections, strongest first; the angle is between each one's "
                              "lattice planes and the first's (0-90°)")
        self.table_button = QPushButton("Phase table…")
        self.table_button.setToolTip("Load your own phase table (JSON, like the shipped "
                                     "phases.json); default: Li, LiH, Cu, Li2O, LiF, Cu2O")
        self.phase_table = None  # None: the shipped table
        self.table.setMinimumHeight(140)

        from ..hrtem.phasemap import PhaseMapSettings

        self.window_nm = QDoubleSpinBox(decimals=1, **spin_box_options(PhaseMapSettings, "window_nm"))
        self.window_nm.setSuffix(" nm")
        self.window_nm.setToolTip("Side of the sliding FFT window")
        self.map_button = QPushButton("Phase map")
        self.map_button.setToolTip("Local phases from a sliding-window FFT, as a labels layer")
        self.absf_button = QPushButton("ABSF filter")
        self.absf_button.setToolTip("Average background subtraction filter (Kilaas 1998): "
                                    "filtered and difference images")

        self.line_picker = MicrographShapesPicker(napari_viewer, self)
        self.line_picker.setToolTip("A Shapes layer with a line drawn across the layer")
        self.line_width = QDoubleSpinBox(decimals=1, minimum=0.1, maximum=100.0, value=5.0)
        self.line_width.setSuffix(" nm")
        self.line_width.setToolTip("Width of the band averaged along the line")
        self.profile_button = QPushButton("Thickness from line")
        self.profile_result = QLabel("")
        self.profile_result.setWordWrap(True)
        self.profile_plot = FigurePanel()
        self.profile_plot.setVisible(False)

        self.controls = JobControls(napari_viewer, None, also_disable=(
            self.spectrum_button, self.picks_button, self.map_button, self.absf_button))

        layout = QVBoxLayout(self)
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.image_picker, 1)
        row.addWidget(self.open_button)
        form.addRow("Micrograph", row)
        form.addRow("Pixel size", self.pixel_size)
        form.addRow("Region", self.region_picker)
        form.addRow("Phases", self.table_button)
        row = QHBoxLayout()
        row.addWidget(self.rings_box)
        row.addWidget(self.rings, 1)
        form.addRow(row)
        layout.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.spectrum_button)
        row.addWidget(self.picks_button)
        row.addWidget(self.view_box)
        layout.addLayout(row)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        box = QGroupBox("Whole micrograph")
        form = QFormLayout(box)
        row = QHBoxLayout()
        row.addWidget(self.window_nm)
        row.addWidget(self.map_button)
        form.addRow("Window", row)
        form.addRow(self.absf_button)
        layout.addWidget(box)
        box = QGroupBox("Layer thickness")
        form = QFormLayout(box)
        form.addRow("Line", self.line_picker)
        form.addRow("Band width", self.line_width)
        form.addRow(self.profile_button)
        form.addRow(self.profile_result)
        form.addRow(self.profile_plot)
        layout.addWidget(box)
        layout.addWidget(self.controls)

        self.image_picker.currentIndexChanged.connect(self._on_image)
        self.open_button.clicked.connect(self._open_dialog)
        self.spectrum_button.clicked.connect(lambda: self.analyse())
        self.picks_button.clicked.connect(self.identify_picks)
        self.view_box.toggled.connect(self.show_spectrum_view)
        self.table_button.clicked.connect(self._table_dialog)
        self.map_button.clicked.connect(self.start_phase_map)
        self.absf_button.clicked.connect(self.start_absf)
        self.profile_button.clicked.connect(self.measure_line)
        self._on_image()

    # --- inputs -------------------------------------------------------------------------------

    def _on_image(self, *_) -> None:
        layer = self.image_picker.layer()
        px = layer_pixel_size_A(layer) if layer is not None else None
        self.pixel_size.setValue(px or 0.0)

    def _inputs(self) -> tuple[Image, np.ndarray, float]:
        layer = self.image_picker.layer()
        if layer is None:
            raise InputError("open a micrograph first")
        data = np.asarray(layer.data)
        if data.ndim != 2 or layer.rgb:
            raise InputError(f"{layer.name} is not a 2D grey-level micrograph")
        px = self.pixel_size.value()
        if px <= 0:
            raise InputError(f"{layer.name} carries no pixel size: enter it (Å)")
        return layer, data.astype(np.float32, copy=True), px

    # --- spectrum, reflections, phases --------------------------------------------------------

    def analyse(self, picks=()) -> Any:
        """Spectrum, reflections and phases of the micrograph (or region) in a worker; ``picks``
        ((gy, gx) in 1/Å) are refined on the spectrum and added to the found reflections."""
        from ..hrtem.lattice import analyse
        from ..hrtem.reflections import refine_picks
        from ..hrtem.spectrum import power_spectrum

        try:
            layer, data, px = self._inputs()
            region = region_from_shapes(self.region_picker.layer(), layer)
            rings = parse_rings(self.rings.text()) if self.rings_box.isChecked() else []
        except CryoliError as e:
            report_error(e, "HRTEM")
            return None
        self._source = layer

        picks = [tuple(p) for p in picks]
        table = self._table()

        def job(stop):
            yield Progress(0, 1, "spectrum")
            extra = tuple(refine_picks(power_spectrum(data, px, region), picks)) if picks else ()
            return analyse(data, px, region, table, extra=extra), rings

        return self.controls.run("HRTEM spectrum", job, on_result=self.show_analysis)

    def identify_picks(self) -> Any:
        """Refine every point of the reflections layer and identify again (in a worker)."""
        points = self._spectrum_layer("reflections")
        if self.analysis is None or points is None:
            show_info("Compute the spectrum first, then add points to its reflections layer")
            return None
        return self.analyse(picks=np.asarray(points.data)[:, -2:].copy())

    def show_analysis(self, result) -> None:
        analysis, rings = result
        self.analysis = analysis
        source = self._source
        name = source.name
        spectrum = analysis.spectrum
        n, step = spectrum.n, spectrum.step
        log = spectrum.log()
        lo, hi = np.percentile(log, [1, 99.9])
        meta = {"role": SPECTRUM_ROLE, "source": name}
        self._replace(Image, f"{name} spectrum", log, scale=(step, step),
                      translate=(-(n // 2) * step, -(n // 2) * step), colormap="gray",
                      contrast_limits=(float(lo), float(hi)), metadata=meta)
        if rings:
            self._replace(Shapes, f"{name} rings", ring_polygons(rings), shape_type="polygon",
                          edge_color="yellow", face_color="transparent", edge_width=0.004,
                          opacity=0.6, metadata=meta, features={"d_A": rings})
        ident = analysis.identification
        coords, phase, hkl, d = [], [], [], []
        for r, assigned in zip(ident.reflections, ident.assigned):
            for sign in (1, -1):
                coords.append((sign * r.gy, sign * r.gx))
                phase.append(assigned[0] if assigned else "?")
                hkl.append("".join(str(sign * v) for v in assigned[1]) if assigned else "")
                d.append(r.d_A)
        features = {"d_A": np.array(d, float), "phase": np.array(phase, dtype=object),
                    "hkl": np.array(hkl, dtype=object)}
        self._replace(Points, f"{name} reflections", np.array(coords).reshape(-1, 2),
                      features=features, size=8 * step, face_color="transparent",
                      border_color="cyan", border_width=0.15, metadata=meta,
                      text={"string": "{phase} {hkl} {d_A:.2f} Å", "color": "cyan", "size": 9,
                            "anchor": "upper_left"})
        self._fill_table(ident)
        self.view_box.setChecked(True)
        self.show_spectrum_view(True)

    def _fill_table(self, ident) -> None:
        from ..hrtem.reflections import angle_between

        self.table.setRowCount(len(ident.reflections))
        for i, (r, assigned) in enumerate(zip(ident.reflections, ident.assigned)):
            cands = ", ".join(f"{c.phase} {''.join(map(str, c.hkl))}"
                              for c in ident.candidates[i][:4])
            angle = angle_between(r, ident.reflections[0]) if i else 0.0
            values = (f"{r.d_A:.3f}", f"{r.azimuth_deg:.1f}", f"{angle:.1f}", f"{r.snr:.1f}",
                      assigned[0] if assigned else "", "".join(map(str, assigned[1]))
                      if assigned else "", cands)
            for j, v in enumerate(values):
                self.table.setItem(i, j, QTableWidgetItem(v))
        if ident.amorphous:
            self.summary.setText("No reflection: amorphous (or no lattice resolved)")
            return
        parts = []
        for m in ident.phases:
            zone = "".join(map(str, m.zone_axis))
            text = f"{m.phase} [{zone}] ({len(m.indices)} reflections, score {m.score:.2f})"
            if m.ambiguous_with:
                text += f", ambiguous with {', '.join(m.ambiguous_with)}"
            parts.append(text)
        self.summary.setText("; ".join(parts) or
                             f"{len(ident.reflections)} reflections, no phase at a zone axis")

    # --- whole micrograph ---------------------------------------------------------------------

    def start_phase_map(self) -> Any:
        from ..hrtem.phasemap import PhaseMapSettings, phase_map

        try:
            layer, data, px = self._inputs()
        except CryoliError as e:
            report_error(e, "Phase map")
            return None
        self._source = layer
        settings = PhaseMapSettings(window_nm=self.window_nm.value())
        table = self._table()
        return self.controls.run("HRTEM phase map",
                                 lambda stop: phase_map(data, px, table, settings, stop),
                                 on_result=self.show_phase_map)

    def show_phase_map(self, result) -> None:
        from ..hrtem.phasemap import map_ontology
        if result.stopped:
            show_info("Phase map stopped: nothing added")
            return
        self.phase_map = result
        source = self._source
        ontology = map_ontology(self._table())
        style = L.labels_style(ontology)
        layer = self._replace("labels", f"{source.name} phases", result.labels,
                              scale=tuple(source.scale[-2:]),
                              translate=tuple(source.translate[-2:]), opacity=0.45,
                              metadata={L.KEY: {"classes": ontology.to_dict(),
                                                "window_px": result.window_px}}, **style)
        layer.editable = True
        self.view_box.setChecked(False)

    def start_absf(self) -> Any:
        from ..hrtem.absf import absf

        try:
            layer, data, _ = self._inputs()
        except CryoliError as e:
            report_error(e, "ABSF")
            return None
        self._source = layer

        def job(stop):
            yield Progress(0, 1, "ABSF")
            return absf(data)

        return self.controls.run("ABSF", job, on_result=self.show_absf)

    def show_absf(self, result) -> None:
        source = self._source
        kw = {"scale": tuple(source.scale[-2:]), "translate": tuple(source.translate[-2:])}
        self._replace(Image, f"{source.name} ABSF", result.filtered, **kw)
        self._replace(Image, f"{source.name} ABSF difference", result.difference, visible=False,
                      **kw)
        self.view_box.setChecked(False)

    # --- layer thickness ----------------------------------------------------------------------

    def measure_line(self) -> Any:
        """Thickness between the two edges of the band-averaged profile along the line."""
        from ..hrtem.profile import layer_thickness, line_profile

        try:
            layer, data, px = self._inputs()
            shapes = self.line_picker.layer()
            if shapes is None or len(shapes.data) == 0:
                raise InputError("draw a line across the layer in a Shapes layer first")
            index = max(shapes.selected_data) if shapes.selected_data else len(shapes.data) - 1
            ends = np.asarray(shapes.data[index])[:, -2:]
            world = ends * np.asarray(shapes.scale[-2:]) + np.asarray(shapes.translate[-2:])
            pixels = (world - np.asarray(layer.translate[-2:])) / np.asarray(layer.scale[-2:])
            profile = line_profile(data, px, pixels[0], pixels[-1], self.line_width.value())
            result = layer_thickness(profile)
        except CryoliError as e:
            report_error(e, "Thickness")
            return None
        self.thickness = result
        along = (pixels[-1] - pixels[0]) / np.hypot(*(pixels[-1] - pixels[0]))
        edges = [pixels[0] + along * (e * 10 / px) for e in result.edges_nm]
        marks = np.array(edges) * np.asarray(layer.scale[-2:]) + np.asarray(layer.translate[-2:])
        self._replace(Points, f"{layer.name} layer edges", marks, size=0.4,
                      face_color="magenta", border_color="white")
        self.profile_plot.show_figure(profile_figure(profile, result))
        self.profile_plot.setVisible(True)
        self.profile_result.setText(
            f"thickness {result.thickness_nm:.2f} nm (edges at {result.edges_nm[0]:.2f} and "
            f"{result.edges_nm[1]:.2f} nm along the line); {result.rule}"
        )
        return result

    # --- layers -------------------------------------------------------------------------------

    def _spectrum_layer(self, suffix: str):
        name = f"{self._source.name} {suffix}" if self._source is not None else None
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def _replace(self, kind, name: str, data, **kwargs):
        """Update the layer called ``name`` or add it."""
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        if kind is Image:
            return self.viewer.add_image(data, name=name, **kwargs)
        if kind is Points:
            return self.viewer.add_points(data, name=name, **kwargs)
        if kind is Shapes:
            return self.viewer.add_shapes(data, name=name, **kwargs)
        return self.viewer.add_labels(data, name=name, **kwargs)

    def show_spectrum_view(self, spectrum: bool) -> None:
        """Show the layers in 1/Å (spectrum) or those in nm (micrograph), and fit the view."""
        for layer in self.viewer.layers:
            in_spectrum = layer.metadata.get("role") == SPECTRUM_ROLE
            layer.visible = in_spectrum == spectrum and not layer.name.endswith(
                "ABSF difference")
        shown = [layer for layer in self.viewer.layers if layer.visible]
        if shown:
            self.viewer.reset_view(layers=shown)

    def _table(self):
        from ..hrtem.phases import default_table

        return self.phase_table or default_table()

    def load_phase_table(self, path: str) -> bool:
        """Use the phase table in ``path`` from now on; a bad file is a notification."""
        from ..hrtem.phases import load_table

        try:
            self.phase_table = load_table(path)
        except CryoliError as e:
            report_error(e, "Phase table")
            return False
        names = ", ".join(p.name for p in self.phase_table.phases)
        self.table_button.setText(f"{Path(path).name}: {names}")
        return True

    def _table_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Phase table", "",
                                              "Phase table (*.json);;All files (*)")
        if path:
            self.load_phase_table(path)

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open micrograph", "",
            "Micrographs (*.dm3 *.dm4 *.tif *.tiff *.mrc);;All files (*)")
        if path:
            try:
                self.viewer.open(path, plugin="napari-cryoli")
            except Exception as e:  # noqa: BLE001 - napari wraps reader errors in its own type
                report_error(e.__cause__ or e, "Open")
