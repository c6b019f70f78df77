"""Restoring the missing wedge before the network: levels on phantoms, laziness, the gate on
dendrites across the tilt axis, and a model that records it from training to prediction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoli.classes import LI, LIH
from napari_cryoli.errors import InputError
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.dendrites import instances
from napari_cryoli.segment import PredictConfig, SegmentationModel, TrainConfig, predict, train
from napari_cryoli.segment.calibration import Calibration, calibrate, describe_intensity
from napari_cryoli.segment.missing_wedge import WedgeSettings, axis_angle_deg, restore_levels
from napari_cryoli.tomo.phantom import PhantomSpec, simulate

from .synthetic import sparse_strokes

WEDGE = WedgeSettings()


def _phantom(**spec):
    ph = run_job(simulate(PhantomSpec(**spec)))
    return ph.tomogram, ph.labels, ph.voxel_size_nm


@pytest.fixture(scope="module")
def crowded():
    """Three LiH-free dendrites side by side along the tilt axis: the wedge shades them apart."""
    return _phantom(aging="fresh", seed=8003, n_dendrites=3, shape=(96, 128, 400),
                    diameter_nm=(100.0, 140.0))


def _dendrite_li_levels(volume: np.ndarray, labels: np.ndarray, h) -> list[float]:
    metal = np.isin(labels, (LI, LIH))
    ids, n = instances(metal, h, 1000.0)
    inner = ndimage.binary_erosion(metal, iterations=3) & (labels == LI)
    return [float(volume[inner & (ids == i)].mean()) for i in range(1, n + 1)
            if (inner & (ids == i)).sum() >= 200]


def test_restoration_evens_the_dendrites_of_a_crowded_field_and_keeps_li_at_one(crowded):
    image, labels, h = crowded
    calibration = calibrate(image, h)
    view, network_levels, record = restore_levels(image, h, calibration, WEDGE)
    assert record.restored and (record.axis_angle_deg or 0.0) < 10  # None: no footprint elongated
    assert record.li_level > 1.2  # the wedge had taken away part of Li's contrast
    before = np.array(_dendrite_li_levels(calibration.in_li_units(image), labels, h))
    after = np.array(_dendrite_li_levels(view[:], labels, h))
    assert len(before) == len(after) == 3
    assert np.ptp(after) / after.mean() < 0.7 * np.ptp(before) / before.mean()
    assert after.mean() == pytest.approx(1.0, abs=0.1)
    assert network_levels == Calibration(0.0, 1.0, network_levels.source, calibration.lih_share,
                                         network_levels.noise, per_image=False)


def test_restored_sections_read_a_few_at_a_time_equal_the_whole(crowded):
    image, _, h = crowded
    view, _, _ = restore_levels(image, h, calibrate(image, h), WEDGE)
    whole = view[0 : view.shape[0]]
    assert whole.dtype == np.float32 and whole.shape == image.shape
    parts = [view[z0 : z0 + 7] for z0 in range(0, view.shape[0], 7)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_a_dendrite_across_the_tilt_axis_is_not_restored():
    image, _, h = _phantom(aging="7d", seed=8004, shape=(96, 160, 160), axis_angle_deg=90.0)
    calibration = calibrate(image, h)
    view, _, record = restore_levels(image, h, calibration, WEDGE)
    assert not record.restored and record.axis_angle_deg > 60
    np.testing.assert_allclose(view[:], calibration.in_li_units(image), rtol=1e-5, atol=1e-5)
    assert "not restored" in record.describe()


def test_restoring_needs_calibrated_grey_levels():
    with pytest.raises(InputError, match="calibrated"):
        TrainConfig(intensity="percentiles", restore_wedge=True)
    with pytest.raises(InputError, match="tilt range"):
        TrainConfig(tilt_range_deg=0.0)
    with pytest.raises(InputError, match="tilt range"):
        PredictConfig(tilt_range_deg=95.0)


def test_a_model_that_restores_keeps_it_from_training_to_prediction(tmp_path):
    image, truth, h = _phantom(aging="7d", seed=8005, shape=(96, 160, 160))
    labels = sparse_strokes(truth, sections=(40, 56), every=2)
    config = TrainConfig(base_channels=4, depth=2, patch_size=24, batch_size=2, minutes=None,
                         max_steps=2, eval_every=2, device="cpu", restore_wedge=True,
                         tilt_range_deg=60.0)
    result = run_job(train(image, labels, config, voxel_size_nm=h))
    assert result.summary["restorations"][0]["restored"] is True
    result.model.save(tmp_path / "m.pt")
    model = SegmentationModel.load(tmp_path / "m.pt", device="cpu")
    assert model.normalisation.wedge == WedgeSettings(tilt_range_deg=60.0)
    assert "missing-wedge restoration on" in model.normalisation.describe()

    prediction = run_job(predict(image, model, PredictConfig(tile=24, device="cpu",
                                                             uncertainty=False), voxel_size_nm=h))
    assert prediction.labels.shape == image.shape
    record = prediction.intensity
    assert record["restoration"]["restored"] is True and record["restoration"]["li_level"] > 1.0
    assert "missing wedge restored" in describe_intensity(record)
    narrower = run_job(predict(image, model, PredictConfig(tile=24, device="cpu",
                                                           uncertainty=False, tilt_range_deg=45.0),
                               voxel_size_nm=h))
    assert narrower.intensity["wedge"]["tilt_range_deg"] == 45.0


def _bars(angle_deg: float, n: int = 1, gap: float = 0.0) -> np.ndarray:
    """Cores (z, y, x) of ``n`` parallel bars 10 cells wide, ``gap`` cells apart, at
    ``angle_deg`` to the y (tilt) axis, in a 80 x 80 field."""
    y, x = np.mgrid[-40:40, -40:40].astype(float)
    a = np.radians(angle_deg)
    across = x * np.cos(a) - y * np.sin(a)
    offsets = (np.arange(n) - (n - 1) / 2) * (10 + gap)
    seen = np.any([np.abs(across - o) < 5 for o in offsets], axis=0)
    return np.repeat(seen[None], 4, axis=0)


@pytest.mark.parametrize(("cores", "expected"), [
    (_bars(0.0), 0.0),
    (_bars(0.0, n=3, gap=0.0), 0.0),  # three dendrites whose cores touch: not a wide blob across
    (_bars(45.0), 45.0),
    (_bars(90.0, n=2, gap=4.0), 90.0),
])
def test_the_angle_to_the_tilt_axis_follows_the_edges_of_the_footprint(cores, expected):
    assert axis_angle_deg(cores, (4.0, 4.0, 4.0)) == pytest.approx(expected, abs=3.0)


def test_a_round_footprint_has_no_direction():
    y, x = np.mgrid[-40:40, -40:40]
    disc = np.repeat((np.hypot(y, x) < 20)[None], 4, axis=0)
    assert axis_angle_deg(disc, (4.0, 4.0, 4.0)) is None
