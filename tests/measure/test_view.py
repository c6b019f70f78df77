"""What the Measure panel shows of a report, without a viewer: summary lines and table rows."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.classes import CU
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import measure
from napari_cryoli.measure.view import TABLE_COLUMNS, cell_text, summary_text, table_rows

from . import shapes

VOXEL = (1.0, 1.0, 1.0)
SHAPE = (48, 48, 48)


@pytest.fixture(scope="module")
def report():
    labels = shapes.sphere(SHAPE, VOXEL, 12.0, 3.0)
    labels = shapes.add_ball(labels, VOXEL, (24.0, 24.0, 6.0), 3.0, CU)  # outside the SEI
    return run_job(measure(labels, VOXEL))


def test_rows_list_dendrites_then_cu_particles(report):
    rows = table_rows(report)
    assert [r.object for r in rows] == ["dendrite"] * len(report.dendrites) + [
        "Cu particle"] * len(report.cu_particles)
    assert len(report.dendrites) == 1 and len(report.cu_particles) == 1
    dendrite, particle = rows
    d = report.dendrites[0]
    assert (dendrite.id, dendrite.volume, dendrite.lih) == (d.id, d.volume_nm3,
                                                            d.lih_volume_fraction)
    assert dendrite.on_li == d.sei_thickness_nm.on_li.median == pytest.approx(3.0, abs=0.6)
    assert dendrite.centroid_nm == d.centroid_nm
    cells = dendrite.cells()
    assert len(cells) == len(TABLE_COLUMNS) and cells[0] == "dendrite"
    assert cells[2] == f"{d.volume_nm3:,.0f}" and cells[7] == "–"  # no LiH: no SEI on LiH
    assert cells[5] == "–"  # a ball has no direction, so no angle to the tilt axis
    p = report.cu_particles[0]
    assert particle.cells()[3] == "–" and particle.diameter == p.equivalent_diameter_nm
    np.testing.assert_allclose(particle.centroid_nm, (24.0, 24.0, 6.0), atol=0.6)


def test_summary_lines_then_notes(report):
    lines = summary_text(report).splitlines()
    assert lines[0] == "1 dendrite, 1 Cu particle; LiH fraction 0.000"
    sei = report.sei_thickness_nm
    assert lines[1] == (f"SEI median {sei.median:.1f} nm (on Li {sei.on_li.median:.1f}, "
                        "on LiH –)")
    assert lines[2:] == list(report.notes)


def test_empty_segmentation_shows_dashes():
    empty = run_job(measure(np.ones((8, 8, 8), np.uint8), VOXEL))
    assert table_rows(empty) == []
    assert summary_text(empty).splitlines()[:2] == [
        "0 dendrites, 0 Cu particles; LiH fraction –", "SEI median – nm (on Li –, on LiH –)"]


def test_cell_text():
    assert cell_text(None, "lih") == cell_text(float("nan"), "x") == "–"
    assert cell_text(12345.6, "volume") == "12,346"
    assert cell_text(0.12345, "lih") == "0.123"
    assert cell_text(3.14159, "diameter") == "3.1"
    assert cell_text(7, "id") == "7"
