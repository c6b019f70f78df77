"""The Measure widget's mesh export, in a real viewer: files in Å on the layer's grid."""

from __future__ import annotations

import numpy as np

from napari_cryoli.classes import BACKGROUND, LI, LIH, SEI


def test_export_meshes_from_the_measure_widget(make_napari_viewer, wait_job, tmp_path):
    import trimesh

    z, y, x = np.mgrid[:32, :40, :32].astype(float)
    r = np.hypot((z - 15.5) * 2.0, (x - 15.5) * 2.0)
    labels = np.full(z.shape, BACKGROUND, np.uint8)
    labels[r <= 26] = SEI
    labels[r <= 18] = LI
    labels[(r <= 18) & (y >= 20)] = LIH
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, name="seg", scale=(2.0, 2.0, 2.0),
                              translate=(100.0, 0.0, -50.0))
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Measure")
    widget.labels_picker.set_layer(layer)
    assert not widget.export_mesh_button.isEnabled()
    wait_job(widget.start())
    assert widget.export_mesh_button.isEnabled()
    handle = widget.export_meshes(tmp_path / "rod.glb")
    # The panel's own controls run it: Stop is offered and the bar follows the classes meshed.
    assert widget.controls.stop_button.isEnabled() and not widget.measure_button.isEnabled()
    assert widget.controls.progress.format() == "meshes %p%"
    wait_job(handle)
    assert widget.controls.progress.value() == widget.controls.progress.maximum() == 3
    assert widget.controls.progress.format() == "%p%  %v/%m"
    assert widget.measure_button.isEnabled() and not widget.controls.stop_button.isEnabled()
    assert [p.name for p in widget.exported] == ["rod.glb", "rod.cxc"]
    scene = trimesh.load(tmp_path / "rod.glb", process=False)
    assert sorted(scene.geometry) == ["Li", "LiH", "SEI"]
    li = scene.geometry["Li"]
    # Å, with the layer's translate as the origin: x from -50 nm, z around 100 + 15.5 * 2 nm.
    lo, hi = li.bounds
    assert abs(lo[0] - (-50 + (15.5 * 2 - 18)) * 10) < 20 and abs((lo[2] + hi[2]) / 2 - 1310) < 20
    thickness = np.asarray(li.vertex_attributes["_thickness_nm"]).ravel()
    assert abs(np.median(thickness[thickness >= 0]) - 8.0) < 1.0
    assert "open rod.glb" in (tmp_path / "rod.cxc").read_text()


def test_a_stopped_mesh_export_writes_nothing(make_napari_viewer, wait_job, tmp_path):
    labels = np.zeros((24, 24, 24), np.uint8)
    labels[6:18, 6:18, 6:18] = SEI
    labels[8:16, 8:16, 8:16] = LI
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, name="seg", scale=(2.0, 2.0, 2.0))
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Measure")
    widget.labels_picker.set_layer(layer)
    wait_job(widget.start())
    handle = widget.export_meshes(tmp_path / "cube.obj")
    widget.controls.stop_button.click()
    wait_job(handle)
    assert widget.exported == [] and list(tmp_path.iterdir()) == []
