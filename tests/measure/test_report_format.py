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
ANGLE = "tilt_axis_angle_deg"
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


def with_angle(report: dict) -> dict:
    """A version 1 ``report`` as it reads back now: each dendrite has ``tilt_axis_angle_deg``
    (added in version 2), unknown (null)."""
    out = json.loads(json.dumps(report))
    for d in out["dendrites"]:
        d[ANGLE] = None
    return out


def csv_rows(text: str, drop_angle: bool = False) -> list[list[str]]:
    rows = [line.split(",") for line in text.splitlines()]
    if drop_angle:
        i = rows[0].index(ANGLE)
        rows = [r[:i] + r[i + 1:] for r in rows]
    return rows


def test_the_report_writes_the_pinned_keys_and_values(report, tmp_path):
    pinned = json.loads((DATA / "report_v2.json").read_text())
    assert pinned["n_dendrites"] == 2 and pinned["n_cu_particles"] == 1  # the fixture is rich
    write_report(report, tmp_path / "r.json", tmp_path / "r.csv")
    written = json.loads((tmp_path / "r.json").read_text())
    assert [d[ANGLE] for d in written["dendrites"]] == [None, None]  # balls have no direction
    assert_same_json(written, pinned)
    ours = csv_rows((tmp_path / "r.csv").read_text())
    theirs = csv_rows((DATA / "report_v2.csv").read_text())
    assert ours[0] == theirs[0] and len(ours) == len(theirs)
    for a, b in zip(ours[1:], theirs[1:]):
        assert [x == "" for x in a] == [x == "" for x in b]
        assert [float(x) for x in a if x] == pytest.approx([float(x) for x in b if x], rel=1e-9)


def test_version_2_changed_only_the_trusted_values_and_added_the_angle(before):
    """Between the pinned files of versions 1 and 2, only the ``trusted`` blocks (faces seen
    edge-on, no longer normals near the x-y plane), the version and the new angle differ."""
    pinned = json.loads((DATA / "report_v2.json").read_text())
    changed: list[str] = []

    def walk(a, b, where):
        if isinstance(a, dict):
            assert list(a) == [k for k in b if k != ANGLE], where
            for k in a:
                walk(a[k], b[k], f"{where}.{k}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{where}[{i}]")
        elif a != pytest.approx(b, rel=1e-9, abs=1e-12) if isinstance(a, float) else a != b:
            changed.append(where)

    walk(before, pinned, "")
    assert changed and all(".trusted." in w for w in changed if w != ".report_version")
    assert (before["report_version"], pinned["report_version"]) == (1, 2)


def test_a_report_written_before_reads_back_unchanged(before, tmp_path):
    back = load_report(DATA / "report_v1.json")
    assert back.to_dict() == with_angle(before)  # not in the file: unknown
    assert back.version == 1  # its trusted values keep their old meaning
    write_report(back, tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == with_angle(before)
    assert csv_rows(dendrite_table(back), drop_angle=True) == csv_rows(
        (DATA / "report_v1.csv").read_text())
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
    assert Report.from_dict({**before, "batch": {"tile": 64}}).to_dict() == with_angle(before)
    broken = json.loads(json.dumps(before))
    del broken["sei_thickness_nm"]["trusted"]["on_LiH"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(FileFormatError, match="broken.json"):
        load_report(tmp_path / "broken.json")
