"""OME-Zarr copies: same voxels, voxel size and origin; replaced whole or not at all."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.dataset.zarr import read_ome_zarr, write_ome_zarr, zarr_shape
from napari_cryoli.errors import FileFormatError
from napari_cryoli.io import read_mrc, write_mrc

pytest.importorskip("ome_zarr")  # Python 3.11 or later


def test_round_trip_from_a_memory_map(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(70, 90, 66)).astype(np.float32)
    write_mrc(tmp_path / "t.mrc", image, voxel_size_nm=(2.0, 1.0, 1.0), origin_nm=(4, -8, 16))
    volume = read_mrc(tmp_path / "t.mrc")
    assert isinstance(volume.data, np.memmap)
    path = write_ome_zarr(tmp_path / "t.ome.zarr", volume.data,
                          voxel_size_nm=volume.voxel_size_nm, origin_nm=volume.origin_nm)
    levels, meta = read_ome_zarr(path)
    assert np.array_equal(levels[0].compute(), image)
    assert levels[1].shape == (35, 45, 33)  # a local-mean level for an image
    assert np.isclose(float(levels[1][0, 0, 0]), image[:2, :2, :2].mean(), atol=1e-5)
    assert meta == {"scale": [2.0, 1.0, 1.0], "translate": [4.0, -8.0, 16.0]}
    assert zarr_shape(path) == image.shape


def test_rewrite_replaces_whole_and_bad_stores_are_refused(tmp_path):
    path = tmp_path / "l.ome.zarr"
    write_ome_zarr(path, np.full((64, 64, 64), 2, np.uint8), voxel_size_nm=(1, 1, 1), labels=True)
    write_ome_zarr(path, np.full((64, 64, 64), 3, np.uint8), voxel_size_nm=(1, 1, 1), labels=True)
    levels, _ = read_ome_zarr(path)
    assert set(np.unique(levels[0].compute())) == {3} and levels[1].dtype == np.uint8
    assert [p.name for p in tmp_path.iterdir()] == ["l.ome.zarr"]  # no temporaries left
    with pytest.raises(FileFormatError, match="not an OME-Zarr image"):
        zarr_shape(tmp_path / "missing.ome.zarr")
    with pytest.raises(FileFormatError, match="3D volume"):
        write_ome_zarr(tmp_path / "x.ome.zarr", np.zeros((4, 4), np.uint8), voxel_size_nm=(1, 1))


def test_memory_stays_bounded_whatever_the_volume(tmp_path):
    """A volume four times larger costs no more memory to copy: it streams chunk by chunk."""
    import tracemalloc

    from napari_cryoli.io import open_mrc_for_writing

    peaks = []
    write_ome_zarr(tmp_path / "warm.ome.zarr", np.zeros((64, 64, 64), np.uint8),
                   voxel_size_nm=(1, 1, 1), labels=True)  # imports and codecs: not counted
    for nz in (64, 256):
        path = tmp_path / f"v{nz}.mrc"
        with open_mrc_for_writing(path, (nz, 512, 512), np.uint8, voxel_size_nm=(1, 1, 1),
                                  labels=True) as out:
            for z in range(nz):
                out[z] = z % 6
        volume = read_mrc(path)
        tracemalloc.start()
        write_ome_zarr(tmp_path / f"v{nz}.ome.zarr", volume.data, voxel_size_nm=(1, 1, 1),
                       labels=True)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        levels, _ = read_ome_zarr(tmp_path / f"v{nz}.ome.zarr")
        assert int(levels[0][nz - 1, 5, 5].compute()) == (nz - 1) % 6
    assert peaks[1] < 1.5 * peaks[0], peaks
    assert peaks[1] < 0.75 * 256 * 512 * 512, peaks  # under the volume's 64 MiB


def test_staged_mrc_becomes_the_store_or_nothing(tmp_path):
    from napari_cryoli.dataset.zarr import staged_as_mrc

    assert not any(tmp_path.iterdir())
    with staged_as_mrc(tmp_path / "seg.mrc") as path:
        assert path == tmp_path / "seg.mrc"  # an MRC output is written where asked
    labels = np.zeros((40, 48, 56), np.uint8)
    labels[5:30, 10:40, 20:50] = 2
    with staged_as_mrc(tmp_path / "seg.ome.zarr") as path:
        assert path.parent == tmp_path and path.name.startswith(".seg.ome.zarr")
        write_mrc(path, labels, voxel_size_nm=(2.0, 1.5, 1.5), origin_nm=(1, 2, 3), labels=True)
    levels, meta = read_ome_zarr(tmp_path / "seg.ome.zarr")
    assert np.array_equal(levels[0].compute(), labels)
    assert meta == {"scale": [2.0, 1.5, 1.5], "translate": [1.0, 2.0, 3.0]}
    with staged_as_mrc(tmp_path / "stopped.ome.zarr"):
        pass  # a stopped prediction writes nothing: no store either
    with pytest.raises(RuntimeError), staged_as_mrc(tmp_path / "failed.ome.zarr") as path:
        write_mrc(path, labels, voxel_size_nm=(1, 1, 1), labels=True)
        raise RuntimeError
    assert [p.name for p in tmp_path.iterdir()] == ["seg.ome.zarr"]
