"""The HRTEM widget in a real viewer: micrograph files -> spectrum, reflections, phases, phase
map, ABSF and layer thickness."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_cryoli.hrtem.simulate import Grain, MicrographSpec, simulate_micrograph

DATA = Path(__file__).parents[1] / "hrtem" / "data"


def write_tiff(path, image, pixel_nm=0.041):
    tifffile.imwrite(path, image.astype(np.float32), imagej=True,
                     resolution=(1 / pixel_nm, 1 / pixel_nm), metadata={"unit": "nm"})
    return path


@pytest.fixture
def two_phase_tif(tmp_path):
    spec = MicrographSpec(layout="two", grains=(Grain("Li", (0, 0, 1), 15.0),
                                                Grain("Cu", (0, 1, 1), 60.0)),
                          shape=(320, 320), seed=7)
    return write_tiff(tmp_path / "grains.tif", simulate_micrograph(spec).image)


def open_widget(viewer, path):
    viewer.open(str(path), plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "HRTEM")
    return widget


def test_spectrum_reflections_and_phases(make_napari_viewer, wait_job, two_phase_tif):
    viewer = make_napari_viewer()
    widget = open_widget(viewer, two_phase_tif)
    image = viewer.layers["grains"]
    np.testing.assert_allclose(image.scale, (0.041, 0.041), rtol=1e-5)
    assert widget.pixel_size.value() == pytest.approx(0.41, rel=1e-4)
    wait_job(widget.analyse())
    spectrum = viewer.layers["grains spectrum"]
    step = widget.analysis.spectrum.step
    np.testing.assert_allclose(spectrum.scale, (step, step))
    assert spectrum.visible and not image.visible  # spectrum view
    points = viewer.layers["grains reflections"]
    n = len(widget.analysis.identification.reflections)
    assert len(points.data) == 2 * n and widget.table.rowCount() == n
    # points sit at +-g in 1/Å: their distance from the origin is 1/d
    np.testing.assert_allclose(np.hypot(*points.data.T), 1 / points.features["d_A"], rtol=1e-6)
    assert "Li [001]" in widget.summary.text() and "Cu [011]" in widget.summary.text()
    assert "grains rings" in viewer.layers

    # a pick two pixels off a found reflection, on its Friedel mate, merges with it
    r = widget.analysis.identification.reflections[0]
    points.add(np.array([[-r.gy + 2 * step, -r.gx - step]]))
    wait_job(widget.identify_picks())
    assert len(widget.analysis.identification.reflections) == n

    # region: a rectangle over the top grain (Cu) only
    widget.view_box.setChecked(False)
    shapes = viewer.add_shapes([np.array([[0, 0], [0, 13], [4.9, 13], [4.9, 0]])],
                               shape_type="rectangle", name="region")
    assert widget.region_picker.layer() is None  # a new Shapes layer is not a region by itself
    widget.region_picker.set_layer(shapes)
    wait_job(widget.analyse())
    assert [m.phase for m in widget.analysis.identification.phases] == ["Cu"]


def test_buttons_start_the_jobs(make_napari_viewer, qtbot, two_phase_tif):
    from qtpy.QtCore import Qt

    viewer = make_napari_viewer()
    widget = open_widget(viewer, two_phase_tif)
    qtbot.mouseClick(widget.spectrum_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "grains reflections" in viewer.layers, timeout=60_000)
    qtbot.waitUntil(lambda: widget.spectrum_button.isEnabled(), timeout=60_000)
    qtbot.mouseClick(widget.picks_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.spectrum_button.isEnabled(), timeout=60_000)
    assert widget.analysis is not None and widget.analysis.identification.phases


def test_own_phase_table(make_napari_viewer, wait_job, two_phase_tif, tmp_path):
    import json

    viewer = make_napari_viewer()
    widget = open_widget(viewer, two_phase_tif)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert not widget.load_phase_table(str(bad))  # a notification, the default table kept
    only_li = tmp_path / "li.json"
    only_li.write_text(json.dumps({"phases": [
        {"name": "Li", "a_A": 3.51, "label": 2, "families": ["110", "200", "211", "220"]}]}))
    assert widget.load_phase_table(str(only_li))
    wait_job(widget.analyse())
    assert [m.phase for m in widget.analysis.identification.phases] == ["Li"]
    assert widget.table.item(0, 2).text() == "0.0"  # angle of the first to itself


def test_phase_map_and_absf(make_napari_viewer, wait_job, two_phase_tif):
    viewer = make_napari_viewer()
    widget = open_widget(viewer, two_phase_tif)
    widget.window_nm.setValue(4.0)
    wait_job(widget.start_phase_map())
    labels = viewer.layers["grains phases"]
    np.testing.assert_allclose(labels.scale, (0.041, 0.041), rtol=1e-5)
    assert labels.data[20, 160] == 4 and labels.data[300, 160] == 2  # Cu on top, Li below
    wait_job(widget.start_absf())
    filtered = viewer.layers["grains ABSF"]
    assert filtered.data.shape == (320, 320)
    np.testing.assert_allclose(filtered.data + viewer.layers["grains ABSF difference"].data,
                               viewer.layers["grains"].data, atol=1e-2)


def test_layer_thickness_from_a_line(make_napari_viewer, tmp_path):
    spec = MicrographSpec(layout="layer", grains=(Grain("LiH", (0, 1, 1), 40.0),),
                          shape=(480, 480), layer_nm=8.0, seed=3)
    path = write_tiff(tmp_path / "sei.tif", simulate_micrograph(spec).image)
    viewer = make_napari_viewer()
    widget = open_widget(viewer, path)
    # boundary_deg 0: the layer runs from the centre row upwards (y decreasing), 8 nm thick
    centre_nm = 239.5 * 0.041
    line = np.array([[centre_nm + 2.0, 9.8], [centre_nm - 11.0, 9.8]])
    shapes = viewer.add_shapes([line], shape_type="line", name="line")
    widget.line_picker.set_layer(shapes)
    result = widget.measure_line()
    assert result.thickness_nm == pytest.approx(8.0, abs=0.4)
    assert "thickness" in widget.profile_result.text()
    assert widget.profile_plot.isVisible() or not widget.isVisible()
    assert len(widget.profile_plot.figure.axes[0].lines) == 3  # profile and two edges
    assert len(viewer.layers["sei layer edges"].data) == 2


def test_refusals_are_notifications(make_napari_viewer, tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.float32))
    viewer = make_napari_viewer()
    widget = open_widget(viewer, path)
    assert widget.pixel_size.value() == 0  # no pixel size in the file
    assert widget.analyse() is None and widget.start_phase_map() is None
    assert widget.measure_line() is None
    widget.pixel_size.setValue(0.41)
    line = viewer.add_shapes([np.array([[0.2, 0.2], [2.0, 2.0]])], shape_type="line")
    widget.region_picker.set_layer(line)
    assert widget.analyse() is None  # a line bounds no region
    widget.region_picker.setCurrentIndex(0)
    widget.rings.setText("2.0, abc")
    assert widget.analyse() is None
    assert "plain spectrum" not in viewer.layers


def test_dm3_opens_with_its_pixel_size(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = open_widget(viewer, DATA / "stem_image.dm3")
    layer = viewer.layers["stem_image"]
    assert layer.data.shape == (68, 68)
    assert layer.scale[-1] == pytest.approx(0.24854, rel=1e-4)
    assert widget.pixel_size.value() == pytest.approx(2.4854, rel=1e-3)
    assert math.isclose(float(widget.pixel_size.value()), 2.4854, rel_tol=1e-3)
