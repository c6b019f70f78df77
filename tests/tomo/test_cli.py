"""``napari-cryoli simulate`` and ``napari-cryoli reconstruct`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_cryoli.cli import main
from napari_cryoli.io import read_labels, read_mrc


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "phantom"
    code = main(
        [
            "simulate",
            str(out),
            "--seed",
            "3",
            "--aging",
            "7d",
            "--shape",
            "88",
            "32",
            "128",
            "--no-cu",
            "--tilt-step",
            "2",
        ]
    )
    assert code == 0
    return out


def test_simulate_writes_tomogram_labels_truth_and_tilt_series(simulated):
    truth = json.loads((simulated / "truth.json").read_text())
    assert truth["aging"] == "7d" and truth["seed"] == 3
    assert truth["cu_particles"] == []
    assert truth["imaging"]["tilt_angles_deg"]["n"] == 61
    labels = read_labels(simulated / "labels.mrc")
    assert labels.data.shape == (88, 32, 128)
    assert labels.voxel_size_nm == pytest.approx((2.0, 2.0, 2.0))
    assert read_mrc(simulated / "tomogram.mrc").data.dtype == np.float32
    assert (simulated / "tiltseries.tlt").read_text().split()[0] == "-60.000"


def test_reconstruct_the_simulated_tilt_series(simulated, tmp_path, capsys):
    out = tmp_path / "rec.mrc"
    code = main(
        [
            "reconstruct",
            str(simulated / "tiltseries.mrc"),
            "--angles",
            str(simulated / "tiltseries.tlt"),
            "--out",
            str(out),
            "--thickness",
            "88",
        ]
    )
    assert code == 0
    rec = read_mrc(out)
    assert rec.data.shape == (88, 32, 128)
    assert rec.voxel_size_nm == pytest.approx((2.0, 2.0, 2.0))
    # the same reconstruction the phantom made, up to its scaling to density
    tomogram = np.asarray(read_mrc(simulated / "tomogram.mrc").data)
    ratio = np.asarray(rec.data)[tomogram != 0] / tomogram[tomogram != 0]
    assert ratio == pytest.approx(ratio[0], rel=1e-3)
    assert "wrote" in capsys.readouterr().err


def test_reconstruct_real_stem_series_with_its_axis_along_x(shared_data, tmp_path):
    out = tmp_path / "haadf.rec"
    code = main(
        [
            "reconstruct",
            str(shared_data / "etspy" / "HAADF_every4th.mrc"),
            "--angles",
            str(shared_data / "etspy" / "HAADF_every4th.rawtlt"),
            "--out",
            str(out),
            "--thickness",
            "96",
            "--tilt-axis-angle",
            "90",
            "--sirt-like",
            "10",
        ]
    )
    assert code == 0
    rec = read_mrc(out)
    assert rec.data.shape == (96, 256, 256)
    assert rec.voxel_size_nm == pytest.approx((3.36, 3.36, 3.36))


def test_bad_angle_file_is_one_line_and_exit_2(simulated, tmp_path, capsys):
    angles = tmp_path / "few.tlt"
    angles.write_text("0\n10\n")
    code = main(
        [
            "reconstruct",
            str(simulated / "tiltseries.mrc"),
            "--angles",
            str(angles),
            "--out",
            str(tmp_path / "x.mrc"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "2 angles" in err
    assert not (tmp_path / "x.mrc").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shape", "30", "64", "64"], "does not fit"),
        (["--lih-fraction", "2"], "LiH fraction"),
    ],
)
def test_impossible_simulation_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    code = main(["simulate", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
