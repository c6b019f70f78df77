"""Faithful MRC reading and atomic MRC writing.

Reading follows each writer's conventions with general rules, never per-file special cases:
the axis order (mapc/mapr/maps) is undone so data are always (z, y, x); voxel sizes and origin
follow the same axes; mode-0 signedness is decided from the IMOD stamp, else the header range;
an old FEI extended header supplies the pixel size and tilt angles when the main header has none;
big-endian and gzip/bzip2 files open. Large files are memory-mapped and never read in full.

Writing is atomic (see :mod:`.atomic`): labels as 8-bit mode 0, images in their own mode, voxel
size and origin kept, and a header label that marks napari-cryoli label volumes.
"""

from __future__ import annotations

import bz2
import gzip
import math
import os
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from ..errors import FileFormatError, InputError
from . import header as hdr
from .atomic import atomic_path, write_error
from .extended import SectionMetadata, section_metadata, serialem_tilt_header

Kind = Literal["volume", "image", "stack"]

#: Suffixes (after removing .gz/.bz2) of files that hold a stack of 2D images.
STACK_SUFFIXES = (".st", ".mrcs", ".ali")
COMPRESSED_SUFFIXES = {".gz": "gzip", ".bz2": "bzip2"}

#: Text label that marks a file written by napari-cryoli as a label volume.
LABELS_MARK = "napari-cryoli labels"
WRITER_MARK = "napari-cryoli"

#: Files up to this size are checked in full for NaN/Inf; larger ones by a spread-out sample.
FULL_SCAN_BYTES = 64 * 2**20
SAMPLE_ROWS = 256

#: Chunk size for streaming data to and from disk.
CHUNK_BYTES = 64 * 2**20

#: Values per chunk when computing header statistics (float64 temporaries of 8 MiB).
STATS_CHUNK_VALUES = 2**20

#: MRC modes napari-cryoli writes, by dtype.
WRITE_MODES: dict[np.dtype, int] = {
    np.dtype(np.uint8): 0,
    np.dtype(np.int8): 0,
    np.dtype(np.int16): 1,
    np.dtype(np.float32): 2,
    np.dtype(np.complex64): 4,
    np.dtype(np.uint16): 6,
    np.dtype(np.float16): 12,
}


@dataclass(frozen=True, eq=False)
class Volume:
    """An array read from an MRC file, with its geometry in nm and what the header said."""

    data: np.ndarray  # numpy order; a read-only memmap when possible (no full read)
    voxel_size_nm: tuple[float, ...]  # one per axis of data (z, y, x) / (y, x) / (n, y, x)
    origin_nm: tuple[float, ...]  # one per axis: napari `translate`
    kind: Kind  # 3D volume, 2D image, stack of 2D images (tilt series)
    path: Path
    header: dict  # JSON-able summary of the header
    warnings: tuple[str, ...] = ()  # things a user should know
    tilt_angles_deg: tuple[float, ...] | None = None  # per section, when the file carries them
    is_labels: bool = False  # written by napari-cryoli as a label volume


class DiscardWrite(Exception):
    """Raise inside :func:`open_mrc_for_writing` to abandon the output quietly (e.g. on stop)."""


# --- reading -----------------------------------------------------------------------------------


def read_mrc(path: str | os.PathLike, *, mmap: bool = True) -> Volume:
    """Read an MRC file (.mrc .rec .map .st .ali .mrcs, optionally .gz/.bz2).

    With ``mmap`` (the default) an uncompressed little-endian file is memory-mapped read-only and
    opens in constant time whatever its size; compressed and byte-swapped files are read into
    memory. Everything wrong with the file raises ``FileFormatError`` with one sentence.
    """
    path = Path(path)
    try:
        with _open_source(path) as source:
            return _read(source, mmap=mmap)
    except OSError as e:
        raise FileFormatError(f"could not read {path}: {e.strerror or e}") from e


def read_labels(path: str | os.PathLike) -> Volume:
    """Read a label volume as uint8 (mode 0, signed or not; other integer modes if ids fit)."""
    volume = read_mrc(path)
    data = volume.data
    name = volume.path.name
    if data.dtype == np.uint8:
        return volume
    if data.dtype == np.int8:
        return replace(volume, data=data.view(np.uint8))
    if data.dtype.kind not in "iu":
        raise FileFormatError(
            f"{name} holds {data.dtype} values (MRC mode {volume.header['mode']}), not labels"
        )
    lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
    if lo < 0 or hi > 255:
        raise FileFormatError(f"{name} holds values {lo}…{hi}, not label ids 0–255")
    warning = f"labels stored as {data.dtype} (MRC mode {volume.header['mode']}); read as 8-bit"
    return replace(
        volume, data=np.asarray(data, dtype=np.uint8), warnings=(*volume.warnings, warning)
    )


