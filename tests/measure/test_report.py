"""The report job end to end: contract keys, truths of a composed body, empty inputs, files."""

from __future__ import annotations

import csv
import json
import re
import threading

import numpy as np
import pytest

from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI
from napari_cryoli.errors import FileFormatError, InputError
from napari_cryoli.jobs import Progress, run_job
from napari_cryoli.measure.report import (
    CSV_COLUMNS,
    ByMetal,
    MeasureSettings,
    Report,
    load_report,
    measure,
    read_report,
    summarize,
    write_report,
)

from . import shapes

VOXEL = (1.2, 1.0, 1.0)
SHAPE = (80, 100, 110)
CENTRE = np.array([47.3, 49.6, 54.8])
CU_CENTRE = CENTRE + [0.0, 0.0, -12.0]  # in the Li half, its surface 7 nm from the LiH half


@pytest.fixture(scope="module")
def body() -> np.ndarray:
    labels = shapes.half_and_half_sphere(SHAPE, VOXEL, 26.0, 6.0, 14.0, CENTRE)
    return shapes.add_ball(labels, VOXEL, CU_CENTRE, 5.0, CU)


@pytest.fixture(scope="module")
def report(body) -> Report:
    return run_job(measure(body, VOXEL))


def test_report_has_the_architecture_keys(report):
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["voxel_size_nm"] == list(VOXEL)
    assert set(d["volumes_nm3"]) == {"Li", "LiH", "Cu", "SEI"}
    assert 0 < d["lih_volume_fraction"] < 1
    sei = d["sei_thickness_nm"]
    for key in ("median", "mean", "p95"):
        assert isinstance(sei[key], float)
    for phase in ("on_Li", "on_LiH"):
        assert {"median", "mean", "n_points"} <= set(sei[phase])
    particle = d["cu_particles"][0]
    assert {"volume_nm3", "equivalent_diameter_nm", "centroid_nm"} <= set(particle)
    dendrite = d["dendrites"][0]
    assert {"id", "volume_nm3", "lih_volume_fraction", "diameter_nm", "sei_thickness_nm"} <= set(
        dendrite
    )


def test_report_recovers_the_design(body, report):
    voxel = float(np.prod(VOXEL))
    counts = np.bincount(body.ravel(), minlength=6)
    assert report.volumes_nm3["LiH"] == pytest.approx(counts[LIH] * voxel)
    assert report.lih_volume_fraction == pytest.approx(counts[LIH] / (counts[LI] + counts[LIH]))
    sei = report.sei_thickness_nm
    assert sei.on_li.mean == pytest.approx(6.0, abs=0.25)
    assert sei.on_lih.mean == pytest.approx(14.0, abs=0.25)
    assert sei.trusted.on_lih.median == pytest.approx(14.0, abs=0.25)
    assert sei.extended_share == ByMetal(li=0.0, lih=0.0)  # both under 20 nm
    (p,) = report.cu_particles
    assert p.equivalent_diameter_nm == pytest.approx(10.0, rel=0.05)
    assert np.allclose(p.centroid_nm, CU_CENTRE, atol=0.2)
    assert p.distance_to_lih_nm == pytest.approx(7.0, abs=1.0)
    assert p.dendrite == 1
    (d,) = report.dendrites
    assert d.volume_nm3 == pytest.approx((counts[LI] + counts[LIH] + counts[CU]) * voxel)
    assert d.n_cu_particles == 1
    assert d.sei_thickness_nm.on_li.median == pytest.approx(6.0, abs=0.25)


def test_extended_threshold_splits_the_surface(body):
    rep = run_job(measure(body, VOXEL, MeasureSettings(extended_threshold_nm=10.0)))
    share = rep.sei_thickness_nm.extended_share
    assert share.li == 0.0
    assert share.lih == pytest.approx(1.0, abs=0.01)
    assert rep.sei_thickness_nm.extended.on_lih.median == pytest.approx(14.0, abs=0.25)
    assert rep.sei_thickness_nm.compact.on_lih.n_points < 20


def test_job_yields_progress_and_stops():
    labels = shapes.sphere((40, 40, 40), (1, 1, 1), 10.0, 4.0)
    records = []
    run_job(measure(labels, 1.0), records.append)
    assert records and all(isinstance(r, Progress) for r in records)
    assert records[-1].done == records[-1].total
    stop = threading.Event()
    stop.set()
    rep = run_job(measure(labels, 1.0, stop=stop))
    assert rep.stopped and rep.notes


@pytest.mark.parametrize(
    "fill",
    [BACKGROUND, 0, SEI, 9],
    ids=["background", "unlabelled", "only-sei", "user-class"],
)
def test_volumes_without_metal_give_zeros_and_notes(fill):
    rep = run_job(measure(np.full((12, 12, 12), fill, dtype=np.uint8), 1.0))
    d = rep.to_dict()
    assert d["volumes_nm3"]["Li"] == 0 and d["lih_volume_fraction"] is None
    assert d["sei_thickness_nm"]["n_points"] == 0 and d["sei_thickness_nm"]["median"] is None
    assert d["dendrites"] == [] and d["cu_particles"] == []
    assert any("no Li or LiH" in n for n in d["notes"])


