"""Weighted back-projection against analytic shapes, skimage's iradon and IMOD's conventions."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from napari_cryoli.errors import InputError
from napari_cryoli.jobs import Progress, run_job
from napari_cryoli.tomo import geometry
from napari_cryoli.tomo.projection import project
from napari_cryoli.tomo.wbp import (
    UNFILTERED,
    WBPSettings,
    radial_filter,
    ramp,
    reconstruct,
    reconstruct_volume,
)

FULL = np.arange(-90.0, 90.0, 1.0)  # 180 views over 180°, like iradon's default
WEDGE = np.arange(-60.0, 61.0, 1.0)


def _slice_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred (z, x) coordinates of an n × n slice, in the reconstruction's frame."""
    c = geometry.volume_centre(n)
    z, x = np.mgrid[:n, :n].astype(float)
    return z - c, x - c


def _one_slice(obj: np.ndarray, angles: np.ndarray, settings: WBPSettings = UNFILTERED):
    n = obj.shape[0]
    tilts = project(obj[:, None, :].astype(np.float32), angles)
    return reconstruct_volume(tilts, angles, replace(settings, thickness=n))[:, 0, :]


def test_disk_from_full_range_is_round_with_the_right_value():
    z, x = _slice_grid(128)
    r = np.hypot(x, z)
    rec = _one_slice((r <= 30).astype(np.float32), FULL)
    assert rec[r < 25].mean() == pytest.approx(1.0, abs=0.005)
    assert np.abs(rec[r > 35]).mean() < 0.005
    # Radius where the edge crosses half height, along x and along z: the same to 0.1 voxel.
    mid = rec.shape[0] // 2
    half_x = np.count_nonzero(rec[mid, :] > 0.5)
    half_z = np.count_nonzero(rec[:, mid] > 0.5)
    assert half_x == half_z == 60


def _elongation(rec: np.ndarray) -> float:
    """Ratio of x to z spread of the reconstructed point's spectrum (Radermacher's factor)."""
    n = rec.shape[0]
    spectrum = np.abs(np.fft.fft2(rec))
    kz = np.fft.fftfreq(n)[:, None]
    kx = np.fft.fftfreq(n)[None, :]
    inside = kz**2 + kx**2 < 0.2**2
    return float(np.sqrt((spectrum * kx**2)[inside].sum() / (spectrum * kz**2)[inside].sum()))


def test_missing_wedge_elongates_along_z_by_the_known_factor():
    z, x = _slice_grid(128)
    point = np.exp(-(x**2 + z**2) / (2 * 1.5**2))
    alpha = np.deg2rad(60.0)
    sc = np.sin(alpha) * np.cos(alpha)
    expected = np.sqrt((alpha + sc) / (alpha - sc))  # 1.55 for ±60°
    assert _elongation(_one_slice(point, FULL)) == pytest.approx(1.0, abs=0.01)
    assert _elongation(_one_slice(point, WEDGE)) == pytest.approx(expected, rel=0.04)


def test_agrees_with_skimage_iradon_on_the_same_sinogram():
    from skimage.transform import iradon

    n = 129  # odd: iradon's centre (n // 2) is then the geometric centre, as here
    z, x = _slice_grid(n)
    obj = (np.hypot(x - 10, z - 20) <= 15) + 0.5 * (np.hypot(x + 25, z + 5) <= 8)
    tilts = project(obj[:, None, :].astype(np.float32), FULL)
    ours = reconstruct_volume(tilts, FULL, replace(UNFILTERED, thickness=n))[:, 0, :]
    # skimage measures angles the other way round; its rows are our z, its columns our x.
    theirs = iradon(tilts[:, 0, :].T, theta=-FULL, filter_name="ramp", output_size=n, circle=False)
    # Compare where every ray lands on the detector: beyond, iradon reads zeros where this
    # reads the filtered row's tail.
    seen = np.hypot(x, z) < (n - 1) / 2
    diff = np.abs(ours - theirs)[seen]
    assert diff.max() < 0.025
    assert diff.mean() < 0.002


