"""The Batch widget in a real viewer, on a real local Dask cluster; OME-Zarr opened lazily."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.io import read_mrc
from napari_cryoli.jobs import run_job
from napari_cryoli.tomo.phantom import PhantomSpec, simulate, write_phantom


@pytest.fixture(scope="module")
def two_tomograms(tmp_path_factory):
    """A tiny fresh and a tiny 7 d tomogram (4 nm voxels)."""
    root = tmp_path_factory.mktemp("series")
    paths = []
    for aging in ("fresh", "7d"):
        spec = PhantomSpec(aging=aging, shape=(32, 64, 64), voxel_size_nm=4.0,
                           diameter_nm=(40.0, 60.0), tilt_step_deg=3.0)
        paths.append(write_phantom(run_job(simulate(spec)), root / aging)["tomogram"])
    return paths


def test_batch_widget_runs_shows_and_opens(make_napari_viewer, wait_job, two_tomograms,
                                           tmp_path):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Batch")
    assert widget.model_edit.text().endswith(".pt")  # the shipped model by default
    widget.condition_edit.setText("fresh")
    widget.add_tomograms(two_tomograms[:1])
    widget.add_tomograms(two_tomograms[1:], condition="7d")
    widget.add_tomograms(two_tomograms[:1])  # listed already: not twice
    broken = tmp_path / "broken.mrc"
    broken.write_bytes(b"\0" * 64)
    widget.add_tomograms([broken], condition="7d")
    assert widget.conditions() == ["fresh", "7d", "7d"]
    widget.out_edit.setText(str(tmp_path / "out"))
    widget.workers.setValue(2)

    wait_job(widget.start())
    result = widget.result
    assert [r.status for r in result.results] == ["done", "done", "failed"]
    assert widget.dashboard.text().startswith("Dask dashboard: <a href=\"http://127.0.0.1:")
    assert [widget.table.item(r, 2).text() for r in range(3)] == ["done", "done", "failed"]
    assert "broken.mrc" in widget.table.item(2, 5).text()
    assert "2 done, 0 already done, 1 failed" in widget.status.text()

    layer = widget.open_segmentation(1)
    image = read_mrc(two_tomograms[1])
    assert layer.data.shape == image.data.shape
    np.testing.assert_allclose(layer.scale, image.voxel_size_nm)
    assert widget.open_segmentation(2) is None  # failed: nothing to open

    handle = widget.compare()
    assert widget.controls.stop_button.isEnabled() and not widget.run_button.isEnabled()
    wait_job(handle)
    assert widget.controls.progress.format() == "%v/%m tomograms"
    assert widget.comparison.conditions == ("fresh", "7d")
    assert (tmp_path / "out" / "compare" / "comparison.png").exists()
    assert widget.plot.figure.axes

    # A second run skips what is done.
    wait_job(widget.start())
    assert [r.status for r in widget.result.results] == ["skipped", "skipped", "failed"]


def test_refuses_without_inputs(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Batch")
    assert widget.start() is None  # no tomograms: a notification, no job


def test_ome_zarr_prediction_opens_lazily_in_napari(make_napari_viewer, tmp_path):
    pytest.importorskip("napari_ome_zarr")  # Python 3.11 or later
    import dask.array as da

    from napari_cryoli.dataset.zarr import write_ome_zarr
    from napari_cryoli.io import write_mrc

    labels = np.zeros((64, 80, 96), np.uint8)
    labels[10:50, 20:60, 30:90] = 2
    labels[20:30, 30:40, 40:50] = 3
    mrc = tmp_path / "seg.mrc"
    write_mrc(mrc, labels, voxel_size_nm=(2.0, 1.5, 1.5), origin_nm=(10.0, 20.0, -30.0))
    volume = read_mrc(mrc)  # memory-mapped: the copy streams from disk chunk by chunk
    path = write_ome_zarr(tmp_path / "seg.ome.zarr", volume.data,
                          voxel_size_nm=volume.voxel_size_nm, origin_nm=volume.origin_nm,
                          labels=True)
    viewer = make_napari_viewer()
    layers = viewer.open(path, plugin="napari-ome-zarr")
    layer = layers[0]
    assert layer.multiscale and isinstance(layer.data[0], da.Array)  # lazy, a pyramid
    np.testing.assert_allclose(layer.scale, (2.0, 1.5, 1.5))
    np.testing.assert_allclose(layer.data_to_world((0, 0, 0)), (10.0, 20.0, -30.0))
    np.testing.assert_allclose(layer.data_to_world((1, 1, 1)), (12.0, 21.5, -28.5))
    assert np.array_equal(np.asarray(layer.data[0]), labels)
    assert np.array_equal(np.asarray(layer.data[1]), labels[::2, ::2, ::2])


def test_predict_to_ome_zarr_from_the_command_line_opens_lazily(make_napari_viewer, two_tomograms,
                                                               tmp_path, capsys):
    """``predict --out X.ome.zarr``: the same labels as the MRC output, the tomogram's voxel size
    and origin, no staging file left behind; napari opens it as a lazy pyramid."""
    pytest.importorskip("napari_ome_zarr")  # Python 3.11 or later
    import dask.array as da

    from napari_cryoli.cli import main
    from napari_cryoli.segment.pretrained import pretrained_path

    model = pretrained_path()
    if model is None:
        pytest.skip("the shipped model is not installed")
    tomogram = two_tomograms[1]
    image = read_mrc(tomogram)
    args = ["predict", str(tomogram), "--model", str(model), "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "seg.mrc")]) == 0
    assert main([*args, "--out", str(tmp_path / "seg.ome.zarr")]) == 0
    assert main([*args, "--out", str(tmp_path / "seg.ome.zarr")]) == 0  # replaces the store
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.mrc", "seg.ome.zarr"]
    expected = np.asarray(read_mrc(tmp_path / "seg.mrc").data)
    viewer = make_napari_viewer()
    layer = viewer.open(tmp_path / "seg.ome.zarr", plugin="napari-ome-zarr")[0]
    full = layer.data[0] if layer.multiscale else layer.data  # 32 voxels deep: one level
    assert isinstance(full, da.Array)  # lazy: read chunk by chunk
    np.testing.assert_allclose(layer.scale, image.voxel_size_nm)
    np.testing.assert_allclose(layer.data_to_world((0, 0, 0)), image.origin_nm)
    assert np.array_equal(np.asarray(full), expected)

    # napari-cryoli's own reader opens it as a segmentation: Labels in the class colours, lazy.
    ours = viewer.open(tmp_path / "seg.ome.zarr", plugin="napari-cryoli")[0]
    assert ours._type_string == "labels" and not ours.multiscale  # panels read one volume
    assert isinstance(ours.data, da.Array)
    np.testing.assert_allclose(ours.scale, image.voxel_size_nm)
    np.testing.assert_allclose(ours.data_to_world((0, 0, 0)), image.origin_nm)
    assert np.array_equal(np.array(ours.data, dtype=np.uint8), expected)  # as Measure reads it
    assert ours.colormap.map(np.array([2]))[0][3] > 0  # Li has its colour
