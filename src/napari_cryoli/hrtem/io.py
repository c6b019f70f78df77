"""Reading micrographs with their pixel size in Å: MRC (the project's reader), TIFF (tifffile)
and Gatan DM3/DM4 (rosettasciio).

A pixel size the file does not carry must be given; it is never guessed, because every spacing
scales with it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError

TIFF_SUFFIXES = (".tif", ".tiff")
DM_SUFFIXES = (".dm3", ".dm4")

#: Length units as files spell them, in Å.
_UNITS_A = {
    "a": 1.0, "å": 1.0, "\u212b": 1.0, "angstrom": 1.0, "ångström": 1.0,
    "nm": 10.0, "nanometer": 10.0, "nanometre": 10.0,
    "pm": 0.01, "um": 1e4, "µm": 1e4, "\u03bcm": 1e4, "micron": 1e4, "microns": 1e4,
    "mm": 1e7, "cm": 1e8, "m": 1e10,
}


@dataclass(frozen=True, eq=False)
class Micrograph:
    """A 2D micrograph and its pixel size (Å) when known."""

    data: np.ndarray
    pixel_size_A: float | None
    path: Path | None = None
    notes: tuple[str, ...] = ()

    @property
    def pixel_size_nm(self) -> float | None:
        return None if self.pixel_size_A is None else self.pixel_size_A / 10.0

    def with_pixel_size(self, pixel_size_A: float | None) -> Micrograph:
        """The micrograph with ``pixel_size_A`` if given, else its own; an InputError if none."""
        px = pixel_size_A if pixel_size_A is not None else self.pixel_size_A
        name = self.path.name if self.path else "the image"
        if px is None:
            raise InputError(f"{name} carries no pixel size: give it (in Å)")
        if not (px > 0 and math.isfinite(px)):
            raise InputError(f"the pixel size must be a positive number of Å, not {px}")
        return Micrograph(self.data, float(px), self.path, self.notes)


def is_micrograph_path(path: str | os.PathLike) -> bool:
    """TIFF and DM3/DM4 files (MRC files go through the project's MRC reader)."""
    return str(path).lower().endswith(TIFF_SUFFIXES + DM_SUFFIXES)


def read_micrograph(path: str | os.PathLike) -> Micrograph:
    """Read one 2D micrograph: .mrc family, .tif/.tiff or .dm3/.dm4."""
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path} does not exist")
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder, not a micrograph")
    name = path.name.lower()
    if name.endswith(DM_SUFFIXES):
        data, px, notes = _read_dm(path)
    elif name.endswith(TIFF_SUFFIXES):
        data, px, notes = _read_tiff(path)
    else:
        data, px, notes = _read_mrc(path)
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise FileFormatError(
            f"{path.name} holds an array of shape {data.shape}, not one 2D micrograph"
        )
    if np.iscomplexobj(data) or data.dtype.kind not in "iuf":
        raise FileFormatError(f"{path.name} holds {data.dtype} values, not image intensities")
    return Micrograph(np.asarray(data, np.float32), px, path, tuple(notes))


def _read_mrc(path: Path):
    from ..io.mrc import read_mrc

    volume = read_mrc(path, mmap=False)
    data = volume.data
    unknown = any("voxel size" in w or "1 Å" in w for w in volume.warnings)
    px = None if unknown else float(volume.voxel_size_nm[-1]) * 10.0
    if data.ndim == 3 and data.shape[0] != 1:
        raise FileFormatError(
            f"{path.name} holds {data.shape[0]} sections; a micrograph is one 2D image"
        )
    return data, px, list(volume.warnings)


def _read_tiff(path: Path):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            data = page.asarray()
            px = _tiff_pixel_size(tif, page)
    except (OSError, ValueError, tifffile.TiffFileError) as e:
        raise FileFormatError(f"could not read {path.name} as TIFF: {e}") from e
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        raise FileFormatError(f"{path.name} is a colour image, not a micrograph")
    return data, px, []


def _tiff_pixel_size(tif, page) -> float | None:
    """Å per pixel from ImageJ's unit and the X resolution, or a centimetre resolution unit."""
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    num, den = tag.value
    if not num or not den:
        return None
    per_unit = num / den  # pixels per unit
    meta = tif.imagej_metadata or {}
    unit = str(meta.get("unit", "")).strip().lower().replace("\\u00b5", "µ")
    if unit in _UNITS_A:
        return _UNITS_A[unit] / per_unit
    res_unit = page.tags.get("ResolutionUnit")
    if res_unit is not None and int(res_unit.value) == 3:  # centimetre
        return 1e8 / per_unit
    return None  # inch or none: a print resolution, not a pixel size


def _read_dm(path: Path):
    try:
        from rsciio.digitalmicrograph import file_reader
    except ImportError as e:  # pragma: no cover - a dependency
        raise FileFormatError("reading DM3/DM4 needs rosettasciio (pip install rosettasciio)") \
            from e
    try:
        signals = file_reader(str(path), lazy=False)
    except Exception as e:  # rosettasciio raises many types for damaged files
        raise FileFormatError(f"could not read {path.name} as a Gatan DM file: {e}") from e
    images = [s for s in signals if np.asarray(s["data"]).ndim == 2]
    if not images:
        shapes = ", ".join(str(np.shape(s["data"])) for s in signals)
        raise FileFormatError(f"{path.name} holds no 2D image (shapes: {shapes})")
    signal = images[0]
    axes = signal["axes"]
    units = [str(ax.get("units") or "").strip() for ax in axes]
    if any(u.startswith("1/") or u.lower().endswith("^-1") for u in units):
        raise FileFormatError(
            f"{path.name} is in reciprocal units ({units[-1]}): a diffraction pattern or FFT, "
            "not a micrograph"
        )
    scale = float(axes[-1].get("scale", 1.0))
    unit = units[-1].lower()
    px = _UNITS_A[unit] * scale if unit in _UNITS_A else None
    notes = [] if len(images) == len(signals) == 1 else [
        f"{path.name} holds {len(signals)} signals; the first 2D image was read"]
    return np.asarray(signal["data"]), px, notes
