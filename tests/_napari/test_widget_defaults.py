"""The widgets start from the settings dataclasses' defaults, the ones the command line shows."""

from __future__ import annotations

from napari_cryoli.cli import build_parser
from napari_cryoli.measure.report import MeasureSettings
from napari_cryoli.segment.training import TrainConfig
from napari_cryoli.tomo.wbp import WBPSettings


def test_widgets_and_command_line_share_the_defaults(make_napari_viewer):
    viewer = make_napari_viewer()
    _, rec = viewer.window.add_plugin_dock_widget("napari-cryoli", "Reconstruct")
    _, meas = viewer.window.add_plugin_dock_widget("napari-cryoli", "Measure")
    _, train = viewer.window.add_plugin_dock_widget("napari-cryoli", "Train")
    wbp, cli = WBPSettings(), build_parser()
    reconstruct = cli.parse_args(["reconstruct", "s.st", "--angles", "a", "--out", "o"])
    assert rec.cutoff.value() == wbp.radial_cutoff == reconstruct.radial_cutoff
    assert rec.falloff.value() == wbp.radial_falloff == reconstruct.radial_falloff
    assert rec.sirt.value() == wbp.sirt_like_iterations == reconstruct.sirt_like
    assert (rec.cutoff.minimum(), rec.cutoff.maximum()) == (0.01, 0.5)
    measure = cli.parse_args(["measure", "seg.mrc", "--out", "r.json"])
    assert meas.threshold.value() == MeasureSettings().extended_threshold_nm
    assert meas.threshold.value() == measure.extended_threshold_nm
    trained = cli.parse_args(["train", "t.mrc", "l.mrc", "--out", "m.pt"])
    assert train.minutes.value() == TrainConfig().minutes == trained.minutes


def test_hrtem_window_default_is_the_phase_map_settings(make_napari_viewer):
    from napari_cryoli.hrtem.phasemap import PhaseMapSettings

    viewer = make_napari_viewer()
    _, hrtem = viewer.window.add_plugin_dock_widget("napari-cryoli", "HRTEM")
    lattice = build_parser().parse_args(["lattice", "m.mrc", "--out", "r.json"])
    assert hrtem.window_nm.value() == PhaseMapSettings().window_nm == lattice.window_nm
    assert (hrtem.window_nm.minimum(), hrtem.window_nm.maximum()) == (1.0, 100.0)