def _read(source: _DataSource, *, mmap: bool) -> Volume:
    name = source.path.name
    h = hdr.parse_header(source.read_header(), name, source.size)
    warnings: list[str] = []
    ext = source.read_extended(h.nsymbt)
    if len(ext) < h.nsymbt:
        raise FileFormatError(
            f"{name} is truncated: its extended header should be {h.nsymbt} bytes but only "
            f"{len(ext)} follow the header"
        )
    if h.ispg in hdr.VOLUME_STACK_ISPG and h.grid[2] > 0 and h.nz > h.grid[2]:
        raise FileFormatError(
            f"{name} is a stack of {h.nz // h.grid[2]} volumes (4D data), which napari-cryoli "
            "does not open"
        )
    if not h.has_map_id or h.byte_order_guessed:
        warnings.append(_old_writer_warning(h))

    is_labels = any(LABELS_MARK in label for label in h.labels)
    signed, signed_reason = hdr.mode0_is_signed(h, is_labels)
    meta, meta_warnings = section_metadata(
        ext,
        exttyp=h.exttyp,
        n_sections=h.nz,
        nint=h.nint,
        nreal=h.nreal,
        byte_order=h.byte_order,
    )
    warnings += meta_warnings

    raw = source.read_data(h, signed=signed, mmap=mmap)
    data, data_warnings = _native(raw, h)
    warnings += data_warnings
    perm, axes_valid = hdr.axis_permutation(h)
    if not axes_valid:
        warnings.append(
            f"the axis order (mapc, mapr, maps) = {h.axis_map} is invalid; read as (1, 2, 3)"
        )
    if perm != (0, 1, 2):
        data = data.transpose(perm)

    tilt = meta.tilt_angles_deg if meta is not None else None
    kind = _kind(source.path, data.shape, h, tilt)
    if kind == "image":
        data = data[0]
    spacing_nm, spacing_warnings = _voxel_size_nm(h, kind, meta)
    warnings += spacing_warnings
    origin_nm, origin_warnings = _origin_nm(h, kind, perm, spacing_nm)
    warnings += origin_warnings
    warnings += _non_finite_warnings(raw, source, h)

    summary = hdr.summary(h)
    summary["file_size"] = source.size
    if h.mode == 0:
        summary["mode0_signed"] = signed
        summary["mode0_signed_reason"] = signed_reason
    if meta is not None:
        summary["extended_header"] = meta.layout
        summary["extended_pixel_size_nm"] = meta.pixel_size_nm
    return Volume(
        data=data,
        voxel_size_nm=spacing_nm,
        origin_nm=origin_nm,
        kind=kind,
        path=source.path,
        header=summary,
        warnings=tuple(warnings),
        tilt_angles_deg=tilt if kind == "stack" else None,
        is_labels=is_labels,
    )


def _old_writer_warning(h: hdr.MrcHeader) -> str:
    problems = []
    if not h.has_map_id:
        problems.append("no 'MAP ' id")
    if h.byte_order_guessed:
        order = "little" if h.byte_order == "<" else "big"
        if h.machine_stamp[:1] in (b"\x44", b"\x11"):
            stamped = "big" if order == "little" else "little"
            problems.append(
                f"a machine stamp that says {stamped}-endian, but the header reads as {order}-endian"
            )
        else:
            problems.append(f"no machine stamp (read as {order}-endian)")
    return f"written by an old program ({', '.join(problems)}); opened permissively"


