"""``napari-cryoli lattice`` and ``absf`` end to end, and their error contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_cryoli.cli import main
from napari_cryoli.hrtem.simulate import Grain, MicrographSpec, simulate_micrograph
from napari_cryoli.io import read_labels, read_mrc, write_mrc

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def two_phase(tmp_path_factory) -> Path:
    spec = MicrographSpec(layout="two", grains=(Grain("Li", (0, 0, 1), 15.0),
                                                Grain("Cu", (0, 1, 1), 60.0)),
                          shape=(320, 320), seed=7)
    m = simulate_micrograph(spec)
    path = tmp_path_factory.mktemp("cli") / "two.mrc"
    write_mrc(path, m.image, voxel_size_nm=(0.041, 0.041))
    return path


def test_lattice_report_and_phase_map(two_phase, tmp_path, capsys):
    out, pmap = tmp_path / "r.json", tmp_path / "map.mrc"
    assert main(["lattice", str(two_phase), "--out", str(out), "--phase-map", str(pmap),
                 "--window-nm", "4"]) == 0
    data = json.loads(out.read_text())
    assert data["pixel_size_A"] == pytest.approx(0.41, rel=1e-5)
    assert {p["phase"] for p in data["phases"]} == {"Li", "Cu"}
    assert data["amorphous"] is False
    labels = read_labels(pmap)
    assert labels.data.shape == (320, 320)
    assert {2, 4} <= set(np.unique(labels.data))
    assert "Li [001]" in capsys.readouterr().err


def test_lattice_region_and_pixel_size(two_phase, tmp_path):
    out = tmp_path / "r.json"
    assert main(["lattice", str(two_phase), "--out", str(out), "--region", "0", "0", "120",
                 "320", "--pixel-size", "0.41"]) == 0
    data = json.loads(out.read_text())
    assert data["region"] == [0, 0, 120, 320]
    assert [p["phase"] for p in data["phases"]] == ["Cu"]  # the top grain


def test_absf_writes_filtered_and_difference(two_phase, tmp_path):
    out, diff = tmp_path / "f.mrc", tmp_path / "d.mrc"
    assert main(["absf", str(two_phase), "--out", str(out), "--difference", str(diff)]) == 0
    filtered, raw = read_mrc(out), read_mrc(two_phase)
    assert filtered.voxel_size_nm == pytest.approx(raw.voxel_size_nm)
    np.testing.assert_allclose(np.asarray(filtered.data) + np.asarray(read_mrc(diff).data),
                               np.asarray(raw.data), atol=1e-2)


def test_absf_without_pixel_size_notes_it(tmp_path, capsys):
    out = tmp_path / "f.mrc"
    assert main(["absf", str(DATA / "stem_image.dm3"), "--out", str(out)]) == 0
    assert read_mrc(out).voxel_size_nm[-1] == pytest.approx(0.24854, rel=1e-4)
    assert main(["absf", str(DATA / "test-1.dm4"), "--out", str(out)]) == 0
    assert "carries no pixel size" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["lattice", "{data}/test-1.dm4", "--out", "{tmp}/r.json"], "carries no pixel size"),
    (["lattice", "{tmp}/none.tif", "--out", "{tmp}/r.json"], "does not exist"),
    (["lattice", "{two}", "--out", "{tmp}/no/such/r.json"], "r.json"),
    (["lattice", "{two}", "--out", "{tmp}/r.json", "--region", "0", "0", "5", "5"],
     "at least 16 x 16"),
    (["lattice", "{two}", "--out", "{tmp}/r.json", "--pixel-size", "-1"], "positive"),
    (["lattice", "{two}", "--out", "{tmp}/r.json", "--phases", "{two}"], "phase table"),
    (["absf", "{tmp}/none.dm3", "--out", "{tmp}/f.mrc"], "does not exist"),
])
def test_errors_are_one_line_and_exit_2(args, message, two_phase, tmp_path, capsys):
    fill = {"data": DATA, "tmp": tmp_path, "two": two_phase}
    assert main([a.format(**fill) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "r.json").exists()


def test_console_script_runs(two_phase, tmp_path):
    out = tmp_path / "r.json"
    run = subprocess.run([sys.executable, "-m", "napari_cryoli.cli", "lattice", str(two_phase),
                          "--out", str(out)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(out.read_text())["reflections"]
