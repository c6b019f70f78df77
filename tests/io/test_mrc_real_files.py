"""Every MRC file in tests/data opens as its README says (shape, dtype, orientation, voxel size)."""

from __future__ import annotations

import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryoli.errors import FileFormatError
from napari_cryoli.io import read_angles, read_mrc, read_tilt_series


def _stored_array(path: Path) -> np.ndarray:
    """The stored (section, row, column) array as mrcfile gives it, ignoring the axis order."""
    with mrcfile.open(path) as m:
        return np.array(m.data)


@pytest.mark.parametrize("name", ["EMD-3197.map", "emd_3197.map.gz", "EMD-3197.map.bz2"])
def test_emd_3197_variants(shared_data: Path, name: str) -> None:
    volume = read_mrc(shared_data / "mrcfile" / name)
    reference = read_mrc(shared_data / "mrcfile" / "EMD-3197.map")
    assert volume.kind == "volume"
    assert volume.data.shape == (20, 20, 20)
    assert volume.data.dtype == np.float32
    assert volume.voxel_size_nm == pytest.approx((1.14, 1.14, 1.14))
    np.testing.assert_array_equal(volume.data, reference.data)
    assert volume.origin_nm == pytest.approx(reference.origin_nm)
    assert volume.warnings == ()


def test_emd_3197_big_endian(shared_data: Path) -> None:
    volume = read_mrc(shared_data / "derived" / "EMD-3197_bigendian_byteswapped.mrc")
    reference = read_mrc(shared_data / "mrcfile" / "EMD-3197.map")
    assert volume.header["byte_order"] == "big"
    assert volume.data.dtype == np.float32 and volume.data.dtype.isnative
    np.testing.assert_array_equal(volume.data, reference.data)
    assert volume.voxel_size_nm == pytest.approx(reference.voxel_size_nm)
    assert volume.origin_nm == pytest.approx(reference.origin_nm)


def test_emd_3197_origin_from_start_indices(shared_data: Path) -> None:
    # The header origin is 0, nxstart is -2: the first column sits 2 voxels before 0 along x.
    volume = read_mrc(shared_data / "mrcfile" / "EMD-3197.map")
    assert volume.origin_nm == pytest.approx((0.0, 0.0, -2 * 1.14))


@pytest.mark.parametrize("name", ["EMD-3001.map", "emd_3001.map.gz"])
def test_emd_3001_axis_order(shared_data: Path, name: str) -> None:
    # mapc, mapr, maps = 3, 1, 2: columns run along z, rows along x, sections along y.
    volume = read_mrc(shared_data / "mrcfile" / name)
    stored = _stored_array(shared_data / "mrcfile" / "EMD-3001.map")  # (sections, rows, cols)
    n_sections, n_rows, n_cols = stored.shape
    assert volume.data.shape == (n_cols, n_sections, n_rows) == (73, 25, 43)
    assert volume.data.dtype == np.float32
    rng = np.random.default_rng(0)
    for z, y, x in zip(rng.integers(0, 73, 50), rng.integers(0, 25, 50), rng.integers(0, 43, 50)):
        assert volume.data[z, y, x] == stored[y, x, z]
    # Voxel sizes follow the real axes: x 0.4482, y 0.3925, z 0.4587 Å.
    assert volume.voxel_size_nm == pytest.approx((0.04587, 0.03925, 0.04482), abs=1e-5)
    # Start (column, row, section) = (0, -21, -12): z starts at 0, x at -21, y at -12 voxels.
    assert volume.origin_nm == pytest.approx((0.0, -12 * 0.03925, -21 * 0.044825), abs=1e-5)