def test_metal_without_sei_or_cu():
    labels = shapes.sphere((40, 40, 40), (1, 1, 1), 12.0, 0.0)
    rep = run_job(measure(labels, 1.0))
    assert rep.sei_thickness_nm.n_points == 0
    assert rep.sei_thickness_nm.covered_share.li == 0.0
    assert rep.sei_thickness_nm.surface_area_nm2.li > 0
    assert rep.cu_particles == ()
    assert len(rep.dendrites) == 1
    assert any("no SEI" in n for n in rep.notes) and any("no Cu" in n for n in rep.notes)


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError, match="3D"):
        run_job(measure(np.zeros((5, 5), np.uint8), 1.0))
    with pytest.raises(InputError, match="voxel"):
        run_job(measure(np.zeros((5, 5, 5), np.uint8), (1.0, -1.0, 1.0)))
    with pytest.raises(InputError, match="integer"):
        run_job(measure(np.zeros((5, 5, 5), np.float32), 1.0))
    with pytest.raises(InputError):
        MeasureSettings(extended_threshold_nm=0)


def test_write_and_read_back(report, tmp_path):
    out, table = tmp_path / "r.json", tmp_path / "t.csv"
    write_report(report, out, table)
    back = read_report(out)
    assert back["sei_thickness_nm"]["on_LiH"]["n_points"] == report.sei_thickness_nm.on_lih.n_points
    assert load_report(out).to_dict() == report.to_dict()
    rows = list(csv.DictReader(table.open()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 1
    assert float(rows[0]["lih_volume_fraction"]) == pytest.approx(report.lih_volume_fraction)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_read_report_errors(tmp_path):
    with pytest.raises(FileFormatError, match="no report"):
        read_report(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(FileFormatError, match="not a JSON"):
        read_report(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(FileFormatError, match="not a napari-cryoli"):
        read_report(tmp_path / "other.json")


def test_summaries_are_area_weighted():
    s = summarize(np.array([1.0, 3.0, np.nan]), np.array([3.0, 1.0, 5.0]))
    assert s.mean == pytest.approx(1.5) and s.n_points == 2
    assert summarize(np.array([])).median is None


def test_specks_are_counted_but_not_listed():
    """A prediction full of one-voxel specks: volumes count them, the dendrite list does not."""
    rng = np.random.default_rng(0)
    labels = np.full((40, 60, 60), BACKGROUND, dtype=np.uint8)
    idx = rng.integers(0, 40, size=(300, 3))
    labels[tuple(idx.T)] = LI
    rep = run_job(measure(labels, 1.0))
    assert rep.volumes_nm3["Li"] == np.count_nonzero(labels == LI)
    assert rep.dendrites == ()
    assert any("solid pieces under" in n for n in rep.notes)


@pytest.mark.parametrize(("direction", "warned"), [((0, 1, 0), False), ((0, 1, 1.2), True)])
def test_a_rod_across_the_tilt_axis_is_flagged(direction, warned):
    """A rod along the tilt axis (y) has angle 0 and no note; one 50° from it is named."""
    voxel = (1.0, 1.0, 1.0)
    shape = (40, 90, 90)
    rod = shapes.shelled(shapes.distance_to_line(shape, voxel, (19.6, 44.7, 44.4), direction),
                         10.0, 3.0)
    report = run_job(measure(rod, voxel))
    (d,) = report.dendrites
    expected = np.degrees(np.arctan2(direction[2], direction[1]))
    assert d.tilt_axis_angle_deg == pytest.approx(expected, abs=2.0)
    across = [n for n in report.notes if "from the tilt axis" in n]
    assert len(across) == warned
    if warned:
        assert re.match(r"dendrite 1 \((49|50|51)°\) lies 45° or more from the tilt axis",
                        across[0])


def test_round_pieces_of_a_body_across_the_tilt_axis_take_its_direction():
    """Two balls touching along x are split into two dendrites, each too round for a direction
    of its own: both take the direction of the body seen along the beam (x: 90°)."""
    voxel = (1.0, 1.0, 1.0)
    shape = (40, 50, 90)
    centres = [np.array([19.6, 24.7, x]) for x in (32.2, 57.8)]
    near = np.minimum(*(shapes.distance_to_point(shape, voxel, c) for c in centres))
    report = run_job(measure(shapes.shelled(near, 14.0, 3.0), voxel))
    assert len(report.dendrites) == 2
    for d in report.dendrites:
        assert d.tilt_axis_angle_deg == pytest.approx(90.0, abs=3.0)
    assert any(n.startswith("dendrites 1 (90°), 2 (90°) lie") for n in report.notes)
