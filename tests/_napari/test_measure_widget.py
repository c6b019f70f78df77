"""The Measure widget in a real viewer on an analytic segmentation with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_cryoli._napari.measure import DENDRITES, THICKNESS_IMAGE, THICKNESS_SURFACE
from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI

VOXEL = (2.0, 2.0, 2.0)
SHELL_NM = 10.0


def rod_segmentation() -> np.ndarray:
    """A Li rod along y (radius 20 nm) with a LiH half, a Cu ball inside and a 10 nm SEI shell."""
    z, y, x = np.mgrid[:40, :48, :40].astype(float)
    r = np.hypot((z - 19.5) * VOXEL[0], (x - 19.5) * VOXEL[2])
    labels = np.full(z.shape, BACKGROUND, np.uint8)
    labels[r <= 20 + SHELL_NM] = SEI
    labels[r <= 20] = LI
    labels[(r <= 20) & (y >= 24)] = LIH
    ball = np.sqrt((z - 19.5) ** 2 + (y - 30) ** 2 + (x - 19.5) ** 2) * VOXEL[0] <= 6
    labels[ball] = CU
    return labels


@pytest.fixture
def viewer_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(rod_segmentation(), name="prediction", scale=VOXEL,
                              translate=(100.0, 0.0, -50.0))
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Measure")
    widget.labels_picker.set_layer(layer)
    return viewer, widget




def test_measure_shows_layers_table_and_plots(viewer_widget, wait_job):
    viewer, widget = viewer_widget
    wait_job(widget.start())
    report = widget.result.report.to_dict()
    assert abs(report["sei_thickness_nm"]["median"] - SHELL_NM) < 1.0
    assert 0.3 < report["lih_volume_fraction"] < 0.7
    for name in (THICKNESS_IMAGE, THICKNESS_SURFACE, DENDRITES):
        assert name in viewer.layers
        np.testing.assert_allclose(viewer.layers[name].scale, VOXEL)
        np.testing.assert_allclose(viewer.layers[name].translate, (100.0, 0.0, -50.0))
    thickness = viewer.layers[THICKNESS_IMAGE].data
    assert np.nanmedian(thickness) == pytest.approx(SHELL_NM, abs=1.0)
    kinds = [widget.table.item(r, 0).text() for r in range(widget.table.rowCount())]
    assert kinds.count("dendrite") == 1 and kinds.count("Cu particle") == 1
    assert widget.histogram_panel.figure.axes and widget.fraction_panel.figure.axes
    assert "LiH fraction" in widget.summary.text()


def test_clicking_a_row_centres_the_view(viewer_widget, wait_job):
    viewer, widget = viewer_widget
    wait_job(widget.start())
    cu_row = [widget.table.item(r, 0).text() for r in range(widget.table.rowCount())].index(
        "Cu particle"
    )
    widget.table.selectRow(cu_row)
    centroid = np.asarray(widget._table_rows[cu_row].centroid_nm) + (100.0, 0.0, -50.0)
    assert viewer.dims.point[0] == pytest.approx(centroid[0], abs=VOXEL[0])
    np.testing.assert_allclose(viewer.camera.center[-2:], centroid[1:], atol=VOXEL[0])
    dendrite_row = [widget.table.item(r, 0).text() for r in range(widget.table.rowCount())].index(
        "dendrite"
    )
    widget.table.selectRow(dendrite_row)
    assert viewer.layers[DENDRITES].show_selected_label
    assert viewer.layers[DENDRITES].selected_label == 1


def test_export_and_compare(viewer_widget, wait_job, tmp_path):
    _viewer, widget = viewer_widget
    wait_job(widget.start())
    widget.export(json_path=tmp_path / "r.json", csv_path=tmp_path / "r.csv")
    data = json.loads((tmp_path / "r.json").read_text())
    for key in ("voxel_size_nm", "volumes_nm3", "lih_volume_fraction", "sei_thickness_nm",
                "cu_particles", "dendrites"):
        assert key in data
    assert (tmp_path / "r.csv").read_text().count("\n") == 2  # header + one dendrite
    dialog = widget.compare([tmp_path / "r.json"])
    assert dialog is not None and dialog.panel.figure.axes
    dialog.panel.save(str(tmp_path / "compare.svg"))
    assert (tmp_path / "compare.svg").stat().st_size > 1000
    dialog.close()


def test_stop_and_refusals(viewer_widget, wait_job):
    _viewer, widget = viewer_widget
    handle = widget.start()
    assert widget.start() is None  # a second job in the same viewer is refused
    handle.stop()
    wait_job(handle)
    assert widget.measure_button.isEnabled()