def _native(raw: np.ndarray, h: hdr.MrcHeader) -> tuple[np.ndarray, list[str]]:
    """Data in native byte order; complex modes become their magnitude."""
    warnings = []
    if h.mode in hdr.COMPLEX_MODES:
        pairs = raw.astype(np.float32) if h.mode == 3 else raw
        magnitude = np.hypot(pairs[..., 0], pairs[..., 1]) if h.mode == 3 else np.abs(pairs)
        warnings.append(f"complex data (MRC mode {h.mode}): showing the magnitude")
        return magnitude.astype(np.float32), warnings
    if not raw.dtype.isnative:
        data = np.array(raw, dtype=raw.dtype.newbyteorder("="))
        if isinstance(raw, np.memmap):
            warnings.append(
                f"the file's byte order differs from this machine's: read into memory "
                f"({data.nbytes / 2**20:.1f} MiB) to convert it"
            )
        return data, warnings
    return raw, warnings


def _kind(
    path: Path, shape: tuple[int, ...], h: hdr.MrcHeader, tilt: tuple[float, ...] | None
) -> Kind:
    if shape[0] == 1:
        return "image"
    if _plain_suffix(path) in STACK_SUFFIXES:
        return "stack"
    if h.ispg == 0 and tilt is not None:
        return "stack"
    return "volume"


def _voxel_size_nm(
    h: hdr.MrcHeader, kind: Kind, meta: SectionMetadata | None
) -> tuple[tuple[float, ...], list[str]]:
    """Spacing per axis of the data, in nm, with a warning for each value not in the header."""
    sx, sy, sz = h.spacing_xyz()
    spatial = {"x": sx, "y": sy} if kind != "volume" else {"x": sx, "y": sy, "z": sz}
    warnings = []
    fei_nm = meta.pixel_size_nm if meta is not None else None
    placeholder = [axis for axis, s in spatial.items() if not math.isfinite(s) or s == 1.0]
    if fei_nm is not None and placeholder:
        header_says = ", ".join(
            f"{axis} {'none' if not math.isfinite(spatial[axis]) else '1 Å'}"
            for axis in placeholder
        )
        warnings.append(
            f"pixel size {fei_nm:.4g} nm taken from the {meta.layout} extended header (the main "
            f"header gives {header_says})"
        )
    nm: dict[str, float] = {}
    for axis, s in spatial.items():
        if fei_nm is not None and axis in placeholder:
            nm[axis] = fei_nm
        elif math.isfinite(s):
            nm[axis] = s / 10.0
        else:
            nm[axis] = 1.0
            warnings.append(f"no voxel size along {axis} in the header; assuming 1 nm")
    if fei_nm is None and all(s == 1.0 for s in spatial.values()):
        warnings.append(
            "the voxel size is exactly 1 Å, which many programs write when it is unknown; check it"
        )
    if kind == "volume":
        return (nm["z"], nm["y"], nm["x"]), warnings
    if kind == "image":
        return (nm["y"], nm["x"]), warnings
    return (1.0, nm["y"], nm["x"]), warnings


def _origin_nm(
    h: hdr.MrcHeader, kind: Kind, perm: tuple[int, int, int], spacing_nm: tuple[float, ...]
) -> tuple[tuple[float, ...], list[str]]:
    """Origin per axis of the data, in nm: the MRC2000 origin when set, else the start indices.

    Like UCSF Chimera, the origin field is only trusted in headers with the 'MAP ' id; in older
    headers the same bytes hold other things.
    """
    warnings = []
    ox, oy, oz = h.origin
    zyx_angstrom = (oz, oy, ox)
    use_field = h.has_map_id and any(v != 0 for v in zyx_angstrom)
    if use_field and not all(math.isfinite(v) for v in zyx_angstrom):
        warnings.append("the header origin is not a finite number; using the start indices")
        use_field = False
    if use_field:
        zyx = tuple(v / 10.0 for v in zyx_angstrom)
    else:
        # nxstart/nystart/nzstart count the stored columns, rows and sections.
        stored_starts = (h.nstart[2], h.nstart[1], h.nstart[0])
        starts = tuple(stored_starts[p] for p in perm)
        spacing_zyx = spacing_nm if len(spacing_nm) == 3 else (1.0, *spacing_nm)
        zyx = tuple(float(s) * d for s, d in zip(starts, spacing_zyx))
    if kind == "image":
        return (zyx[1], zyx[2]), warnings
    if kind == "stack":
        return (0.0, zyx[1], zyx[2]), warnings
    return zyx, warnings


