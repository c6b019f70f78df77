"""The train and predict commands: files in, files out, geometry kept, one-line errors."""

from __future__ import annotations

import numpy as np

from napari_cryoli.cli import main
from napari_cryoli.io import read_mrc, write_mrc

from .synthetic import rod_volume, sparse_strokes


def test_train_then_predict(tmp_path, capsys):
    image, truth = rod_volume((16, 32, 32))
    grid = {"voxel_size_nm": (1.2, 1.0, 1.0), "origin_nm": (5.0, 6.0, 7.0)}
    write_mrc(tmp_path / "t.mrc", image, **grid)
    write_mrc(tmp_path / "l.mrc", sparse_strokes(truth, sections=(6, 10)), **grid)
    small = ["--max-steps", "3", "--base-channels", "4", "--depth", "2", "--device", "cpu"]
    assert main(["train", str(tmp_path / "t.mrc"), str(tmp_path / "l.mrc"),
                 "--out", str(tmp_path / "m.pt"), *small]) == 0
    err = capsys.readouterr().err
    assert "after 3 steps" in err
    # A rod in noise has no vacuum/Li pair to calibrate on: the default mapping falls back.
    assert "note: grey levels from percentiles, as the calibration failed" in err
    assert "intensity: percentiles" in err
    assert main(["predict", str(tmp_path / "t.mrc"), "--model", str(tmp_path / "m.pt"),
                 "--out", str(tmp_path / "seg.mrc"), "--uncertainty", str(tmp_path / "u.mrc"),
                 "--probabilities", str(tmp_path / "p.mrc"), "--tile", "16"]) == 0
    seg = read_mrc(tmp_path / "seg.mrc")
    assert seg.data.shape == image.shape and seg.data.dtype == np.uint8
    np.testing.assert_allclose(seg.voxel_size_nm, grid["voxel_size_nm"], rtol=1e-5)
    np.testing.assert_allclose(seg.origin_nm, grid["origin_nm"], rtol=1e-5)
    assert read_mrc(tmp_path / "u.mrc").data.dtype == np.float32
    assert read_mrc(tmp_path / "p_SEI.mrc").data.dtype == np.float16


def test_user_errors_are_one_line(tmp_path, capsys):
    image, _truth = rod_volume((16, 32, 32))
    write_mrc(tmp_path / "t.mrc", image, voxel_size_nm=1.0)
    write_mrc(tmp_path / "l.mrc", np.zeros(image.shape, np.uint8), voxel_size_nm=1.0)
    code = main(["train", str(tmp_path / "t.mrc"), str(tmp_path / "l.mrc"),
                 "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "nothing is painted" in err and err.count("\n") == 1
    (tmp_path / "bad.pt").write_bytes(b"junk")
    code = main(["predict", str(tmp_path / "t.mrc"), "--model", str(tmp_path / "bad.pt"),
                 "--out", str(tmp_path / "seg.mrc")])
    assert code == 2 and "not a napari-cryoli model" in capsys.readouterr().err
    assert not (tmp_path / "seg.mrc").exists() and not (tmp_path / "m.pt").exists()


def test_restoring_the_missing_wedge_from_the_command_line(tmp_path, capsys):
    from napari_cryoli.jobs import run_job
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    ph = run_job(simulate(PhantomSpec(aging="7d", seed=8005, shape=(96, 160, 160))))
    write_mrc(tmp_path / "t.mrc", ph.tomogram, voxel_size_nm=ph.voxel_size_nm)
    write_mrc(tmp_path / "l.mrc", sparse_strokes(ph.labels, sections=(40, 56), every=2),
              voxel_size_nm=ph.voxel_size_nm)
    pair = [str(tmp_path / "t.mrc"), str(tmp_path / "l.mrc"), "--out", str(tmp_path / "m.pt")]
    code = main(["train", *pair, "--restore-wedge", "--intensity", "percentiles"])
    err = capsys.readouterr().err
    assert code == 2 and "needs calibrated grey levels" in err and err.count("\n") == 1
    small = ["--max-steps", "2", "--base-channels", "4", "--depth", "2", "--device", "cpu"]
    assert main(["train", *pair, *small, "--restore-wedge", "--tilt-range", "60"]) == 0
    assert "missing-wedge restoration on, tilt ±60°" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "t.mrc"), "--model", str(tmp_path / "m.pt"),
                 "--out", str(tmp_path / "seg.mrc"), "--tile", "32"]) == 0
    assert "; missing wedge restored (Li re-read at" in capsys.readouterr().err
