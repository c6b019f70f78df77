"""The uncertain-regions list in a real viewer: ranked regions, jump, next, previous."""

from __future__ import annotations

import numpy as np

from napari_cryoli._napari.uncertain import UncertainRegionsPanel

SCALE = (2.0, 2.0, 2.0)
TRANSLATE = (10.0, -4.0, 0.0)


def test_jump_to_each_region_in_turn(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    u = np.zeros((20, 40, 40), np.float32)
    u[2:6, 30:36, 30:36] = 0.7  # 144 voxels: ranked second
    u[12:16, 4:14, 4:14] = 0.8  # 400 voxels: ranked first
    u[13, 8, 9] = 0.95
    layer = viewer.add_image(u, name="uncertainty", scale=SCALE, translate=TRANSLATE)
    labels = viewer.add_labels(np.zeros(u.shape, np.uint8), name="labels", scale=SCALE,
                               translate=TRANSLATE)
    viewer.layers.selection.active = layer
    panel = UncertainRegionsPanel(viewer, lambda: labels)
    qtbot.addWidget(panel)

    worker = panel.find(layer)
    qtbot.waitUntil(lambda: panel.list.count() == 2, timeout=10_000)
    assert panel.list.item(0).text().startswith("1. slice 13, y 8, x 9: 400 voxels")
    assert not panel.previous_button.isEnabled() and panel.next_button.isEnabled()
    assert worker is not None

    panel.next_button.click()  # the first region's most uncertain voxel
    assert panel.current == 0
    assert viewer.dims.point[0] == 13 * 2.0 + 10.0
    np.testing.assert_allclose(viewer.camera.center[-2:], (8 * 2.0 - 4.0, 9 * 2.0))
    assert viewer.layers.selection.active is labels and labels.mode == "paint"
    assert "Region 1 of 2" in panel.status.text()

    panel.next_button.click()
    assert panel.current == 1 and not panel.next_button.isEnabled()
    peak = panel.regions[1].peak  # any voxel of the even box
    assert 2 <= peak[0] < 6 and viewer.dims.point[0] == peak[0] * 2.0 + 10.0
    panel.previous_button.click()
    assert panel.current == 0 and panel.list.currentRow() == 0


def test_a_confident_prediction_has_no_regions(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    layer = viewer.add_image(np.full((8, 16, 16), 0.1, np.float32), name="uncertainty")
    panel = UncertainRegionsPanel(viewer, lambda: None)
    qtbot.addWidget(panel)
    assert panel.find(layer) is not None
    qtbot.waitUntil(lambda: "sure everywhere" in panel.status.text(), timeout=10_000)
    assert panel.list.count() == 0
    assert not panel.next_button.isEnabled()


def test_without_a_prediction_nothing_starts(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    panel = UncertainRegionsPanel(viewer, lambda: None)
    qtbot.addWidget(panel)
    assert panel.find() is None
