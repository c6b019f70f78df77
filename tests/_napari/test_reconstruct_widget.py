"""The Reconstruct widget in a real viewer: tilt series file -> tomogram layer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.io.angles import write_angles
from napari_cryoli.io.tiltseries import TiltSeries, write_tilt_series
from napari_cryoli.tomo.projection import project

PIXEL_NM = 1.5


@pytest.fixture
def ball_series(tmp_path):
    """A ball off-centre in x and z, projected over ±60° in 3° steps, written as an .st stack."""
    z, y, x = np.mgrid[:32, :24, :40]
    volume = (((z - 20) ** 2 + (y - 12) ** 2 + (x - 14) ** 2) <= 16).astype(np.float32)
    angles = np.arange(-60.0, 61.0, 3.0)
    tilts = project(volume, angles).astype(np.float32)
    path = tmp_path / "ball.st"
    write_tilt_series(path, TiltSeries(tilts, angles, PIXEL_NM))
    return path, angles


def test_reconstructs_tilt_series_into_tomogram(make_napari_viewer, wait_job, ball_series):
    path, _ = ball_series
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Reconstruct")
    widget.thickness.setValue(32)
    wait_job(widget.start())
    tomogram = viewer.layers["ball tomogram"]
    assert tomogram.data.shape == (32, 24, 40)
    np.testing.assert_allclose(tomogram.scale, (PIXEL_NM,) * 3)
    bright = np.argwhere(tomogram.data > 0.5 * tomogram.data.max())
    np.testing.assert_allclose(bright.mean(axis=0), (20, 12, 14), atol=1.0)  # the ball's centre


def test_tilt_axis_option_turns_images(make_napari_viewer, wait_job, tmp_path):
    """A series whose tilt axis lies along x reconstructs like the aligned one."""
    z, y, x = np.mgrid[:32, :24, :24]
    volume = (((z - 20) ** 2 + (y - 12) ** 2 + (x - 8) ** 2) <= 16).astype(np.float32)
    angles = np.arange(-60.0, 61.0, 3.0)
    turned = np.rot90(project(volume, angles), -1, axes=(1, 2)).astype(np.float32)
    write_tilt_series(tmp_path / "turned.st", TiltSeries(turned, angles, PIXEL_NM))
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "turned.st"), plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Reconstruct")
    widget.axis.setCurrentIndex(widget.axis.findData(90))
    widget.thickness.setValue(32)
    wait_job(widget.start())
    tomogram = viewer.layers["turned tomogram"].data
    bright = np.argwhere(tomogram > 0.5 * tomogram.max())
    np.testing.assert_allclose(bright.mean(axis=0), (20, 12, 8), atol=1.0)


def test_angle_file_must_match(make_napari_viewer, wait_job, ball_series, tmp_path):
    path, angles = ball_series
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Reconstruct")
    write_angles(tmp_path / "short.tlt", angles[:-1])
    widget.angle_edit.setText(str(tmp_path / "short.tlt"))
    assert widget.start() is None  # refused with a notification, nothing started
    assert "ball tomogram" not in viewer.layers


def test_stop_adds_nothing(make_napari_viewer, wait_job, tmp_path):
    angles = np.arange(-60.0, 61.0, 1.0)
    path = tmp_path / "big.st"  # many chunks of slices, so Stop lands before the end
    write_tilt_series(path, TiltSeries(np.ones((121, 320, 64), np.float32), angles, PIXEL_NM))
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Reconstruct")
    handle = widget.start()
    handle.stop()
    wait_job(handle)
    assert "big tomogram" not in viewer.layers
    assert widget.run_button.isEnabled()
