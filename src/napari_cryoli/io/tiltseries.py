"""Tilt series: a stack of projections (n, y, x) with a tilt angle per image; tilt axis along y."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .angles import find_angle_file, read_angles
from .mrc import read_mrc, write_mrc

#: Angles from two sources that differ by more than this are reported.
ANGLE_TOLERANCE_DEG = 0.05


@dataclass(frozen=True, eq=False)
class TiltSeries:
    """Projections (n, y, x), their tilt angles in degrees, and the pixel size in nm."""

    data: np.ndarray
    angles_deg: np.ndarray
    pixel_size_nm: float
    path: Path | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.data.ndim != 3 or self.angles_deg.shape != (self.data.shape[0],):
            raise ValueError(
                f"{self.angles_deg.size} angles do not fit projections of shape {self.data.shape}"
            )


def read_tilt_series(
    path: str | os.PathLike, angles_path: str | os.PathLike | None = None
) -> TiltSeries:
    """Read a tilt series and its angles.

    Angles come from ``angles_path`` when given, else from the file's extended header (FEI or
    SerialEM), else from an angle file beside it (``.tlt``, then ``.rawtlt``).
    """
    volume = read_mrc(path)
    name = volume.path.name
    if volume.kind == "image":
        raise FileFormatError(f"{name} is a single image, not a tilt series")
    n = volume.data.shape[0]
    warnings = list(volume.warnings)
    header_angles = volume.tilt_angles_deg
    if angles_path is None and header_angles is None:
        angles_path = find_angle_file(volume.path)
        if angles_path is None:
            raise FileFormatError(
                f"{name} carries no tilt angles and no .tlt or .rawtlt file lies beside it; "
                "give an angle file"
            )
        warnings.append(f"tilt angles read from {Path(angles_path).name}")
    if angles_path is not None:
        angles = read_angles(angles_path, n_expected=n)
        if header_angles is not None:
            worst = float(np.max(np.abs(angles - np.asarray(header_angles))))
            if worst > ANGLE_TOLERANCE_DEG:
                warnings.append(
                    f"{Path(angles_path).name} differs from the angles in {name}'s header by up "
                    f"to {worst:.2f}°; using the angle file"
                )
    else:
        angles = np.asarray(header_angles, dtype=np.float64)
    angles.setflags(write=False)
    pixel_y, pixel_x = volume.voxel_size_nm[-2:]
    if abs(pixel_y - pixel_x) > 1e-3 * pixel_x:
        warnings.append(
            f"pixels are not square ({pixel_y:.4g} × {pixel_x:.4g} nm); using {pixel_x:.4g} nm"
        )
    return TiltSeries(volume.data, angles, float(pixel_x), volume.path, tuple(warnings))


def write_tilt_series(path: str | os.PathLike, series: TiltSeries) -> None:
    """Write a tilt series as an MRC image stack with its angles in the extended header.

    IMOD and SerialEM read the angles back; so does :func:`read_tilt_series`.
    """
    write_mrc(
        path,
        series.data,
        voxel_size_nm=(1.0, series.pixel_size_nm, series.pixel_size_nm),
        kind="stack",
        tilt_angles_deg=series.angles_deg,
    )
