"""GUI and CLI reports of the same file carry the same notes (file warnings, user classes)."""

from __future__ import annotations

import json

from napari_cryoli.cli import main
from napari_cryoli.io import write_mrc

from .test_measure_widget import rod_segmentation


def test_gui_and_cli_reports_carry_the_same_notes(make_napari_viewer, wait_job, tmp_path):
    labels = rod_segmentation()
    labels[:2, :2, :2] = 7  # a class of the user's own
    path = tmp_path / "seg.mrc"
    write_mrc(path, labels, voxel_size_nm=(0.1, 0.1, 0.1), labels=True)  # 1 Å: a warning
    assert main(["measure", str(path), "--out", str(tmp_path / "cli.json")]) == 0
    cli_notes = json.loads((tmp_path / "cli.json").read_text())["notes"]

    viewer = make_napari_viewer()
    (layer,) = viewer.open(path, plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Measure")
    widget.labels_picker.set_layer(layer)
    wait_job(widget.start())
    assert list(widget.result.report.notes) == cli_notes
    assert any("exactly 1 Å" in n for n in cli_notes)
    assert any(n.startswith("id 7 is not Li") for n in cli_notes)
    assert "id 7 is not Li" in widget.summary.text()
    widget.export(json_path=tmp_path / "gui.json")
    assert json.loads((tmp_path / "gui.json").read_text())["notes"] == cli_notes