def test_haadf_fei_tilt_series(shared_data: Path) -> None:
    path = shared_data / "etspy" / "HAADF_every4th.mrc"
    volume = read_mrc(path)
    assert volume.kind == "stack"
    assert volume.data.shape == (20, 256, 256)
    assert volume.data.dtype == np.int16
    # The main header says 1 Å; the FEI extended header holds the true 3.36 nm.
    assert volume.voxel_size_nm[1:] == pytest.approx((3.36, 3.36), rel=1e-6)
    rawtlt = read_angles(path.with_suffix(".rawtlt"))
    np.testing.assert_allclose(volume.tilt_angles_deg, rawtlt)
    warnings = " ".join(volume.warnings)
    assert "old program" in warnings and "extended header" in warnings
    assert volume.header["extended_header"] == "FEI (old)"

    series = read_tilt_series(path)
    assert series.pixel_size_nm == pytest.approx(3.36, rel=1e-6)
    np.testing.assert_allclose(series.angles_deg, rawtlt)
    assert series.data.shape == (20, 256, 256)


def test_imod_unsigned_bytes_match_tiff_twin(shared_data: Path) -> None:
    from PIL import Image, ImageSequence  # the twin is LZW-compressed, which Pillow decodes

    volume = read_mrc(shared_data / "tardis" / "data_type__mrc3D.mrc")
    with Image.open(shared_data / "tardis" / "data_type__tif3D.tif") as tif:
        twin = np.stack([np.array(page) for page in ImageSequence.Iterator(tif)])
    assert volume.kind == "volume"
    assert volume.data.shape == (78, 64, 32) == twin.shape
    assert volume.data.dtype == np.uint8
    np.testing.assert_array_equal(volume.data, twin)
    assert (int(volume.data.min()), int(volume.data.max())) == (141, 163)
    assert volume.voxel_size_nm == pytest.approx((2.32, 2.32, 2.32), rel=1e-5)
    assert volume.header["mode0_signed"] is False
    assert any("old program" in w for w in volume.warnings)


def test_imod_2d_image_with_infinite_z(shared_data: Path) -> None:
    volume = read_mrc(shared_data / "tardis" / "data_type__mrc2D.mrc")
    assert volume.kind == "image"
    assert volume.data.shape == (64, 32)
    assert volume.data.dtype == np.uint8
    assert volume.voxel_size_nm == pytest.approx((2.32, 2.32), rel=1e-5)
    assert volume.origin_nm == (0.0, 0.0)
    assert not any("voxel size" in w for w in volume.warnings)  # the infinite z is irrelevant
    assert volume.header["cella"][2] == "inf"
    json.dumps(volume.header, allow_nan=False)


def test_relion_space_group_0_is_a_volume(shared_data: Path) -> None:
    volume = read_mrc(shared_data / "chlamyannotations" / "atpase.mrc")
    assert volume.header["ispg"] == 0
    assert volume.kind == "volume"
    assert volume.data.shape == (64, 64, 64)
    assert volume.data.dtype == np.float32
    assert volume.voxel_size_nm == pytest.approx((0.784, 0.784, 0.784))


def test_header_only_file_is_a_clear_error(shared_data: Path) -> None:
    with pytest.raises(FileFormatError, match="HAADF_header_only.mrc is truncated"):
        read_mrc(shared_data / "derived" / "HAADF_header_only.mrc")


def test_uncompressed_files_are_read_only_memmaps(shared_data: Path) -> None:
    paths = [p for p in shared_data.rglob("*") if p.suffix in (".mrc", ".map")]
    paths = [p for p in paths if "header_only" not in p.name and "bigendian" not in p.name]
    assert len(paths) >= 6
    for path in paths:
        volume = read_mrc(path)
        assert isinstance(volume.data, np.memmap), path.name
        assert not volume.data.flags.writeable, path.name
        json.dumps(volume.header, allow_nan=False)


def test_angle_files_from_etomo(shared_data: Path) -> None:
    tlt = read_angles(shared_data / "etomofiles" / "TS_001.tlt")
    rawtlt = read_angles(shared_data / "etomofiles" / "TS_001.rawtlt")
    assert tlt.shape == rawtlt.shape == (40,)
    assert rawtlt[0] == pytest.approx(-60.0)
    assert np.all(np.abs(tlt - rawtlt) < 5)  # aligned angles stay close to the raw ones
