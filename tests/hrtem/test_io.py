"""Reading micrographs: real DM3/DM4 files (RosettaSciIO's test data), TIFF and MRC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_cryoli.errors import FileFormatError, InputError
from napari_cryoli.hrtem.io import is_micrograph_path, read_micrograph
from napari_cryoli.io import write_mrc

DATA = Path(__file__).parent / "data"


def test_dm3_with_calibration():
    m = read_micrograph(DATA / "stem_image.dm3")
    assert m.data.shape == (68, 68) and m.data.dtype == np.float32
    assert m.pixel_size_A == pytest.approx(2.4854, rel=1e-4)
    assert m.data.std() > 0


def test_dm4_without_calibration_needs_a_pixel_size():
    m = read_micrograph(DATA / "test-1.dm4")
    assert m.data.shape == (2, 2) and m.pixel_size_A is None
    with pytest.raises(InputError, match="carries no pixel size"):
        m.with_pixel_size(None)
    assert m.with_pixel_size(0.41).pixel_size_A == 0.41


def test_damaged_dm_file(tmp_path):
    bad = tmp_path / "cut.dm3"
    bad.write_bytes((DATA / "stem_image.dm3").read_bytes()[:300])
    with pytest.raises(FileFormatError, match="cut.dm3"):
        read_micrograph(bad)


def test_tiff_imagej_units_and_plain(tmp_path):
    image = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64)
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, image, imagej=True, resolution=(1 / 0.041, 1 / 0.041),
                     metadata={"unit": "nm"})
    m = read_micrograph(path)
    assert m.pixel_size_A == pytest.approx(0.41, rel=1e-5)
    np.testing.assert_array_equal(m.data, image)
    plain = tmp_path / "b.tiff"
    tifffile.imwrite(plain, image.astype(np.float32))
    assert read_micrograph(plain).pixel_size_A is None
    rgb = tmp_path / "c.tif"
    tifffile.imwrite(rgb, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FileFormatError, match="colour"):
        read_micrograph(rgb)


def test_mrc_image_and_refusals(tmp_path):
    write_mrc(tmp_path / "m.mrc", np.ones((40, 30), np.float32), voxel_size_nm=(0.041, 0.041))
    m = read_micrograph(tmp_path / "m.mrc")
    assert m.data.shape == (40, 30) and m.pixel_size_A == pytest.approx(0.41, rel=1e-5)
    write_mrc(tmp_path / "v.mrc", np.ones((3, 8, 8), np.float32), voxel_size_nm=(1, 1, 1))
    with pytest.raises(FileFormatError, match="not one 2D micrograph|3 sections"):
        read_micrograph(tmp_path / "v.mrc")
    with pytest.raises(FileFormatError, match="does not exist"):
        read_micrograph(tmp_path / "none.dm4")
    assert is_micrograph_path("X.DM4") and is_micrograph_path("a.tiff")
    assert not is_micrograph_path("a.mrc")