def _non_finite_warnings(raw: np.ndarray, source: _DataSource, h: hdr.MrcHeader) -> list[str]:
    """Warn about NaN/Inf voxels; a large file is judged by a spread-out sample of rows."""
    if raw.dtype.kind not in "fc":
        return []
    if raw.nbytes <= FULL_SCAN_BYTES:
        values, where = raw, "voxels"
    else:
        k = max(1, math.isqrt(SAMPLE_ROWS))
        sections, rows = _spread(raw.shape[0], k), _spread(raw.shape[1], k)
        if isinstance(raw, np.memmap):
            # Plain reads: touching rows through the map would pull in read-ahead around each.
            values = source.read_rows(h, raw.dtype, sections, rows)
        else:
            values = raw[np.ix_(sections, rows)]
        where = "voxels (in a sample of the file)"
    finite = np.isfinite(values)
    if finite.all():
        return []
    n_bad = int(finite.size - np.count_nonzero(finite))
    return [f"{n_bad} NaN or infinite {where}; measurements may ignore or mishandle them"]


def _spread(n: int, k: int) -> np.ndarray:
    """Up to ``k`` distinct indices spread evenly over ``range(n)``, first and last included."""
    return np.array(sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)}), dtype=np.intp)


# --- where the bytes come from -----------------------------------------------------------------


@contextmanager
def _open_source(path: Path) -> Iterator[_DataSource]:
    """Open ``path`` for reading, decompressing gzip/bzip2 on the fly."""
    if not path.exists():
        raise FileFormatError(f"{path} does not exist")
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder, not an MRC file")
    size = path.stat().st_size
    if size == 0:
        raise FileFormatError(f"{path.name} is empty")
    with open(path, "rb") as raw_file:
        compression = _compression(path, raw_file.read(3))
        raw_file.seek(0)
        if compression is None:
            yield _DataSource(path, raw_file, raw_file, None, size)
            return
        if compression == "gzip":
            stream: BinaryIO = gzip.GzipFile(fileobj=raw_file, mode="rb")
        else:
            stream = bz2.BZ2File(raw_file, mode="rb")
        with stream:
            yield _DataSource(path, stream, raw_file, compression, None)


