"""Angle files and tilt series: good files, wrong counts, non-numbers, where angles come from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cryoli.errors import FileFormatError
from napari_cryoli.io import (
    TiltSeries,
    find_angle_file,
    read_angles,
    read_tilt_series,
    write_angles,
    write_mrc,
    write_tilt_series,
)

ANGLES = [-60.0, -30.0, 0.0, 30.0, 60.0]


def _stack(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 6, 7)).astype(np.float32)


def test_read_good_file_with_blank_lines_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "a.tlt"
    path.write_text("# from SerialEM\n -60.00\n-30\n\n  0.0  \n30 # mid\n60.0\n")
    np.testing.assert_array_equal(read_angles(path), ANGLES)
    np.testing.assert_array_equal(read_angles(path, n_expected=5), ANGLES)


def test_write_and_read_back(tmp_path: Path) -> None:
    angles = np.array([-59.987, -1.5, 0.001, 44.25])
    write_angles(tmp_path / "b.rawtlt", angles)
    np.testing.assert_allclose(read_angles(tmp_path / "b.rawtlt"), angles, atol=5e-4)


def test_wrong_count(tmp_path: Path) -> None:
    path = tmp_path / "a.tlt"
    write_angles(path, ANGLES)
    with pytest.raises(FileFormatError, match="a.tlt holds 5 angles but the tilt series has 41"):
        read_angles(path, n_expected=41)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-60\nabc\n0\n", "line 2 of a.tlt is 'abc', not a number"),
        ("-60\n1,5\n", "line 2 of a.tlt is '1,5', not a number"),
        ("-60\n-30 -29\n", "line 2 of a.tlt holds 2 values"),
        ("-60\nnan\n", "line 2 of a.tlt holds nan, not a tilt angle"),
        ("0\n95\n", "line 2 of a.tlt holds 95, not a tilt angle within ±90°"),
        ("\n# nothing\n\n", "a.tlt holds no angles"),
        ("", "a.tlt holds no angles"),
    ],
)
def test_bad_angle_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "a.tlt"
    path.write_text(text)
    with pytest.raises(FileFormatError, match=message):
        read_angles(path)


def test_binary_and_missing_angle_files(tmp_path: Path) -> None:
    (tmp_path / "bin.tlt").write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(FileFormatError, match="not a text file"):
        read_angles(tmp_path / "bin.tlt")
    with pytest.raises(FileFormatError, match="does not exist"):
        read_angles(tmp_path / "none.tlt")


def test_find_angle_file_prefers_tlt(tmp_path: Path) -> None:
    series = tmp_path / "TS_01.st"
    assert find_angle_file(series) is None
    (tmp_path / "TS_01.rawtlt").write_text("0\n")
    assert find_angle_file(series) == tmp_path / "TS_01.rawtlt"
    (tmp_path / "TS_01.tlt").write_text("0\n")
    assert find_angle_file(series) == tmp_path / "TS_01.tlt"
    assert find_angle_file(tmp_path / "TS_01.mrc.gz") == tmp_path / "TS_01.tlt"


def test_tilt_series_round_trip_with_angles_in_the_header(tmp_path: Path) -> None:
    series = TiltSeries(_stack(), np.array(ANGLES), 0.85)
    write_tilt_series(tmp_path / "ts.mrc", series)
    back = read_tilt_series(tmp_path / "ts.mrc")
    np.testing.assert_array_equal(back.data, series.data)
    np.testing.assert_allclose(back.angles_deg, ANGLES)
    assert back.pixel_size_nm == pytest.approx(0.85, rel=1e-6)
    assert not back.angles_deg.flags.writeable


def test_explicit_angle_file_wins_and_disagreement_is_reported(tmp_path: Path) -> None:
    write_tilt_series(tmp_path / "ts.mrc", TiltSeries(_stack(), np.array(ANGLES), 1.0))
    refined = np.array(ANGLES) + 0.7
    write_angles(tmp_path / "refined.tlt", refined)
    back = read_tilt_series(tmp_path / "ts.mrc", tmp_path / "refined.tlt")
    np.testing.assert_allclose(back.angles_deg, refined, atol=1e-3)
    assert any(
        "differs from the angles in ts.mrc's header by up to 0.70°" in w for w in back.warnings
    )


def test_angles_from_a_file_beside_the_stack(tmp_path: Path) -> None:
    write_mrc(tmp_path / "TS_7.st", _stack(), voxel_size_nm=(1, 2, 2), kind="stack")
    write_angles(tmp_path / "TS_7.rawtlt", ANGLES)
    back = read_tilt_series(tmp_path / "TS_7.st")
    np.testing.assert_allclose(back.angles_deg, ANGLES)
    assert back.pixel_size_nm == pytest.approx(2.0)
    assert any("read from TS_7.rawtlt" in w for w in back.warnings)


def test_no_angles_anywhere(tmp_path: Path) -> None:
    write_mrc(tmp_path / "TS_8.st", _stack(), voxel_size_nm=(1, 2, 2), kind="stack")
    with pytest.raises(FileFormatError, match="TS_8.st carries no tilt angles"):
        read_tilt_series(tmp_path / "TS_8.st")


def test_wrong_number_of_angles_for_the_stack(tmp_path: Path) -> None:
    write_mrc(tmp_path / "ts.st", _stack(5), voxel_size_nm=(1, 2, 2), kind="stack")
    write_angles(tmp_path / "ts.tlt", ANGLES[:4])
    with pytest.raises(FileFormatError, match="holds 4 angles but the tilt series has 5"):
        read_tilt_series(tmp_path / "ts.st", tmp_path / "ts.tlt")


def test_a_single_image_is_not_a_tilt_series(tmp_path: Path) -> None:
    write_mrc(tmp_path / "img.mrc", np.zeros((6, 7), np.float32), voxel_size_nm=1.0)
    with pytest.raises(FileFormatError, match="single image"):
        read_tilt_series(tmp_path / "img.mrc", tmp_path / "a.tlt")


def test_tilt_series_checks_its_shape() -> None:
    with pytest.raises(ValueError, match="4 angles do not fit"):
        TiltSeries(_stack(5), np.zeros(4), 1.0)
