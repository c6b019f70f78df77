"""The reader's general rules, each proved on synthetic files built to exercise it."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest
from mrcfile.dtypes import get_ext_header_dtype

from napari_cryoli.io import read_mrc

# --- axis order ----------------------------------------------------------------------------------


@pytest.mark.parametrize("axis_map", list(itertools.permutations((1, 2, 3))))
def test_axis_order_is_undone(write_mrc_bytes, axis_map) -> None:
    """Data stored with any (mapc, mapr, maps) reads back as (z, y, x), geometry following."""
    mapc, mapr, maps = axis_map
    truth = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # (z, y, x)
    spacing = {1: 3.0, 2: 5.0, 3: 7.0}  # Å along x, y, z
    start = {1: -2, 2: 4, 3: 9}  # first index along x, y, z
    size = {1: 6, 2: 5, 3: 4}
    # A real axis a (1=x, 2=y, 3=z) is dimension 3 - a of the (z, y, x) truth.
    stored = truth.transpose(3 - maps, 3 - mapr, 3 - mapc)
    path = write_mrc_bytes(
        "map.mrc",
        stored,
        mapc=mapc,
        mapr=mapr,
        maps=maps,
        mx=size[1],
        my=size[2],
        mz=size[3],
        cella=(spacing[1] * size[1], spacing[2] * size[2], spacing[3] * size[3]),
        nxstart=start[mapc],
        nystart=start[mapr],
        nzstart=start[maps],
    )
    volume = read_mrc(path)
    np.testing.assert_array_equal(volume.data, truth)
    assert volume.voxel_size_nm == pytest.approx((0.7, 0.5, 0.3))
    assert volume.origin_nm == pytest.approx((9 * 0.7, 4 * 0.5, -2 * 0.3))


def test_invalid_axis_map_reads_as_standard(write_mrc_bytes) -> None:
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    volume = read_mrc(write_mrc_bytes("m.mrc", data, mapc=0, mapr=0, maps=0))
    np.testing.assert_array_equal(volume.data, data)
    assert any("axis order" in w for w in volume.warnings)


# --- mode 0 signedness ---------------------------------------------------------------------------

BYTES = np.array([[[0, 5, 100, 127]]] * 2, dtype=np.uint8)
HIGH_BYTES = np.array([[[0, 141, 200, 255]]] * 2, dtype=np.uint8)


@pytest.mark.parametrize(
    ("options", "dtype", "why"),
    [
        ({"imod": (1146047817, 1)}, np.int8, "IMOD flags say signed"),
        ({"imod": (1146047817, 0)}, np.uint8, "IMOD flags say unsigned"),
        ({"dmin": -5.0, "dmax": 100.0}, np.int8, "below 0"),
        ({"dmin": 10.0, "dmax": 200.0}, np.uint8, "above 127"),
        ({"dmin": 0.0, "dmax": 100.0}, np.uint8, "no evidence"),
        ({}, np.uint8, "no evidence"),  # statistics undetermined
        ({"dmin": -5.0, "dmax": 100.0, "labels": ("napari-cryoli labels",)}, np.uint8, "labels"),
    ],
)
def test_mode0_signedness_rule(write_mrc_bytes, options, dtype, why) -> None:
    volume = read_mrc(write_mrc_bytes("b.mrc", HIGH_BYTES, **options))
    assert volume.data.dtype == dtype
    assert why in volume.header["mode0_signed_reason"]
    np.testing.assert_array_equal(volume.data.view(np.uint8), HIGH_BYTES)  # same bytes either way


def test_imod_stamp_beats_header_range(write_mrc_bytes) -> None:
    volume = read_mrc(write_mrc_bytes("b.mrc", BYTES, dmin=-100.0, dmax=5.0, imod=(1146047817, 0)))
    assert volume.data.dtype == np.uint8


# --- extended headers: FEI, FEI1, SerialEM -------------------------------------------------------


def _old_fei(angles, pixel_m, n_records=1024, byte_order="<") -> bytes:
    records = np.zeros((n_records, 32), dtype=f"{byte_order}f4")
    records[: len(angles), 0] = angles
    records[: len(angles), 11] = pixel_m
    records[: len(angles), 13] = 300e3
    return records.tobytes()


ANGLES = [-45.0, -15.0, 15.0, 45.0]


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_old_fei_header_gives_pixel_size_and_angles(write_mrc_bytes, byte_order) -> None:
    data = np.zeros((4, 8, 8), np.int16)
    ext = _old_fei(ANGLES, 2.5e-9, byte_order=byte_order)
    path = write_mrc_bytes(
        "fei.mrc", data, byte_order=byte_order, ext=ext, ispg=0, spacing_xyz=(1.0, 1.0, 1.0)
    )
    volume = read_mrc(path)
    assert volume.kind == "stack"  # space group 0 with per-section tilt angles
    assert volume.tilt_angles_deg == pytest.approx(ANGLES)
    assert volume.voxel_size_nm == pytest.approx((1.0, 2.5, 2.5))
    assert any("2.5 nm taken from the FEI (old) extended header" in w for w in volume.warnings)


def test_old_fei_pixel_size_does_not_override_a_real_header_size(write_mrc_bytes) -> None:
    data = np.zeros((4, 8, 8), np.int16)
    path = write_mrc_bytes(
        "fei.mrc", data, ext=_old_fei(ANGLES, 2.5e-9), ispg=0, spacing_xyz=(20.0, 20.0, 20.0)
    )
    assert read_mrc(path).voxel_size_nm == pytest.approx((1.0, 2.0, 2.0))


def test_partial_fei_header_is_ignored_with_a_warning(write_mrc_bytes) -> None:
    data = np.zeros((4, 8, 8), np.int16)
    path = write_mrc_bytes(
        "fei.mrc", data, ext=_old_fei(ANGLES[:2], 2.5e-9), ispg=0, spacing_xyz=(1.0, 1.0, 1.0)
    )
    volume = read_mrc(path)
    assert volume.kind == "volume" and volume.tilt_angles_deg is None
    assert volume.voxel_size_nm == pytest.approx((0.1, 0.1, 0.1))
    assert any("describes only 2 of 4 sections" in w for w in volume.warnings)


def test_garbage_extended_header_is_not_taken_for_fei(write_mrc_bytes) -> None:
    rng = np.random.default_rng(0)
    ext = rng.integers(0, 256, 1024, dtype=np.uint8).tobytes()
    volume = read_mrc(write_mrc_bytes("g.mrc", np.zeros((4, 8, 8), np.float32), ext=ext, ispg=0))
    assert volume.kind == "volume" and volume.tilt_angles_deg is None
    assert volume.voxel_size_nm == pytest.approx((1.0, 1.0, 1.0))


def test_fei1_extended_header(write_mrc_bytes) -> None:
    dtype = get_ext_header_dtype(b"FEI1", "<")
    records = np.zeros(4, dtype=dtype)
    records["Metadata size"] = dtype.itemsize
    records["Alpha tilt"] = ANGLES
    records["Pixel size X"] = 1.7e-9
    path = write_mrc_bytes(
        "fei1.mrc",
        np.zeros((4, 8, 8), np.float32),
        ext=records.tobytes(),
        exttyp=b"FEI1",
        ispg=0,
        cella=(0.0, 0.0, 0.0),
    )
    volume = read_mrc(path)
    assert volume.kind == "stack"
    assert volume.tilt_angles_deg == pytest.approx(ANGLES)
    assert volume.voxel_size_nm == pytest.approx((1.0, 1.7, 1.7))


@pytest.mark.parametrize(
    ("exttyp", "nint", "nreal"), [(b"", 2, 1), (b"SERI", 2, 1), (b"SERI", 4, 1 | 8)]
)
def test_serialem_tilt_angles(write_mrc_bytes, exttyp, nint, nreal) -> None:
    per_section = np.zeros((4, nint // 2), dtype="<i2")
    per_section[:, 0] = np.round(np.array(ANGLES) * 100)
    if nint == 4:
        per_section[:, 1] = 300  # magnification / 100
    path = write_mrc_bytes(
        "se.mrc",
        np.zeros((4, 8, 8), np.float32),
        ext=per_section.tobytes(),
        exttyp=exttyp,
        nint_nreal=(nint, nreal),
        ispg=0,
    )
    volume = read_mrc(path)
    assert volume.kind == "stack"
    assert volume.tilt_angles_deg == pytest.approx(ANGLES)


# --- what kind of data ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["series.st", "particles.mrcs", "aligned.ali", "series.st.gz"])
def test_stack_by_suffix(tmp_path: Path, make_mrc_bytes, name: str) -> None:
    raw = make_mrc_bytes(np.zeros((3, 4, 5), np.float32), ispg=0, spacing_xyz=(6.0, 6.0, 6.0))
    (tmp_path / name).write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    volume = read_mrc(tmp_path / name)
    assert volume.kind == "stack"
    assert volume.tilt_angles_deg is None
    assert volume.voxel_size_nm == pytest.approx((1.0, 0.6, 0.6))  # sections are not spatial


@pytest.mark.parametrize("suffix", [".mrc", ".map", ".rec"])
def test_space_group_0_without_angles_is_a_volume(write_mrc_bytes, suffix: str) -> None:
    volume = read_mrc(write_mrc_bytes(f"v{suffix}", np.zeros((3, 4, 5), np.float32), ispg=0))
    assert volume.kind == "volume"


def test_single_section_is_a_2d_image(write_mrc_bytes) -> None:
    volume = read_mrc(write_mrc_bytes("i.mrc", np.ones((1, 4, 5), np.float32), nzstart=3))
    assert volume.kind == "image"
    assert volume.data.shape == (4, 5)
    assert len(volume.voxel_size_nm) == len(volume.origin_nm) == 2


# --- origin --------------------------------------------------------------------------------------


def test_origin_field_wins_over_start_indices(write_mrc_bytes) -> None:
    path = write_mrc_bytes("o.mrc", origin=(10.0, 20.0, 30.0), nxstart=5, nystart=5, nzstart=5)
    assert read_mrc(path).origin_nm == pytest.approx((3.0, 2.0, 1.0))


def test_old_header_origin_bytes_are_not_trusted(write_mrc_bytes) -> None:
    # Without the 'MAP ' id, bytes 196-208 belonged to other fields: use the start indices.
    path = write_mrc_bytes("o.mrc", map=b"\0\0\0\0", origin=(10.0, 20.0, 30.0), nxstart=2)
    volume = read_mrc(path)
    assert volume.origin_nm == pytest.approx((0.0, 0.0, 2.0))
    assert any("old program" in w for w in volume.warnings)


def test_non_finite_origin_falls_back_to_start_indices(write_mrc_bytes) -> None:
    path = write_mrc_bytes("o.mrc", origin=(np.nan, 1.0, 1.0), nystart=3)
    volume = read_mrc(path)
    assert volume.origin_nm == pytest.approx((0.0, 3.0, 0.0))
    assert any("origin is not a finite number" in w for w in volume.warnings)


# --- voxel size ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{"cella": (0.0, 0.0, 0.0)}, {"mx": 0, "my": 0, "mz": 0}, {"cella": (np.nan, -4.0, np.inf)}],
    ids=["zero cell", "zero grid", "nan/negative/inf cell"],
)
def test_missing_voxel_size_assumes_1_nm(write_mrc_bytes, fields) -> None:
    volume = read_mrc(write_mrc_bytes("v.mrc", **fields))
    assert volume.voxel_size_nm == (1.0, 1.0, 1.0)
    assert sum("assuming 1 nm" in w for w in volume.warnings) == 3


def test_one_angstrom_placeholder_is_flagged(write_mrc_bytes) -> None:
    volume = read_mrc(write_mrc_bytes("v.mrc", spacing_xyz=(1.0, 1.0, 1.0)))
    assert volume.voxel_size_nm == pytest.approx((0.1, 0.1, 0.1))
    assert any("exactly 1 Å" in w for w in volume.warnings)


# --- byte order and old writers ------------------------------------------------------------------


def test_big_endian_with_stamp(write_mrc_bytes) -> None:
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    volume = read_mrc(write_mrc_bytes("be.mrc", data, byte_order=">"))
    np.testing.assert_array_equal(volume.data, data)
    assert volume.data.dtype.isnative
    assert volume.header["byte_order"] == "big"


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_byte_order_guessed_without_stamp(write_mrc_bytes, byte_order: str) -> None:
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    path = write_mrc_bytes(
        "old.mrc", data, byte_order=byte_order, machst=(0, 0, 0, 0), map=b"\0\0\0\0"
    )
    volume = read_mrc(path)
    np.testing.assert_array_equal(volume.data, data)
    assert any("no 'MAP ' id, no machine stamp" in w for w in volume.warnings)


def test_trailing_bytes_are_ignored(write_mrc_bytes) -> None:
    data = np.ones((2, 3, 4), np.float32)
    volume = read_mrc(write_mrc_bytes("t.mrc", data, payload=data.tobytes() + b"\0" * 100))
    np.testing.assert_array_equal(volume.data, data)


# --- unusual but legal modes ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.float16, np.int16])
def test_unusual_modes_open(write_mrc_bytes, dtype) -> None:
    data = np.arange(24).reshape(2, 3, 4).astype(dtype)
    options = {"imod": (1146047817, 1)} if dtype == np.int8 else {}
    volume = read_mrc(write_mrc_bytes("u.mrc", data, **options))
    assert volume.data.dtype == dtype
    np.testing.assert_array_equal(volume.data, data)


def test_complex_float_shows_magnitude(write_mrc_bytes) -> None:
    data = (np.arange(24) + 1j * np.arange(24)[::-1]).reshape(2, 3, 4).astype(np.complex64)
    volume = read_mrc(write_mrc_bytes("c.mrc", data))
    assert volume.data.dtype == np.float32
    np.testing.assert_allclose(volume.data, np.abs(data), rtol=1e-6)
    assert any("magnitude" in w for w in volume.warnings)


def test_complex_int16_shows_magnitude(write_mrc_bytes) -> None:
    pairs = np.array([[[[3, 4], [6, -8], [0, 1]]]], dtype="<i2")  # (1, 1, 3) voxels
    path = write_mrc_bytes(
        "c3.mrc", np.zeros((1, 1, 3), np.float32), mode=3, payload=pairs.tobytes()
    )
    volume = read_mrc(path)
    np.testing.assert_allclose(volume.data, [[5.0, 10.0, 1.0]])


# --- NaN/Inf, memory mapping ---------------------------------------------------------------------


def test_nan_and_inf_voxels_are_reported(write_mrc_bytes) -> None:
    data = np.zeros((3, 4, 5), np.float32)
    data[1, 2, 3], data[2, 0, 0] = np.nan, np.inf
    volume = read_mrc(write_mrc_bytes("n.mrc", data))
    assert any(w.startswith("2 NaN or infinite voxels") for w in volume.warnings)


def test_large_files_are_checked_for_nan_by_sampling(write_mrc_bytes, monkeypatch) -> None:
    from napari_cryoli.io import mrc

    monkeypatch.setattr(mrc, "FULL_SCAN_BYTES", 0)
    data = np.zeros((40, 30, 20), np.float32)
    data[0] = np.nan  # the first section is always sampled
    volume = read_mrc(write_mrc_bytes("n.mrc", data))
    assert any("in a sample of the file" in w for w in volume.warnings)


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_sampled_rows_agree_between_file_and_memory(write_mrc_bytes, monkeypatch, byte_order):
    from napari_cryoli.io import mrc

    monkeypatch.setattr(mrc, "FULL_SCAN_BYTES", 0)
    data = np.zeros((40, 30, 20), np.float32)
    data[-1, -1, 5:8] = np.inf  # last row of the last section: always sampled
    data[20, 15, :] = np.nan  # between sampled rows: a sample can miss it
    path = write_mrc_bytes("n.mrc", data, byte_order=byte_order)
    mapped, in_memory = read_mrc(path), read_mrc(path, mmap=False)
    for volume in (mapped, in_memory):
        nan_warnings = [w for w in volume.warnings if "NaN" in w]
        assert len(nan_warnings) == 1
        assert nan_warnings[0].startswith("3 NaN or infinite voxels (in a sample of the file)")


def test_mmap_false_reads_into_memory(write_mrc_bytes) -> None:
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    volume = read_mrc(write_mrc_bytes("m.mrc", data), mmap=False)
    assert not isinstance(volume.data, np.memmap)
    np.testing.assert_array_equal(volume.data, data)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_large_file_opens_without_reading_it(tmp_path: Path, make_mrc_bytes) -> None:
    """A 512 MiB tomogram (sparse on disk) opens mapped: resident memory barely moves."""
    shape = (128, 1024, 1024)
    path = tmp_path / "big.mrc"
    header = make_mrc_bytes(
        np.zeros((1, 1, 1), np.float32),
        nx=shape[2],
        ny=shape[1],
        nz=shape[0],
        mx=shape[2],
        my=shape[1],
        mz=shape[0],
        cella=(shape[2] * 8.0, shape[1] * 8.0, shape[0] * 8.0),
        payload=b"",
    )
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + int(np.prod(shape)) * 4)
    before = _rss_bytes()
    volume = read_mrc(path)
    grown = _rss_bytes() - before
    assert isinstance(volume.data, np.memmap) and volume.data.shape == shape
    assert grown < 64 * 2**20, f"resident memory grew by {grown / 2**20:.0f} MiB"
    assert float(volume.data[64, 512, 512]) == 0.0
