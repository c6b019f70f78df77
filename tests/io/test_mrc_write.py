"""Writing MRC files: round trips of data, voxel size and origin; labels; streaming; validity."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryoli.errors import FileFormatError, InputError
from napari_cryoli.io import (
    DiscardWrite,
    open_mrc_for_writing,
    read_labels,
    read_mrc,
    write_mrc,
)

VOXEL = (2.5, 0.75, 0.33)  # anisotropic, nm
ORIGIN = (120.0, -3.5, 2.25)  # nm

DTYPES_AND_MODES = [
    (np.uint8, 0),
    (np.int8, 0),
    (np.int16, 1),
    (np.float32, 2),
    (np.uint16, 6),
    (np.float16, 12),
]


def _random(dtype, shape=(5, 6, 7), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 10).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize(("dtype", "mode"), DTYPES_AND_MODES)
def test_round_trip_keeps_data_voxel_size_and_origin(tmp_path: Path, dtype, mode: int) -> None:
    data = _random(dtype)
    path = tmp_path / "volume.mrc"
    write_mrc(path, data, voxel_size_nm=VOXEL, origin_nm=ORIGIN)
    volume = read_mrc(path)
    assert volume.header["mode"] == mode
    assert volume.data.dtype == dtype
    np.testing.assert_array_equal(volume.data, data)
    assert volume.voxel_size_nm == pytest.approx(VOXEL, rel=1e-6)
    assert volume.origin_nm == pytest.approx(ORIGIN, rel=1e-6)
    assert volume.kind == "volume"
    assert volume.is_labels == (dtype == np.uint8)
    assert volume.warnings == ()


@pytest.mark.parametrize(("dtype", "mode"), [m for m in DTYPES_AND_MODES if m[0] != np.float16])
def test_written_files_are_valid_mrc2014(tmp_path: Path, dtype, mode: int) -> None:
    # mrcfile reads mode 0 as int8, so keep byte values below 128 for its statistics check.
    data = _random(dtype) if dtype not in (np.uint8, np.int8) else _random(np.int8).clip(0, 127)
    path = tmp_path / "volume.mrc"
    write_mrc(path, data.astype(dtype), voxel_size_nm=VOXEL, origin_nm=ORIGIN)
    report = io.StringIO()
    assert mrcfile.validate(path, print_file=report), report.getvalue()
    with mrcfile.open(path) as m:
        assert m.voxel_size.x == pytest.approx(VOXEL[2] * 10, rel=1e-6)
        assert m.voxel_size.z == pytest.approx(VOXEL[0] * 10, rel=1e-6)
        assert m.header.origin.z == pytest.approx(ORIGIN[0] * 10, rel=1e-6)


def test_float64_and_bool_are_stored_as_float32_and_uint8(tmp_path: Path) -> None:
    floats = _random(np.float64)
    write_mrc(tmp_path / "f.mrc", floats, voxel_size_nm=1.0)
    np.testing.assert_array_equal(read_mrc(tmp_path / "f.mrc").data, floats.astype(np.float32))
    mask = _random(np.float32) > 0
    write_mrc(tmp_path / "m.mrc", mask, voxel_size_nm=1.0)
    back = read_labels(tmp_path / "m.mrc")
    assert back.is_labels
    np.testing.assert_array_equal(back.data, mask.astype(np.uint8))


def test_labels_are_mode_0_and_read_back_unsigned(tmp_path: Path) -> None:
    labels = np.zeros((4, 5, 6), dtype=np.int32)
    labels[1:3, 1:4, 2:5] = 5
    labels[0, 0, 0] = 200  # above 127: a signed reader would see -56
    path = tmp_path / "seg.mrc"
    write_mrc(path, labels, voxel_size_nm=VOXEL, origin_nm=ORIGIN, labels=True)
    volume = read_labels(path)
    assert volume.header["mode"] == 0
    assert volume.is_labels
    assert volume.data.dtype == np.uint8
    np.testing.assert_array_equal(volume.data, labels)
    assert any("napari-cryoli labels" in text for text in volume.header["labels"])
    with mrcfile.open(path) as m:  # ids below 128 read the same in a signed reader
        assert m.data[2, 2, 3] == 5


def test_label_ids_outside_0_255_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="0–255"):
        write_mrc(tmp_path / "x.mrc", np.full((2, 2, 2), 300), voxel_size_nm=1.0, labels=True)
    with pytest.raises(InputError, match="integer"):
        write_mrc(tmp_path / "x.mrc", np.zeros((2, 2, 2)), voxel_size_nm=1.0, labels=True)
    assert not (tmp_path / "x.mrc").exists()


def test_read_labels_accepts_16_bit_ids_and_refuses_floats(tmp_path: Path) -> None:
    ids = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    with mrcfile.new(tmp_path / "u16.mrc") as m:  # what mrcfile makes of uint8 labels
        m.set_data(ids)
    volume = read_labels(tmp_path / "u16.mrc")
    assert volume.data.dtype == np.uint8
    np.testing.assert_array_equal(volume.data, ids)
    assert any("read as 8-bit" in w for w in volume.warnings)

    write_mrc(tmp_path / "f.mrc", ids.astype(np.float32), voxel_size_nm=1.0)
    with pytest.raises(FileFormatError, match="not labels"):
        read_labels(tmp_path / "f.mrc")
    with mrcfile.new(tmp_path / "big.mrc") as m:
        m.set_data(np.full((2, 2, 2), 1000, dtype=np.int16))
    with pytest.raises(FileFormatError, match="not label ids"):
        read_labels(tmp_path / "big.mrc")


def test_2d_image_round_trip(tmp_path: Path) -> None:
    image = _random(np.float32, (30, 40))
    write_mrc(tmp_path / "hrtem.mrc", image, voxel_size_nm=(0.012, 0.015), origin_nm=(1.0, 2.0))
    volume = read_mrc(tmp_path / "hrtem.mrc")
    assert volume.kind == "image"
    np.testing.assert_array_equal(volume.data, image)
    assert volume.voxel_size_nm == pytest.approx((0.012, 0.015), rel=1e-6)
    assert volume.origin_nm == pytest.approx((1.0, 2.0), rel=1e-6)


def test_stack_with_tilt_angles_round_trip(tmp_path: Path) -> None:
    stack = _random(np.float32, (5, 8, 9))
    angles = [-60.0, -30.5, 0.0, 29.99, 60.0]
    path = tmp_path / "series.mrc"
    write_mrc(path, stack, voxel_size_nm=(1.0, 0.8, 0.8), kind="stack", tilt_angles_deg=angles)
    volume = read_mrc(path)
    assert volume.kind == "stack"  # a .mrc with space group 0 and per-section tilt angles
    np.testing.assert_allclose(volume.tilt_angles_deg, angles, atol=0.005)
    assert volume.voxel_size_nm == pytest.approx((1.0, 0.8, 0.8), rel=1e-6)
    assert volume.header["exttyp"] == "SERI"
    assert mrcfile.validate(path, print_file=io.StringIO())


def test_single_voxel_size_applies_to_every_axis(tmp_path: Path) -> None:
    write_mrc(tmp_path / "v.mrc", _random(np.float32), voxel_size_nm=0.7)
    assert read_mrc(tmp_path / "v.mrc").voxel_size_nm == pytest.approx((0.7,) * 3, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voxel_size_nm": (1.0, 1.0)}, "voxel size"),
        ({"voxel_size_nm": (1.0, 0.0, 1.0)}, "positive"),
        ({"voxel_size_nm": 1.0, "origin_nm": (0.0, float("nan"), 0.0)}, "finite"),
        ({"voxel_size_nm": 1.0, "kind": "image"}, "3D data as an MRC image"),
        ({"voxel_size_nm": 1.0, "kind": "stack", "tilt_angles_deg": [0.0]}, "tilt angles"),
        ({"voxel_size_nm": 1.0, "extra_labels": ["x"] * 10}, "10 text labels"),
    ],
)
def test_bad_write_requests_raise_input_error(tmp_path: Path, kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        write_mrc(tmp_path / "x.mrc", _random(np.float32), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_extra_labels_are_kept(tmp_path: Path) -> None:
    write_mrc(
        tmp_path / "v.mrc",
        _random(np.float32),
        voxel_size_nm=1.0,
        extra_labels=["predicted by model A", "seed 3"],
    )
    labels = read_mrc(tmp_path / "v.mrc").header["labels"]
    assert labels[1:] == ["predicted by model A", "seed 3"]


@pytest.mark.parametrize("suffix", [".mrc.gz", ".mrc.bz2"])
def test_compressed_write(tmp_path: Path, suffix: str) -> None:
    data = _random(np.int16)
    path = tmp_path / f"v{suffix}"
    write_mrc(path, data, voxel_size_nm=VOXEL, origin_nm=ORIGIN)
    if suffix.endswith("gz"):
        assert gzip.decompress(path.read_bytes())[208:212] == b"MAP "
    volume = read_mrc(path)
    np.testing.assert_array_equal(volume.data, data)
    assert volume.voxel_size_nm == pytest.approx(VOXEL, rel=1e-6)


def test_streamed_write_commits_on_success(tmp_path: Path) -> None:
    path = tmp_path / "prediction.mrc"
    with open_mrc_for_writing(
        path, (6, 7, 8), np.uint8, voxel_size_nm=VOXEL, origin_nm=ORIGIN, labels=True
    ) as out:
        assert isinstance(out, np.memmap) and out.flags.writeable
        assert not path.exists()  # nothing under the final name until the block ends
        out[:] = 2
        out[3:] = 4
    volume = read_labels(path)
    assert volume.is_labels
    assert volume.voxel_size_nm == pytest.approx(VOXEL, rel=1e-6)
    assert volume.origin_nm == pytest.approx(ORIGIN, rel=1e-6)
    assert np.count_nonzero(volume.data == 4) == 3 * 7 * 8
    assert (volume.header["dmin"], volume.header["dmax"]) == (2.0, 4.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prediction.mrc"]


def test_streamed_write_float_statistics(tmp_path: Path) -> None:
    data = _random(np.float32, (4, 5, 6))
    with open_mrc_for_writing(tmp_path / "p.mrc", data.shape, np.float32, voxel_size_nm=1) as out:
        out[:] = data
    assert mrcfile.validate(tmp_path / "p.mrc", print_file=io.StringIO())


def test_streamed_write_on_error_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "prediction.mrc"
    write_mrc(path, np.ones((2, 2, 2), np.uint8), voxel_size_nm=1.0)
    before = path.read_bytes()
    with (
        pytest.raises(RuntimeError, match="boom"),
        open_mrc_for_writing(path, (6, 7, 8), np.uint8, voxel_size_nm=1.0) as out,
    ):
        out[:3] = 9
        raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prediction.mrc"]


def test_streamed_write_discarded_quietly(tmp_path: Path) -> None:
    path = tmp_path / "prediction.mrc"
    with open_mrc_for_writing(path, (6, 7, 8), np.float32, voxel_size_nm=1.0) as out:
        out[:] = 1.0
        raise DiscardWrite
    assert list(tmp_path.iterdir()) == []


def test_streamed_write_refuses_unsupported_requests(tmp_path: Path) -> None:
    with (
        pytest.raises(InputError, match="float64"),
        open_mrc_for_writing(tmp_path / "p.mrc", (2, 2, 2), np.float64, voxel_size_nm=1),
    ):
        pass
    with (
        pytest.raises(InputError, match="compressed"),
        open_mrc_for_writing(tmp_path / "p.mrc.gz", (2, 2, 2), np.uint8, voxel_size_nm=1),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_overwriting_the_file_being_read(tmp_path: Path) -> None:
    """Saving over the file a layer is mapped from: the rename leaves the old mapping intact."""
    path = tmp_path / "seg.mrc"
    write_mrc(path, np.full((4, 5, 6), 2, np.uint8), voxel_size_nm=VOXEL)
    mapped = read_labels(path)
    assert isinstance(mapped.data, np.memmap)
    write_mrc(path, mapped.data + 1, voxel_size_nm=mapped.voxel_size_nm, labels=True)
    assert int(mapped.data.max()) == 2  # the old mapping still reads the old inode
    assert int(read_labels(path).data.max()) == 3
