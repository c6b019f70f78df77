"""The report file format: a report written before the typed records reads back unchanged, and
the current code writes the same JSON keys, order and values (and the same CSV)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_cryoli.classes import CU, LI
from napari_cryoli.errors import FileFormatError
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import (
    DendriteRow,
    MeasureSettings,
    Report,
    dendrite_table,
    load_report,
    measure,
    write_report,
)

from . import shapes

DATA = Path(__file__).parent / "data"
VOXEL = (1.2, 1.0, 1.0)
SETTINGS = MeasureSettings(
    extended_threshold_nm=4.0, min_dendrite_volume_nm3=100.0, min_particle_volume_nm3=20.0
)


def labels() -> np.ndarray:
    """Two dendrites (one Li and LiH with its own SEI shells, one small Li ball), a Cu particle,
    a Cu speck and a Li speck: every section of the report has something in it."""
    shape = (30, 40, 56)
    out = shapes.half_and_half_sphere(shape, VOXEL, 9.0, 2.0, 5.0, np.array([17.3, 19.6, 20.2]))
    second = shapes.sphere(shape, VOXEL, 4.0, 2.0, np.array([17.0, 20.0, 45.0]), LI)
    out = np.where(second != 1, second, out).astype(np.uint8)
    shapes.add_ball(out, VOXEL, np.array([17.3, 19.6, 15.0]), 2.5, CU)
    out[2, 2, 2] = CU
    out[3, 30, 3] = LI
    return out


@pytest.fixture(scope="module")
def before() -> dict:
    return json.loads((DATA / "report_v1.json").read_text())


@pytest.fixture(scope="module")
def report() -> Report:
    return run_job(measure(labels(), VOXEL, SETTINGS))


def assert_same_json(ours, theirs, where="report") -> None:
    """Same keys in the same order, same lengths, equal values (floats to 1e-9)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), where
        for key in theirs:
            assert_same_json(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_json(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12), where
    else:
        assert ours == theirs and type(ours) is type(theirs), where


def test_the_report_writes_the_keys_of_before(report, before, tmp_path):
    assert before["n_dendrites"] == 2 and before["n_cu_particles"] == 1  # the fixture is rich
    write_report(report, tmp_path / "r.json", tmp_path / "r.csv")
    assert_same_json(json.loads((tmp_path / "r.json").read_text()), before)
    ours = [line.split(",") for line in (tmp_path / "r.csv").read_text().splitlines()]
    theirs = [line.split(",") for line in (DATA / "report_v1.csv").read_text().splitlines()]
    assert ours[0] == theirs[0] and len(ours) == len(theirs)
    for a, b in zip(ours[1:], theirs[1:]):
        assert [x == "" for x in a] == [x == "" for x in b]
        assert [float(x) for x in a if x] == pytest.approx([float(x) for x in b if x], rel=1e-9)


def test_a_report_written_before_reads_back_unchanged(before, tmp_path):
    back = load_report(DATA / "report_v1.json")
    assert back.to_dict() == before
    write_report(back, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == (DATA / "report_v1.json").read_text()
    assert dendrite_table(back) == (DATA / "report_v1.csv").read_text()
    # Typed all the way down: the null width reads as NaN, the missing LiH as None.
    (first, second) = back.dendrites
    assert isinstance(first, DendriteRow) and np.isnan(first.width_z_nm)
    assert first.sei_thickness_nm.on_lih.n_points == (
        before["dendrites"][0]["sei_thickness_nm"]["on_LiH"]["n_points"]
    )
    assert second.sei_thickness_nm.extended_share.lih is None
    assert back.sei_thickness_nm.trusted.max_normal_tilt_deg == 60.0
    assert back.cu_particles[0].centroid_nm == tuple(before["cu_particles"][0]["centroid_nm"])
    assert back.settings == SETTINGS


def test_more_keys_are_left_aside_and_missing_keys_refused(before, tmp_path):
    assert Report.from_dict({**before, "batch": {"tile": 64}}).to_dict() == before
    broken = json.loads(json.dumps(before))
    del broken["sei_thickness_nm"]["trusted"]["on_LiH"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(FileFormatError, match="broken.json"):
        load_report(tmp_path / "broken.json")
