"""Tilt-angle files (IMOD .tlt / .rawtlt): one angle in degrees per line."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .atomic import atomic_write_bytes

ANGLE_SUFFIXES = (".tlt", ".rawtlt")
MAX_TILT_DEG = 90.0


def read_angles(path: str | os.PathLike, n_expected: int | None = None) -> np.ndarray:
    """The tilt angles of ``path`` (degrees, file order); blank lines and ``#`` comments skipped.

    Raises ``FileFormatError`` for a missing or empty file, a line that is not one number, an
    angle beyond ±90°, or (with ``n_expected``) a count that does not match the tilt series.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"angle file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileFormatError(f"angle file {path.name} is not a text file") from e
    except OSError as e:
        raise FileFormatError(f"could not read angle file {path}: {e.strerror or e}") from e
    angles = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 1:
            raise FileFormatError(
                f"line {number} of {path.name} holds {len(fields)} values; an angle file has one "
                "angle per line"
            )
        try:
            angle = float(fields[0])
        except ValueError:
            raise FileFormatError(
                f"line {number} of {path.name} is {fields[0]!r}, not a number"
            ) from None
        if not math.isfinite(angle) or abs(angle) > MAX_TILT_DEG:
            raise FileFormatError(
                f"line {number} of {path.name} holds {fields[0]}, not a tilt angle within ±90°"
            )
        angles.append(angle)
    if not angles:
        raise FileFormatError(f"angle file {path.name} holds no angles")
    if n_expected is not None and len(angles) != n_expected:
        raise FileFormatError(
            f"{path.name} holds {len(angles)} angles but the tilt series has {n_expected} images"
        )
    return np.asarray(angles, dtype=np.float64)


def write_angles(path: str | os.PathLike, angles_deg: Sequence[float] | np.ndarray) -> None:
    """Write one angle per line (IMOD style), atomically."""
    angles = np.asarray(angles_deg, dtype=np.float64).ravel()
    text = "".join(f"{a:8.3f}\n" for a in angles)
    atomic_write_bytes(path, text.encode("ascii"))


def find_angle_file(path: str | os.PathLike) -> Path | None:
    """The angle file beside a tilt series (``TS_001.st`` -> ``TS_001.tlt``, else ``.rawtlt``)."""
    path = Path(path)
    stem = path.name
    for suffix in (".gz", ".bz2"):
        stem = stem.removesuffix(suffix)
    stem = Path(stem).stem
    for suffix in ANGLE_SUFFIXES:
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None
