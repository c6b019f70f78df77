"""``napari-cryoli measure`` on label files written by the project's MRC writer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from napari_cryoli.classes import CU
from napari_cryoli.cli import main
from napari_cryoli.io import write_mrc

from . import shapes

VOXEL = (1.5, 1.0, 1.0)


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    path = tmp_path_factory.mktemp("seg") / "seg.mrc"
    shape = (40, 60, 60)
    labels = shapes.sphere(shape, VOXEL, 14.0, 5.0, (29.1, 29.6, 29.4))
    shapes.add_ball(labels, VOXEL, (29.1, 29.6, 22.0), 3.0, CU)
    write_mrc(path, labels, voxel_size_nm=VOXEL)
    return path


def test_measure_writes_report_and_table(seg, tmp_path, capsys):
    out, table = tmp_path / "report.json", tmp_path / "table.csv"
    assert main(["measure", str(seg), "--out", str(out), "--csv", str(table)]) == 0
    report = json.loads(out.read_text())
    assert report["voxel_size_nm"] == pytest.approx(list(VOXEL))  # read from the file
    for key in (
        "volumes_nm3",
        "lih_volume_fraction",
        "sei_thickness_nm",
        "cu_particles",
        "dendrites",
    ):
        assert key in report
    assert report["sei_thickness_nm"]["on_Li"]["mean"] == pytest.approx(5.0, abs=0.25)
    assert len(report["cu_particles"]) == 1
    assert len(list(csv.reader(table.open()))) == 2
    assert "wrote" in capsys.readouterr().err


def test_voxel_size_and_threshold_options(seg, tmp_path):
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "measure",
                str(seg),
                "--out",
                str(out),
                "--voxel-size-nm",
                "2",
                "--extended-threshold-nm",
                "4",
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["voxel_size_nm"] == [2.0, 2.0, 2.0]
    assert report["settings"]["extended_threshold_nm"] == 4.0
    assert report["sei_thickness_nm"]["extended_share"]["Li"] > 0.9


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-cryoli measure: error:")
    assert "Traceback" not in err[0]
    return err[0]


def test_missing_file_is_one_line(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["measure", str(tmp_path / "nope.mrc"), "--out", str(out)]) == 2
    assert "nope.mrc" in one_line_error(capsys)
    assert not out.exists()


def test_tomogram_is_not_a_label_volume(tmp_path, capsys):
    path = tmp_path / "tomo.mrc"
    write_mrc(
        path,
        np.random.default_rng(0).normal(size=(8, 8, 8)).astype(np.float32),
        voxel_size_nm=(1, 1, 1),
    )
    assert main(["measure", str(path), "--out", str(tmp_path / "r.json")]) == 2
    assert "not labels" in one_line_error(capsys)


def test_bad_voxel_size_is_one_line(seg, tmp_path, capsys):
    assert (
        main(["measure", str(seg), "--out", str(tmp_path / "r.json"), "--voxel-size-nm", "1", "2"])
        == 2
    )
    assert "voxel size" in one_line_error(capsys)
