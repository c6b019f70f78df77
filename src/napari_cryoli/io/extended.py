"""Per-section acquisition metadata in MRC extended headers: tilt angles and pixel size.

Three layouts carry them:

- the old FEI header (no ``exttyp``; Xplore3D, TIA, 2003 onwards): a 128-byte record of 32 floats
  per section (1024 records reserved), with the alpha tilt in degrees at float 0 and the pixel
  size in metres at float 11;
- the FEI1/FEI2 headers of MRC2014 (``exttyp`` FEI1/FEI2), whose layout mrcfile knows;
- SerialEM's header (``exttyp`` SERI, or IMOD's ``nint``/``nreal`` convention): ``nint`` bytes
  per section of 16-bit values whose presence ``nreal`` flags; the tilt angle × 100 comes first.

A layout is trusted only when every section has a record with plausible values: a partial or
garbled header yields nothing (and a warning), never wrong angles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mrcfile.dtypes import get_ext_header_dtype

OLD_FEI_RECORD_BYTES = 128
OLD_FEI_TILT, OLD_FEI_PIXEL_SIZE = 0, 11

#: Bytes per section that each SerialEM ``nreal`` flag adds (tilt angle, piece coordinates,
#: stage position, magnification, intensity, exposure dose).
SERIALEM_FLAG_BYTES = {1: 2, 2: 6, 4: 4, 8: 2, 16: 2, 32: 4}
SERIALEM_TILT_FLAG = 1

#: Pixel sizes outside this range (in metres) are not pixel sizes.
_PIXEL_SIZE_RANGE_M = (1e-13, 1e-4)


@dataclass(frozen=True)
class SectionMetadata:
    """What an extended header says about the sections of a file."""

    layout: str  # "FEI (old)", "FEI1", "FEI2" or "SerialEM"
    tilt_angles_deg: tuple[float, ...] | None
    pixel_size_nm: float | None


def section_metadata(
    ext: bytes,
    *,
    exttyp: str,
    n_sections: int,
    nint: int,
    nreal: int,
    byte_order: str,
) -> tuple[SectionMetadata | None, tuple[str, ...]]:
    """Decode the extended header ``ext`` of a file with ``n_sections`` sections.

    Returns the metadata (None when no known layout fits) and warnings for the user.
    """
    if not ext or n_sections <= 0:
        return None, ()
    if exttyp in ("FEI1", "FEI2"):
        return _fei_mrc2014(ext, exttyp, n_sections, byte_order)
    if exttyp == "SERI" or (not exttyp and _is_serialem(ext, nint, nreal, n_sections)):
        return _serialem(ext, n_sections, nint, nreal, byte_order)
    if not exttyp and len(ext) % OLD_FEI_RECORD_BYTES == 0:
        return _old_fei(ext, n_sections, byte_order)
    return None, ()


def serialem_tilt_header(angles_deg: np.ndarray) -> tuple[bytes, int, int]:
    """A SerialEM-style extended header holding only tilt angles: (bytes, nint, nreal).

    IMOD and SerialEM read the angles back; precision is 0.01°.
    """
    centi = np.round(np.asarray(angles_deg, dtype=np.float64) * 100)
    return centi.astype("<i2").tobytes(), 2, SERIALEM_TILT_FLAG


# --- layouts -----------------------------------------------------------------------------------


def _old_fei(
    ext: bytes, n: int, byte_order: str
) -> tuple[SectionMetadata | None, tuple[str, ...]]:
    n_records = len(ext) // OLD_FEI_RECORD_BYTES
    records = np.frombuffer(ext, dtype=f"{byte_order}f4").reshape(n_records, 32)
    pixel_m = records[:, OLD_FEI_PIXEL_SIZE].astype(np.float64)
    tilt = records[:, OLD_FEI_TILT].astype(np.float64)
    with np.errstate(invalid="ignore"):
        good = _plausible_pixel_m(pixel_m) & np.isfinite(tilt) & (np.abs(tilt) <= 90)
    n_good = int(good[:n].sum()) if n_records >= n else int(good.sum())
    if n_good == 0:
        return None, ()
    if n_records < n or n_good < n:
        warning = (
            f"the FEI extended header describes only {n_good} of {n} sections; its tilt angles "
            "and pixel size are ignored"
        )
        return None, (warning,)
    return _metadata("FEI (old)", tilt[:n], pixel_m[:n])


def _fei_mrc2014(
    ext: bytes, exttyp: str, n: int, byte_order: str
) -> tuple[SectionMetadata | None, tuple[str, ...]]:
    dtype = get_ext_header_dtype(exttyp.encode(), byte_order)
    if dtype is None or len(ext) < 4:
        return None, ()
    record_bytes = int(np.frombuffer(ext[:4], dtype=dtype["Metadata size"])[0])
    if record_bytes < dtype.itemsize or record_bytes * n > len(ext):
        return None, (f"the {exttyp} extended header is shorter than its {n} sections need",)
    records = np.ndarray((n,), dtype=dtype, buffer=ext, strides=(record_bytes,))
    tilt = records["Alpha tilt"].astype(np.float64)
    pixel_m = records["Pixel size X"].astype(np.float64)
    with np.errstate(invalid="ignore"):
        tilt_ok = bool(np.all(np.isfinite(tilt) & (np.abs(tilt) <= 90)))
    pixel_ok = bool(np.all(_plausible_pixel_m(pixel_m)))
    if not (tilt_ok or pixel_ok):
        return None, ()
    return _metadata(exttyp, tilt if tilt_ok else None, pixel_m if pixel_ok else None)


def _is_serialem(ext: bytes, nint: int, nreal: int, n: int) -> bool:
    if nint <= 0 or nreal <= 0 or nreal & ~sum(SERIALEM_FLAG_BYTES):
        return False
    needed = sum(size for flag, size in SERIALEM_FLAG_BYTES.items() if nreal & flag)
    return nint == needed and len(ext) >= nint * n


def _serialem(
    ext: bytes, n: int, nint: int, nreal: int, byte_order: str
) -> tuple[SectionMetadata | None, tuple[str, ...]]:
    if not nreal & SERIALEM_TILT_FLAG or nint < 2:
        return None, ()
    if nint * n > len(ext):
        return None, (f"the SerialEM extended header is shorter than its {n} sections need",)
    raw = np.frombuffer(ext[: nint * n], dtype=np.uint8).reshape(n, nint)[:, :2]
    tilt = np.ascontiguousarray(raw).view(f"{byte_order}i2")[:, 0] / 100.0
    if np.any(np.abs(tilt) > 90):
        return None, ("the SerialEM extended header holds tilt angles beyond ±90°; ignored",)
    return SectionMetadata("SerialEM", tuple(float(a) for a in tilt), None), ()


def _metadata(
    layout: str, tilt: np.ndarray | None, pixel_m: np.ndarray | None
) -> tuple[SectionMetadata, tuple[str, ...]]:
    warnings: tuple[str, ...] = ()
    pixel_nm = None
    if pixel_m is not None:
        pixel_nm = float(np.median(pixel_m)) * 1e9
        spread = float(np.ptp(pixel_m)) * 1e9
        if spread > 1e-3 * pixel_nm:
            warning = (
                f"the {layout} extended header gives pixel sizes from "
                f"{float(pixel_m.min()) * 1e9:.4g} to {float(pixel_m.max()) * 1e9:.4g} nm; "
                f"using the median, {pixel_nm:.4g} nm"
            )
            warnings = (warning,)
    angles = None if tilt is None else tuple(float(a) for a in tilt)
    return SectionMetadata(layout, angles, pixel_nm), warnings


def _plausible_pixel_m(pixel_m: np.ndarray) -> np.ndarray:
    lo, hi = _PIXEL_SIZE_RANGE_M
    with np.errstate(invalid="ignore"):
        return np.isfinite(pixel_m) & (pixel_m > lo) & (pixel_m < hi)
