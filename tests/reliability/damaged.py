"""Files as users meet them: a good volume, damaged copies of it, and legal oddities.

Every damaged file is made from a good file written by the project's own writer, the way files
get damaged in practice (a copy cut short, a misleading name, a header from another machine), so
each case differs from a file that opens by exactly one fault.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mrcfile.dtypes import HEADER_DTYPE

from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI
from napari_cryoli.io import write_mrc

HEADER_BYTES = 1024
VOXEL_NM = (2.0, 1.5, 1.5)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def rod_labels(shape: tuple[int, int, int] = (12, 20, 24)) -> np.ndarray:
    """A Li rod along x with a LiH core, an SEI shell and a Cu grain in a corner (uint8 ids)."""
    z, y, x = np.indices(shape)
    r = np.hypot((z - shape[0] / 2 + 0.5) * VOXEL_NM[0], (y - shape[1] / 2 + 0.5) * VOXEL_NM[1])
    labels = np.full(shape, BACKGROUND, np.uint8)
    labels[r < 9] = SEI
    labels[r < 6] = LI
    labels[(r < 3) & (x >= shape[2] // 2)] = LIH
    labels[1:3, 1:3, 1:3] = CU
    return labels


def grey_values(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A noisy float32 image of ``labels`` (dense phases dark, as in a tomogram)."""
    rng = np.random.default_rng(seed)
    level = np.array([0, 0, -0.5, -0.8, -3.0, -1.1], np.float32)
    return (level[labels] + rng.normal(0, 0.2, labels.shape)).astype(np.float32)


# --- headers -----------------------------------------------------------------------------------


def with_header(raw: bytes, **fields) -> bytes:
    """``raw`` with header fields replaced (little-endian files)."""
    header = np.frombuffer(raw[:HEADER_BYTES], HEADER_DTYPE).copy()
    for key, value in fields.items():
        header[key] = value
    return header.tobytes() + raw[HEADER_BYTES:]


def big_endian(raw: bytes, dtype: np.dtype) -> bytes:
    """The same little-endian file as a big-endian machine writes it (header and data swapped)."""
    header = np.frombuffer(raw[:HEADER_BYTES], HEADER_DTYPE)
    swapped = header.astype(HEADER_DTYPE.newbyteorder(">"))
    swapped["machst"] = (0x11, 0x11, 0, 0)
    offset = HEADER_BYTES + int(header["nsymbt"][0])
    data = np.frombuffer(raw[offset:], np.dtype(dtype).newbyteorder("<"))
    return (
        swapped.tobytes()
        + raw[HEADER_BYTES:offset]
        + data.astype(data.dtype.newbyteorder(">")).tobytes()
    )


def _corrupt_gzip(raw: bytes) -> bytes:
    packed = bytearray(gzip.compress(raw))
    packed[20:40] = b"\xff" * 20
    return bytes(packed)


def _four_d(raw: bytes) -> bytes:
    nz = int(np.frombuffer(raw[:HEADER_BYTES], HEADER_DTYPE)["nz"][0])
    return with_header(raw, ispg=401, mz=max(1, nz // 2))


# --- damage: files that must be refused with one sentence ---------------------------------------


@dataclass(frozen=True)
class Damage:
    """A fault: the copy's name ending, how to make its bytes (None: no file), what it is called."""

    suffix: str
    make: Callable[[bytes], bytes | None]
    says: str  # a regular expression the one-line message must match


DAMAGES: dict[str, Damage] = {
    "missing": Damage(".mrc", lambda raw: None, "does not exist"),
    "empty": Damage(".mrc", lambda raw: b"", "is empty"),
    "header only": Damage(".mrc", lambda raw: raw[:HEADER_BYTES], "truncated: it holds a header"),
    "data cut short": Damage(".mrc", lambda raw: raw[:-100], "truncated: its header promises"),
    "not an MRC file": Damage(".mrc", lambda raw: PNG, "is not an MRC file"),
    "4D data": Damage(".mrc", _four_d, r"stack of \d+ volumes \(4D data\)"),
    "gzip that is not gzip": Damage(".mrc.gz", lambda raw: raw, "named .gz but is not gzip"),
    "corrupt gzip": Damage(".mrc.gz", _corrupt_gzip, "is not a valid gzip file"),
}


def damaged_copy(good: Path, case: str, folder: Path) -> Path:
    """A copy of ``good`` in ``folder`` with the fault ``case`` (not created for "missing")."""
    damage = DAMAGES[case]
    path = folder / (case.replace(" ", "_") + damage.suffix)
    content = damage.make(good.read_bytes())
    if content is not None:
        path.write_bytes(content)
    return path


# --- oddities: legal files that must open, with a warning where something is assumed -----------
# Values are small non-negative integers (ids, or grey levels 0-120), exact in every mode below.


@dataclass(frozen=True)
class Oddity:
    """A legal but unusual way to store values, and what a reader must report about it."""

    write: Callable[[Path, np.ndarray, str], None]  # (path, values, kind) -> the file
    warns: str | None = None  # a regular expression one of the reader's warnings must match
    voxel_nm: tuple[float, float, float] = VOXEL_NM  # what the reader must report (or assume)
    labels_ok: bool = True  # a label volume stored this way is still a label volume
    non_finite: bool = False  # holds NaN/Inf where ``with_nan_inf`` puts them


def _written(dtype=None, **fields) -> Callable[[Path, np.ndarray, str], None]:
    """Written by napari-cryoli as ``dtype`` (default: as given), header ``fields`` patched."""

    def write(path: Path, values: np.ndarray, kind: str) -> None:
        data = values if dtype is None else values.astype(dtype)
        write_mrc(path, data, voxel_size_nm=VOXEL_NM, kind=kind, labels=data.dtype == np.uint8)
        if fields:
            path.write_bytes(with_header(path.read_bytes(), **fields))

    return write


def _big_endian(path: Path, values: np.ndarray, kind: str) -> None:
    _written(np.int16)(path, values, kind)
    path.write_bytes(big_endian(path.read_bytes(), np.int16))


def _nan_inf(path: Path, values: np.ndarray, kind: str) -> None:
    _written()(path, with_nan_inf(values), kind)


def with_nan_inf(values: np.ndarray) -> np.ndarray:
    """``values`` as float32 with one NaN and one infinity."""
    out = values.astype(np.float32)
    out.flat[7] = np.nan
    out.flat[-3] = np.inf
    return out


ODDITIES: dict[str, Oddity] = {
    "int8": Oddity(_written(np.int8)),
    "uint16": Oddity(_written(np.uint16)),
    "float16": Oddity(_written(np.float16), labels_ok=False),
    "complex": Oddity(_written(np.complex64), warns="complex data", labels_ok=False),
    "big-endian": Oddity(_big_endian),
    "NaN and Inf voxels": Oddity(
        _nan_inf, warns="NaN or infinite", labels_ok=False, non_finite=True
    ),
    "zero voxel size": Oddity(
        _written(cella=(0.0, 0.0, 0.0)),
        warns="no voxel size along x in the header; assuming 1 nm",
        voxel_nm=(1.0, 1.0, 1.0),
    ),
    "absent voxel size": Oddity(
        _written(mx=0, my=0, mz=0),
        warns="no voxel size along y in the header; assuming 1 nm",
        voxel_nm=(1.0, 1.0, 1.0),
    ),
    "no MAP id": Oddity(_written(map=b"\0\0\0\0"), warns="no 'MAP ' id"),
    "machine stamp contradicts the header": Oddity(
        _written(machst=(0x11, 0x11, 0, 0)), warns="machine stamp that says big-endian"
    ),
}