class _DataSource:
    """An MRC file on disk or in a gzip/bzip2 stream, read front to back."""

    def __init__(
        self,
        path: Path,
        stream: BinaryIO,
        raw_file: BinaryIO,
        compression: str | None,
        size: int | None,
    ) -> None:
        self.path = path
        self.name = path.name
        self._file = stream
        self._raw_file = raw_file
        self.compression = compression
        self.size = size  # known for uncompressed files only

    def read_header(self) -> bytes:
        raw = self._read(hdr.HEADER_BYTES)
        if not raw:
            raise FileFormatError(f"{self.name} is empty once decompressed")
        return raw

    def read_extended(self, n: int) -> bytes:
        return self._read(n)

    def read_data(self, h: hdr.MrcHeader, *, signed: bool, mmap: bool) -> np.ndarray:
        """The stored array, shape (sections, rows, columns[, 2]), in the file's byte order."""
        base = hdr.MODE_DTYPES[h.mode]
        if h.mode == 0 and not signed:
            base = "u1"
        dtype = np.dtype(base).newbyteorder(h.byte_order)
        shape: tuple[int, ...] = (h.nz, h.ny, h.nx)
        if h.mode == 3:
            shape = (*shape, 2)
        count = h.n_voxels * (2 if h.mode == 3 else 1)
        expected = h.data_bytes
        if self.size is not None:
            available = self.size - h.data_offset
            if available < expected:
                raise self._truncated(expected, max(available, 0))
            if mmap:
                return np.memmap(
                    self.path, dtype=dtype, mode="r", offset=h.data_offset, shape=shape
                )
            self._file.seek(h.data_offset)
            array = np.fromfile(self._file, dtype=dtype, count=count)
            if array.size < count:
                raise self._truncated(expected, array.nbytes)
            return array.reshape(shape)
        buffer = self._read(expected)
        if len(buffer) < expected:
            raise self._truncated(expected, len(buffer))
        return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)

    def read_rows(
        self, h: hdr.MrcHeader, dtype: np.dtype, sections: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """Selected stored rows of an uncompressed file, shape (len(sections), len(rows), nx)."""
        row_bytes = h.nx * dtype.itemsize
        chunks = [
            self._read_at(h.data_offset + (section * h.ny + row) * row_bytes, row_bytes)
            for section in sections.tolist()
            for row in rows.tolist()
        ]
        values = np.frombuffer(b"".join(chunks), dtype=dtype)
        return values.reshape(len(sections), len(rows), h.nx)

    def _read_at(self, offset: int, n: int) -> bytes:
        if hasattr(os, "pread"):
            return os.pread(self._raw_file.fileno(), n, offset)
        self._raw_file.seek(offset)
        return self._raw_file.read(n)

    def _truncated(self, expected: int, available: int) -> FileFormatError:
        if available == 0:
            return FileFormatError(
                f"{self.name} is truncated: it holds a header but no data ({expected} bytes "
                "expected)"
            )
        return FileFormatError(
            f"{self.name} is truncated: its header promises {expected} bytes of data but only "
            f"{available} follow"
        )

    def _read(self, n: int) -> bytearray:
        """Up to ``n`` bytes (fewer at the end of the file), read in bounded chunks."""
        buffer = bytearray()
        try:
            while len(buffer) < n:
                chunk = self._file.read(min(CHUNK_BYTES, n - len(buffer)))
                if not chunk:
                    break
                buffer += chunk
        except (OSError, EOFError, zlib.error, ValueError) as e:
            if self.compression is None:
                raise
            raise FileFormatError(
                f"{self.name} is not a valid {self.compression} file or is cut short ({e})"
            ) from e
        return buffer


def _compression(path: Path, magic: bytes) -> str | None:
    """The compression of a file, from its first bytes; a compressed suffix must match them."""
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic == b"BZh":
        return "bzip2"
    suffix = path.suffix.lower()
    if suffix in COMPRESSED_SUFFIXES:
        raise FileFormatError(
            f"{path.name} is named {suffix} but is not {COMPRESSED_SUFFIXES[suffix]}-compressed"
        )
    return None


def _plain_suffix(path: Path) -> str:
    """The suffix that says what the file holds (.mrc for x.mrc.gz)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


# --- writing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WritePlan:
    """What to write: a validated dtype, mode, geometry and text labels."""

    dtype: np.dtype  # little-endian on-disk dtype
    mode: int
    shape_zyx: tuple[int, int, int]
    spacing_xyz: tuple[float, float, float]  # Å
    origin_xyz: tuple[float, float, float]  # Å
    ispg: int
    labels: tuple[str, ...]
    extended: bytes = b""
    nint: int = 0
    nreal: int = 0

    @property
    def exttyp(self) -> bytes:
        return b"SERI" if self.extended else b""

    def header(self, stats: tuple[float, float, float, float]) -> bytes:
        return hdr.build_header(
            shape_zyx=self.shape_zyx,
            mode=self.mode,
            spacing_xyz=self.spacing_xyz,
            origin_xyz=self.origin_xyz,
            ispg=self.ispg,
            labels=self.labels,
            stats=stats,
            exttyp=self.exttyp,
            nsymbt=len(self.extended),
            nint=self.nint,
            nreal=self.nreal,
            signed_bytes=self.dtype == np.dtype(np.int8),
        )


def write_mrc(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    voxel_size_nm: Sequence[float],
    origin_nm: Sequence[float] | None = None,
    labels: bool | None = None,
    extra_labels: Sequence[str] = (),
    kind: Kind | None = None,
    tilt_angles_deg: Sequence[float] | None = None,
) -> None:
    """Write ``data`` (numpy order) to an MRC file atomically; the old file survives any failure.

    uint8 (and bool) -> mode 0, int8 -> mode 0, int16 -> 1, float32 -> 2, complex64 -> 4,
    uint16 -> 6, float16 -> 12; float64 is stored as float32. ``labels`` (default: True for
    uint8/bool data) marks the file as a label volume; integer labels must be ids 0-255.
    ``kind`` defaults to "image" for 2D and "volume" for 3D data; a "stack" may carry
    ``tilt_angles_deg`` (stored in a SerialEM-style extended header that IMOD also reads), which
    is how a .mrc stack reads back as a stack; without angles, give it a stack suffix (.st, .mrcs,
    .ali). A name ending in .gz or .bz2 is compressed.
    """
    path = Path(path)
    data = _writable_array(data, labels)
    labels = bool(labels) if labels is not None else data.dtype == np.uint8
    plan = _plan(
        data.shape,
        data.dtype,
        voxel_size_nm,
        origin_nm,
        labels,
        extra_labels,
        kind,
        tilt_angles_deg,
    )
    stats = _stats(data)
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix.lower(), open)
    with atomic_path(path) as tmp:
        try:
            with opener(tmp, "wb") as f:
                f.write(plan.header(stats))
                f.write(plan.extended)
                for chunk in _section_chunks(data):
                    f.write(np.ascontiguousarray(chunk, dtype=plan.dtype).data)
        except OSError as e:
            raise write_error(path, e) from e


@contextmanager
def open_mrc_for_writing(
    path: str | os.PathLike,
    shape: Sequence[int],
    dtype: npt.DTypeLike,
    *,
    voxel_size_nm: Sequence[float],
    origin_nm: Sequence[float] | None = None,
    labels: bool = False,
    kind: Kind | None = None,
    extra_labels: Sequence[str] = (),
) -> Iterator[np.ndarray]:
    """A writable memmap of a new MRC file, for outputs too big to hold in memory.

    The array lives in a temporary file next to ``path``; it becomes ``path`` (with header
    statistics filled in) only when the with-block ends without an exception. On an exception
    the temporary file is removed and any old ``path`` is untouched; raising :class:`DiscardWrite`
    does the same without propagating.
    """
    path = Path(path)
    dtype = np.dtype(dtype)
    if dtype not in WRITE_MODES:
        raise InputError(
            f"cannot stream {dtype} data to an MRC file; use one of "
            f"{', '.join(str(d) for d in WRITE_MODES)}"
        )
    if path.suffix.lower() in COMPRESSED_SUFFIXES:
        raise InputError(f"cannot stream into a compressed file ({path.name}); write .mrc")
    shape = tuple(int(n) for n in shape)
    plan = _plan(shape, dtype, voxel_size_nm, origin_nm, labels, extra_labels, kind, None)
    offset = hdr.HEADER_BYTES + len(plan.extended)
    try:
        with atomic_path(path) as tmp:
            try:
                with open(tmp, "r+b") as f:
                    f.write(plan.header((0.0, -1.0, -2.0, -1.0)))  # stats "undetermined" for now
                    f.write(plan.extended)
                    _reserve(f, offset + math.prod(shape) * dtype.itemsize)
                array = np.memmap(tmp, dtype=plan.dtype, mode="r+", offset=offset, shape=shape)
            except OSError as e:
                raise write_error(path, e) from e
            yield array
            try:
                array.flush()
                stats = _stats(array)
                del array
                with open(tmp, "r+b") as f:
                    f.write(plan.header(stats))
            except OSError as e:
                raise write_error(path, e) from e
    except DiscardWrite:
        return


def _reserve(f: BinaryIO, size: int) -> None:
    """Give ``f`` its final ``size`` with every block allocated on disk.

    A file merely extended (sparse) would take its blocks only as the map is written, and a disk
    that fills up then kills the process with SIGBUS instead of raising an error here.
    """
    f.flush()
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(f.fileno(), 0, size)
    else:
        f.truncate(size)


def _writable_array(data, labels: bool | None) -> np.ndarray:
    """``data`` as an array of a dtype MRC stores (label ids checked and made uint8)."""
    data = np.asanyarray(data)
    if data.dtype == bool:
        return data.astype(np.uint8)
    if labels:
        if data.dtype.kind not in "iu":
            raise InputError(f"labels must be integer ids, not {data.dtype} values")
        if data.dtype != np.uint8:
            lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
            if lo < 0 or hi > 255:
                raise InputError(f"label ids must be 0–255 to be written as 8-bit, not {lo}…{hi}")
            return data.astype(np.uint8)
        return data
    if data.dtype == np.float64:
        return data.astype(np.float32)
    if data.dtype == np.complex128:
        return data.astype(np.complex64)
    if data.dtype.newbyteorder("=") in WRITE_MODES:
        return data
    if data.dtype.kind in "iu" and data.size:
        lo, hi = int(data.min()), int(data.max())
        for candidate in (np.int16, np.uint16):
            info = np.iinfo(candidate)
            if info.min <= lo and hi <= info.max:
                return data.astype(candidate)
    raise InputError(f"{data.dtype} data cannot be written to an MRC file")


def _plan(
    shape: tuple[int, ...],
    dtype: np.dtype,
    voxel_size_nm: Sequence[float],
    origin_nm: Sequence[float] | None,
    labels: bool,
    extra_labels: Sequence[str],
    kind: Kind | None,
    tilt_angles_deg: Sequence[float] | None,
) -> _WritePlan:
    ndim = len(shape)
    kind = kind or ("image" if ndim == 2 else "volume")
    if kind == "image" and ndim != 2 or kind != "image" and ndim != 3:
        raise InputError(f"cannot write {ndim}D data as an MRC {kind}")
    if min(shape) <= 0:
        raise InputError(f"cannot write an empty array of shape {shape}")
    voxel = _per_axis(voxel_size_nm, ndim, "voxel size")
    if not all(math.isfinite(v) and v > 0 for v in voxel):
        raise InputError(f"voxel size must be positive, not {voxel} nm")
    origin = _per_axis(origin_nm if origin_nm is not None else (0.0,) * ndim, ndim, "origin")
    if not all(math.isfinite(v) for v in origin):
        raise InputError(f"origin must be finite, not {origin} nm")
    if ndim == 2:
        shape, voxel, origin = (1, *shape), (voxel[1], *voxel), (0.0, *origin)
    extended, nint, nreal = b"", 0, 0
    if tilt_angles_deg is not None:
        angles = np.asarray(tilt_angles_deg, dtype=np.float64)
        if kind != "stack" or angles.shape != (shape[0],):
            raise InputError(f"{angles.size} tilt angles do not fit a {kind} of shape {shape}")
        if not np.all(np.isfinite(angles) & (np.abs(angles) <= 90)):
            raise InputError("tilt angles must be finite and within ±90°")
        extended, nint, nreal = serialem_tilt_header(angles)
    stamp = datetime.now(timezone.utc).strftime("%d-%b-%y %H:%M:%S")
    own = f"{LABELS_MARK} (ids: napari-cryoli classes)" if labels else WRITER_MARK
    text = (f"{own}  {stamp}", *(str(t) for t in extra_labels))
    if len(text) > 10:
        raise InputError(f"an MRC header holds 10 text labels, not {len(text)}")
    mode = WRITE_MODES[np.dtype(dtype).newbyteorder("=")]
    return _WritePlan(
        dtype=np.dtype(dtype).newbyteorder("<"),
        mode=mode,
        shape_zyx=shape,  # type: ignore[arg-type]
        spacing_xyz=(voxel[2] * 10, voxel[1] * 10, voxel[0] * 10),
        origin_xyz=(origin[2] * 10, origin[1] * 10, origin[0] * 10),
        ispg=1 if kind == "volume" else 0,
        labels=text,
        extended=extended,
        nint=nint,
        nreal=nreal,
    )


def _per_axis(values: Sequence[float], ndim: int, what: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in np.atleast_1d(np.asarray(values, dtype=np.float64)))
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim:
        raise InputError(f"{len(values)} {what} values do not fit {ndim}D data")
    return values


def _section_chunks(data: np.ndarray, chunk_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
    """Consecutive blocks of whole sections (or rows, for 2D) of about ``chunk_bytes`` each."""
    n = data.shape[0]
    per_section = max(1, data.nbytes // max(n, 1))
    step = max(1, chunk_bytes // per_section)
    for start in range(0, n, step):
        yield data[start : start + step]


def _stats(data: np.ndarray) -> tuple[float, float, float, float]:
    """(dmin, dmax, dmean, rms) over finite values, in chunks; complex data: of the magnitude."""
    lo, hi, total, total_sq, count = math.inf, -math.inf, 0.0, 0.0, 0
    # Chunks of a fixed number of values, so the float64 copies stay small (8 MiB) whatever the
    # input's type: sized in bytes of input, 8-bit labels made chunks eight times larger.
    for chunk in _section_chunks(data, STATS_CHUNK_VALUES * data.itemsize):
        values = np.asarray(chunk)
        if values.dtype.kind == "c":
            values = np.abs(values)
        finite_only = values.dtype.kind == "f"
        values = values.astype(np.float64).ravel()
        if finite_only:
            values = values[np.isfinite(values)]
        if not values.size:
            continue
        lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
        total += float(values.sum())
        total_sq += float(np.dot(values, values))
        count += values.size
    if not count:
        return 0.0, -1.0, -2.0, -1.0  # MRC2014: dmax < dmin, dmean < min, rms < 0 = undetermined
    mean = total / count
    rms = math.sqrt(max(total_sq / count - mean * mean, 0.0))
    return lo, hi, mean, rms