def _gaussian(shape, centre, sigma=1.5):
    """A Gaussian blob at ``centre`` (z, y, x), measured from the volume's centre, in voxels."""
    axes = [np.arange(n) - geometry.volume_centre(n) - c for n, c in zip(shape, centre)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    return np.exp(-(x**2 + y**2 + z**2) / (2 * sigma**2)).astype(np.float32)


def _gaussian_tilt_series(x0, y0, z0, angles, shape, sigma=1.5):
    """Tilt series of a Gaussian blob at (x0, y0, z0) from the stated geometry alone."""
    n_y, n_x = shape
    u = np.arange(n_x) - geometry.detector_centre(n_x)
    y = np.arange(n_y) - geometry.detector_centre(n_y)
    a = np.deg2rad(angles)[:, None, None]
    centre = x0 * np.cos(a) + z0 * np.sin(a)
    g = np.exp(-((u[None, None, :] - centre) ** 2 + (y[None, :, None] - y0) ** 2) / (2 * sigma**2))
    return (g * np.sqrt(2 * np.pi) * sigma).astype(np.float32)


def test_positive_tilt_moves_points_above_the_centre_to_larger_x():
    """The stated convention u = x cos θ + z sin θ, checked on the projector and the inverse."""
    nz, ny, nx = 40, 24, 64
    x0, y0, z0 = 9.0, -5.0, 12.0
    angles = np.array([-70.0, -50.0, 0.0, 30.0, 60.0])
    tilts = project(_gaussian((nz, ny, nx), (z0, y0, x0)), angles)
    u = np.arange(nx) - geometry.detector_centre(nx)
    for view, a in zip(tilts, np.deg2rad(angles)):
        assert (view.sum(axis=0) * u).sum() / view.sum() == pytest.approx(
            x0 * np.cos(a) + z0 * np.sin(a), abs=0.01
        )
    # and the reconstruction puts a point given by that formula back where it was
    rec = reconstruct_volume(
        _gaussian_tilt_series(x0, y0, z0, WEDGE, (ny, nx)),
        WEDGE,
        replace(UNFILTERED, thickness=nz),
    )
    peak = np.unravel_index(np.argmax(rec), rec.shape)
    expected = (
        z0 + geometry.volume_centre(nz),
        y0 + geometry.detector_centre(ny),
        x0 + geometry.volume_centre(nx),
    )
    assert np.abs(np.subtract(peak, expected)).max() <= 0.5


def test_reconstruction_repeats_along_the_tilt_axis():
    z, x = _slice_grid(48)
    obj = (np.hypot(x - 5, z) <= 10).astype(np.float32)
    vol = np.repeat(obj[:, None, :], 70, axis=1) * np.linspace(1, 2, 70)[None, :, None]
    rec = reconstruct_volume(project(vol, WEDGE), WEDGE, replace(UNFILTERED, thickness=48))
    scaled = rec / np.linspace(1, 2, 70)[None, :, None]
    assert np.abs(scaled - scaled[:, :1, :]).max() < 1e-4  # 70 slices = 3 chunks, all alike


def test_default_thickness_is_the_width():
    rec = reconstruct_volume(np.ones((3, 5, 20), np.float32), [-10, 0, 10])
    assert rec.shape == (20, 5, 20)
    assert rec.dtype == np.float32


def test_radial_filter_follows_imod_cutoff_and_gaussian_falloff():
    n = 1000
    f = np.arange(n // 2 + 1) / n
    plain = ramp(n)
    assert plain[1:] == pytest.approx(f[1:], abs=2e-3)  # ≈ |f| in cycles/pixel
    assert 0 < plain[0] < plain[1]  # a small positive weight at zero frequency
    w = radial_filter(n, WBPSettings(radial_cutoff=0.25, radial_falloff=0.05))
    below = f <= 0.25
    assert np.array_equal(w[below], plain[below])
    i_cut, i_sigma = 250, 300
    assert w[i_sigma] == pytest.approx(w[i_cut] * np.exp(-0.5), rel=1e-6)
    sharp = radial_filter(n, WBPSettings(radial_cutoff=0.25, radial_falloff=0.0))
    assert np.all(sharp[f > 0.25] == 0)
    assert np.array_equal(radial_filter(n, UNFILTERED), plain)


def test_sirt_like_filter_damps_high_frequencies_more_with_fewer_iterations():
    n = 512
    plain = radial_filter(n, UNFILTERED)
    few = radial_filter(n, replace(UNFILTERED, sirt_like_iterations=5))
    many = radial_filter(n, replace(UNFILTERED, sirt_like_iterations=40))
    high = slice(n // 8, None)
    assert np.all(few[high] < many[high]) and np.all(many[high] < plain[high])
    assert few[1] == pytest.approx(plain[1], rel=1e-6)  # below α the ramp is kept


def test_stop_returns_early_marked_stopped():
    stop = threading.Event()
    job = reconstruct(np.ones((5, 100, 16), np.float32), np.linspace(-40, 40, 5), stop=stop)
    records = []
    while True:
        try:
            records.append(next(job))
        except StopIteration as end:
            result = end.value
            break
        if len(records) == 2:  # after the first chunk of slices
            stop.set()
    assert all(isinstance(r, Progress) for r in records)
    assert result.stopped
    assert np.any(result.volume[:, :32] != 0) and np.all(result.volume[:, 32:] == 0)


def test_progress_counts_chunks_of_slices():
    records = []
    run_job(reconstruct(np.ones((3, 70, 16), np.float32), [-5, 0, 5]), records.append)
    assert [r.done for r in records] == [0, 1, 2, 3]
    assert all(r.total == 3 for r in records)


@pytest.mark.parametrize(
    ("tilts", "angles", "settings", "message"),
    [
        (np.ones((3, 8)), [0, 1, 2], WBPSettings(), "3D"),
        (np.ones((3, 8, 8)), [0, 1], WBPSettings(), "3 images but 2 tilt angles"),
        (np.ones((2, 8, 8)), [0, 95], WBPSettings(), r"within -90 to \+90"),
        (np.ones((2, 8, 8)), [0, np.nan], WBPSettings(), "not a number"),
        (np.ones((2, 8, 8)), [0, 1], WBPSettings(device="tpu"), "unknown device"),
    ],
)
def test_bad_input_raises_input_error(tilts, angles, settings, message):
    with pytest.raises(InputError, match=message):
        run_job(reconstruct(tilts, angles, settings))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thickness": 0},
        {"radial_cutoff": 0.0},
        {"radial_cutoff": 0.6},
        {"radial_falloff": -0.1},
        {"sirt_like_iterations": -1},
    ],
)
def test_bad_settings_raise_input_error(kwargs):
    with pytest.raises(InputError):
        WBPSettings(**kwargs)


def test_non_finite_tilt_series_is_refused():
    tilts = np.ones((3, 40, 16), np.float32)
    tilts[1, 35, 4] = np.nan
    with pytest.raises(InputError, match="not finite .* rows 32-39"):
        run_job(reconstruct(tilts, [-5, 0, 5]))


def test_cuda_requested_without_a_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(InputError, match="CUDA was requested but torch sees no GPU"):
        run_job(reconstruct(np.ones((2, 4, 8)), [0, 1], WBPSettings(device="cuda")))


def test_real_stem_tilt_series_reprojects_consistently(shared_data):
    """The FEI HAADF series (tilt axis along x in the raw images, rotated onto y) reconstructs
    into a volume whose reprojection matches the measured images."""
    from napari_cryoli.io import read_tilt_series

    series = read_tilt_series(shared_data / "etspy" / "HAADF_every4th.mrc")
    assert series.pixel_size_nm == pytest.approx(3.36)
    raw = np.asarray(series.data, np.float32)
    raw = raw - np.median(raw)  # the dark background, most of each image

    def agreement(images: np.ndarray) -> float:
        images = images[:, 96:160]
        rec = reconstruct_volume(images, series.angles_deg, replace(UNFILTERED, thickness=160))
        again = project(rec, series.angles_deg)
        a = images - images.mean(axis=(1, 2), keepdims=True)
        b = again - again.mean(axis=(1, 2), keepdims=True)
        return float((a * b).sum() / np.sqrt((a**2).sum() * (b**2).sum()))

    rotated = agreement(np.rot90(raw, 1, axes=(1, 2)))  # tilt axis onto y, as IMOD would
    assert rotated > 0.9
    assert rotated > agreement(raw) + 0.03  # taking the raw image's y as the axis fits worse
