"""Figures from reports, saved reports and surface points; PNG and SVG savable."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from napari_cryoli.jobs import run_job
from napari_cryoli.measure import plots
from napari_cryoli.measure.report import MeasureSettings, measure
from napari_cryoli.measure.sei import sei_thickness

from . import shapes

VOXEL = (1.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    out = {}
    for name, (li, lih) in {"fresh": (6.0, 6.0), "24h": (8.0, 7.0), "7d": (24.0, 9.0)}.items():
        labels = shapes.half_and_half_sphere(
            (84, 84, 84), VOXEL, 14.0, li, lih, (41.3, 41.6, 41.2)
        )
        rep = run_job(measure(labels, VOXEL, MeasureSettings(extended_threshold_nm=20)))
        out[name] = json.loads(json.dumps(rep.to_dict()))  # as read back from REPORT.json
    return out


def saves(fig: Figure) -> None:
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
        assert buf.tell() > 1000


def test_histograms_from_report_and_points(reports):
    fig = plots.thickness_histograms(reports["7d"])
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("on Li (median 24" in t for t in labels)
    assert any("on LiH (median 9" in t for t in labels)
    saves(fig)
    labels = shapes.sphere((40, 40, 40), VOXEL, 10.0, 5.0)
    fig = plots.thickness_histograms(sei_thickness(labels, VOXEL), extended_threshold_nm=20)
    assert isinstance(fig, Figure)


def test_lih_fraction_per_dendrite(reports):
    fig = plots.lih_fraction_per_dendrite(reports["fresh"])
    (ax,) = fig.axes
    (bar,) = ax.patches
    assert bar.get_height() == pytest.approx(
        reports["fresh"]["dendrites"][0]["lih_volume_fraction"]
    )
    saves(fig)


def test_compare_conditions(reports):
    fig = plots.compare_conditions(reports)
    _, ax_t, ax_e = fig.axes
    assert [t.get_text() for t in ax_t.get_xticklabels()] == ["fresh", "24h", "7d"]
    # Thickness bars: Li then LiH, one per condition; extended SEI only on 7d Li.
    li_bars = ax_t.patches[:3]
    assert li_bars[2].get_height() == pytest.approx(24.0, abs=0.3)
    li_ext = [p.get_height() for p in ax_e.patches[:3]]
    assert li_ext[2] == pytest.approx(1.0, abs=0.01) and li_ext[0] == 0.0
    saves(fig)


def test_empty_report_still_plots():
    rep = run_job(measure(np.ones((8, 8, 8), np.uint8), 1.0)).to_dict()
    for fig in (
        plots.thickness_histograms(rep),
        plots.lih_fraction_per_dendrite(rep),
        plots.compare_conditions({"empty": rep}),
    ):
        saves(fig)
