"""Noise matching: a tomogram cleaner than the model's training tomogram gets the difference."""

import numpy as np
import pytest

from napari_cryoli.segment.noise import (
    MATCH_BELOW,
    NoiseAdded,
    noise_to_add,
    per_working_voxel,
    voxel_noise,
)


def test_voxel_noise_reads_white_noise_in_li_units_despite_edges():
    rng = np.random.default_rng(0)
    volume = np.zeros((16, 64, 64), np.float32)
    volume[:, 20:40, 10:50] = -2.0  # "Li" two grey levels below "vacuum": edges in every section
    volume[:, 25:30, 20:30] = -2.8
    noisy = volume + rng.normal(0, 0.3, volume.shape).astype(np.float32)
    assert voxel_noise(noisy, li_unit=-2.0) == pytest.approx(0.15, rel=0.05)
    assert voxel_noise(noisy, li_unit=-1.0) == pytest.approx(0.30, rel=0.05)
    assert voxel_noise(volume, li_unit=-2.0) == 0.0


def test_noise_per_working_voxel_follows_the_voxel_volume_as_binning_does():
    rng = np.random.default_rng(0)
    fine = rng.normal(0, 1.0, (16, 128, 128)).astype(np.float32)
    binned = fine.reshape(8, 2, 64, 2, 64, 2).mean(axis=(1, 3, 5))
    assert per_working_voxel(voxel_noise(fine, 1.0), 1.0, 2.0) == pytest.approx(
        voxel_noise(binned, 1.0), rel=0.05)
    assert per_working_voxel(0.3, 2.5, 2.0) == pytest.approx(0.3 * 1.25**1.5)
    assert per_working_voxel(0.3, 2.0, None) == 0.3


def test_noise_is_added_only_below_the_models_share():
    assert noise_to_add(None, 0.1) == 0.0
    assert noise_to_add(0.4, 0.4) == 0.0
    assert noise_to_add(0.4, MATCH_BELOW * 0.4 + 1e-6) == 0.0
    assert noise_to_add(0.5, 0.3) == pytest.approx(0.4)  # 0.3² + 0.4² = 0.5²


def test_added_noise_is_the_same_whichever_tiles_read_it():
    volume = np.arange(20 * 12 * 12, dtype=np.float32).reshape(20, 12, 12)
    before = volume.copy()
    noisy = NoiseAdded(volume, 0.5)
    a = noisy[0:10, 0:8, 0:8]
    b = noisy[5:15, 4:12, 4:12]
    np.testing.assert_array_equal(a[5:, 4:, 4:], b[:5, :4, :4])
    again = NoiseAdded(volume, 0.5)[0:20]
    np.testing.assert_array_equal(again[5:15, 4:12, 4:12], b)
    assert np.std(again - volume) == pytest.approx(0.5, rel=0.05)
    np.testing.assert_array_equal(volume, before)
    assert noisy.shape == volume.shape and noisy.dtype == np.float32
    np.testing.assert_array_equal(noisy[3], again[3])
    with pytest.raises(IndexError):
        noisy[::2]


def test_a_model_records_its_noise_and_predict_matches_a_cleaner_tomogram(tmp_path, capsys):
    """Trained on a noisier copy of a phantom, the model records that copy's voxel noise; predict
    adds noise to the phantom itself, says so, and records it; ``--no-match-noise`` does not."""
    from napari_cryoli.cli import main
    from napari_cryoli.io import read_mrc, write_mrc
    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment.model import SegmentationModel
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    ph = run_job(simulate(PhantomSpec(aging="7d", seed=5, shape=(96, 96, 160))))
    # about half a Li unit of this phantom (|Li - vacuum| ~ 0.27)
    noisier = ph.tomogram + np.random.default_rng(1).normal(0, 0.15, ph.tomogram.shape)
    strokes = np.zeros_like(ph.labels)
    strokes[::8] = ph.labels[::8]
    write_mrc(tmp_path / "noisy.mrc", noisier.astype(np.float32), voxel_size_nm=2.0)
    write_mrc(tmp_path / "clean.mrc", ph.tomogram, voxel_size_nm=2.0)
    write_mrc(tmp_path / "l.mrc", strokes, voxel_size_nm=2.0)
    small = ["--max-steps", "2", "--base-channels", "4", "--depth", "2", "--device", "cpu"]
    assert main(["train", str(tmp_path / "noisy.mrc"), str(tmp_path / "l.mrc"),
                 "--out", str(tmp_path / "m.pt"), *small]) == 0
    model = SegmentationModel.load(tmp_path / "m.pt", device="cpu")
    cal = model.normalisation
    clean_noise = voxel_noise(ph.tomogram, cal.li - cal.vacuum)
    assert cal.voxel_noise == pytest.approx(voxel_noise(noisier, cal.li - cal.vacuum), abs=1e-3)
    assert clean_noise < MATCH_BELOW * cal.voxel_noise
    assert "trained on voxel noise" in capsys.readouterr().err

    out = {}
    for flag in ("--match-noise", "--no-match-noise"):
        assert main(["predict", str(tmp_path / "clean.mrc"), "--model", str(tmp_path / "m.pt"),
                     "--out", str(tmp_path / f"{flag[2:]}.mrc"), flag]) == 0
        out[flag] = capsys.readouterr().err
    assert "added" in out["--match-noise"] and "no noise added" not in out["--match-noise"]
    assert "no noise added" in out["--no-match-noise"]
    assert read_mrc(tmp_path / "match-noise.mrc").data.shape == ph.tomogram.shape
