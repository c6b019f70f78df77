"""The 1024-byte MRC header: decode any writer's header, and build the one napari-cryoli writes.

Decoding never trusts a field: the byte order comes from the machine stamp (or, when a writer
left it empty or it contradicts the header, from the order in which mode and sizes make sense),
and every value used later is checked here, so that a corrupt header ends in a one-sentence
``FileFormatError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from mrcfile.dtypes import HEADER_DTYPE

from ..errors import FileFormatError

HEADER_BYTES = 1024
MAP_ID = b"MAP "
MRC2014_VERSION = 20141
IMOD_STAMP = 1146047817
IMOD_FLAG_SIGNED_BYTES = 1

#: numpy dtypes (byte order aside) of the modes read; mode 0 may be read unsigned, mode 3 is a
#: pair of int16 (real, imaginary).
MODE_DTYPES: dict[int, str] = {0: "i1", 1: "i2", 2: "f4", 3: "i2", 4: "c8", 6: "u2", 12: "f2"}
MODE_ITEMSIZE: dict[int, int] = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2}
UNSUPPORTED_MODES: dict[int, str] = {16: "RGB colour", 101: "4-bit packed"}
COMPLEX_MODES = (3, 4)

#: A volume stack (4D) uses space groups 401-630.
VOLUME_STACK_ISPG = range(401, 631)

ByteOrder = Literal["<", ">"]


@dataclass(frozen=True)
class MrcHeader:
    """The decoded fields of an MRC header (sizes in voxels, lengths in Å)."""

    byte_order: ByteOrder
    byte_order_guessed: bool
    has_map_id: bool
    machine_stamp: bytes
    nx: int
    ny: int
    nz: int
    mode: int
    nstart: tuple[int, int, int]  # first column, row, section
    grid: tuple[int, int, int]  # mx, my, mz
    cell: tuple[float, float, float]  # cella x, y, z in Å
    cell_angles: tuple[float, float, float]
    axis_map: tuple[int, int, int]  # mapc, mapr, maps as written
    dmin: float
    dmax: float
    dmean: float
    rms: float
    ispg: int
    nsymbt: int
    exttyp: str
    nversion: int
    origin: tuple[float, float, float]  # x, y, z in Å (MRC2000 field)
    labels: tuple[str, ...]
    nint: int
    nreal: int
    imod_stamp: int
    imod_flags: int

    @property
    def data_offset(self) -> int:
        return HEADER_BYTES + self.nsymbt

    @property
    def n_voxels(self) -> int:
        return self.nx * self.ny * self.nz

    @property
    def data_bytes(self) -> int:
        return self.n_voxels * MODE_ITEMSIZE[self.mode]

    @property
    def has_imod_stamp(self) -> bool:
        return self.imod_stamp == IMOD_STAMP

    def spacing_xyz(self) -> tuple[float, float, float]:
        """Voxel spacing along x, y, z in Å (``nan`` where the header gives none)."""
        return tuple(_spacing(c, m) for c, m in zip(self.cell, self.grid))  # type: ignore[return-value]


def parse_header(raw: bytes, name: str, file_size: int | None = None) -> MrcHeader:
    """Decode the first 1024 bytes of ``name``; ``file_size`` (when known) helps guess byte order.

    Raises ``FileFormatError`` when the bytes are not an MRC header or hold unusable values.
    """
    if len(raw) < HEADER_BYTES:
        raise FileFormatError(
            f"{name} is too short to be an MRC file ({len(raw)} bytes; the header alone is "
            f"{HEADER_BYTES})"
        )
    raw = bytes(raw[:HEADER_BYTES])
    has_map_id = raw[208:211] == MAP_ID[:3]
    stamp = raw[212:216]
    byte_order, guessed = _byte_order(raw, stamp, has_map_id, name, file_size)
    h = np.frombuffer(raw, dtype=HEADER_DTYPE.newbyteorder(byte_order), count=1)[0]
    i16 = np.frombuffer(raw, dtype=f"{byte_order}i2")
    i32 = np.frombuffer(raw, dtype=f"{byte_order}i4")
    nlabl = min(max(int(h["nlabl"]), 0), 10)
    header = MrcHeader(
        byte_order=byte_order,
        byte_order_guessed=guessed,
        has_map_id=has_map_id,
        machine_stamp=bytes(stamp),
        nx=int(h["nx"]),
        ny=int(h["ny"]),
        nz=int(h["nz"]),
        mode=int(h["mode"]),
        nstart=(int(h["nxstart"]), int(h["nystart"]), int(h["nzstart"])),
        grid=(int(h["mx"]), int(h["my"]), int(h["mz"])),
        cell=tuple(float(v) for v in h["cella"].item()),  # type: ignore[arg-type]
        cell_angles=tuple(float(v) for v in h["cellb"].item()),  # type: ignore[arg-type]
        axis_map=(int(h["mapc"]), int(h["mapr"]), int(h["maps"])),
        dmin=float(h["dmin"]),
        dmax=float(h["dmax"]),
        dmean=float(h["dmean"]),
        rms=float(h["rms"]),
        ispg=int(h["ispg"]),
        nsymbt=int(h["nsymbt"]),
        exttyp=_text(bytes(h["exttyp"])),
        nversion=int(h["nversion"]),
        origin=tuple(float(v) for v in h["origin"].item()),  # type: ignore[arg-type]
        labels=tuple(_text(bytes(label)) for label in h["label"][:nlabl]),
        nint=int(i16[64]),
        nreal=int(i16[65]),
        imod_stamp=int(i32[38]),
        imod_flags=int(i32[39]),
    )
    _check(header, name)
    return header


def axis_permutation(header: MrcHeader) -> tuple[tuple[int, int, int], bool]:
    """Permutation that turns the stored (section, row, column) array into (z, y, x) order.

    Returns ``(perm, valid)``; an axis map that is not a permutation of 1, 2, 3 (old writers
    leave zeros) is read as the standard 1, 2, 3 and ``valid`` is False.
    """
    mapc, mapr, maps = header.axis_map
    if sorted((mapc, mapr, maps)) != [1, 2, 3]:
        return (0, 1, 2), False
    stored = (maps, mapr, mapc)  # real axis (1=x, 2=y, 3=z) of each stored array dimension
    return (stored.index(3), stored.index(2), stored.index(1)), True


def mode0_is_signed(header: MrcHeader, written_as_labels: bool) -> tuple[bool, str]:
    """Whether mode-0 bytes are signed, and why.

    MRC2014 says signed; IMOD wrote unsigned bytes for decades. The general rule: our own label
    files are unsigned; an IMOD stamp decides by its flag; otherwise the header's minimum and
    maximum tell (below 0: signed, above 127: unsigned); with no evidence, unsigned.
    """
    if written_as_labels:
        return False, "napari-cryoli labels are unsigned"
    if header.has_imod_stamp:
        signed = bool(header.imod_flags & IMOD_FLAG_SIGNED_BYTES)
        return signed, f"IMOD flags say {'signed' if signed else 'unsigned'}"
    lo, hi = header.dmin, header.dmax
    if math.isfinite(lo) and math.isfinite(hi) and lo <= hi:
        if lo < 0:
            return True, "header minimum is below 0"
        if hi > 127:
            return False, "header maximum is above 127"
    return False, "no evidence either way; unsigned (IMOD convention)"


def summary(header: MrcHeader) -> dict:
    """A JSON-able summary of the header (for layer metadata and reports)."""
    return {
        "mode": header.mode,
        "nx": header.nx,
        "ny": header.ny,
        "nz": header.nz,
        "nxstart": header.nstart[0],
        "nystart": header.nstart[1],
        "nzstart": header.nstart[2],
        "mx": header.grid[0],
        "my": header.grid[1],
        "mz": header.grid[2],
        "cella": [_json_float(v) for v in header.cell],
        "cellb": [_json_float(v) for v in header.cell_angles],
        "mapc": header.axis_map[0],
        "mapr": header.axis_map[1],
        "maps": header.axis_map[2],
        "dmin": _json_float(header.dmin),
        "dmax": _json_float(header.dmax),
        "dmean": _json_float(header.dmean),
        "rms": _json_float(header.rms),
        "ispg": header.ispg,
        "nsymbt": header.nsymbt,
        "exttyp": header.exttyp,
        "nversion": header.nversion,
        "origin": [_json_float(v) for v in header.origin],
        "map_id": header.has_map_id,
        "machst": header.machine_stamp.hex(" "),
        "byte_order": "little" if header.byte_order == "<" else "big",
        "nint": header.nint,
        "nreal": header.nreal,
        "imod_stamp": header.has_imod_stamp,
        "imod_flags": header.imod_flags if header.has_imod_stamp else None,
        "labels": list(header.labels),
    }


def build_header(
    *,
    shape_zyx: tuple[int, int, int],
    mode: int,
    spacing_xyz: tuple[float, float, float],
    origin_xyz: tuple[float, float, float],
    ispg: int,
    labels: tuple[str, ...],
    stats: tuple[float, float, float, float],
    exttyp: bytes = b"",
    nsymbt: int = 0,
    nint: int = 0,
    nreal: int = 0,
    signed_bytes: bool = False,
) -> bytes:
    """An MRC2014 little-endian header; ``stats`` are (dmin, dmax, dmean, rms).

    ``signed_bytes`` adds IMOD's stamp with its signed-bytes flag, so that IMOD and our reader
    read mode-0 data as int8 (without it both read unsigned bytes).
    """
    nz, ny, nx = shape_zyx
    h = np.zeros((), dtype=HEADER_DTYPE.newbyteorder("<"))
    h["nx"], h["ny"], h["nz"] = nx, ny, nz
    h["mode"] = mode
    h["mx"], h["my"], h["mz"] = nx, ny, nz
    h["cella"] = tuple(s * n for s, n in zip(spacing_xyz, (nx, ny, nz)))
    h["cellb"] = (90.0, 90.0, 90.0)
    h["mapc"], h["mapr"], h["maps"] = 1, 2, 3
    h["dmin"], h["dmax"], h["dmean"], h["rms"] = stats
    h["ispg"] = ispg
    h["nsymbt"] = nsymbt
    h["exttyp"] = exttyp
    h["nversion"] = MRC2014_VERSION
    h["origin"] = origin_xyz
    h["map"] = MAP_ID
    h["machst"] = (0x44, 0x44, 0, 0)
    if len(labels) > 10:
        raise ValueError("an MRC header holds at most 10 text labels")
    h["nlabl"] = len(labels)
    for i, text in enumerate(labels):
        h["label"][i] = text.encode("latin-1", "replace")[:80].ljust(80)
    raw = bytearray(h.tobytes())
    raw[128:132] = np.array([nint, nreal], dtype="<i2").tobytes()
    if signed_bytes:
        raw[152:160] = np.array([IMOD_STAMP, IMOD_FLAG_SIGNED_BYTES], dtype="<i4").tobytes()
    return bytes(raw)


# --- internals ---------------------------------------------------------------------------------


def _byte_order(
    raw: bytes, stamp: bytes, has_map_id: bool, name: str, file_size: int | None
) -> tuple[ByteOrder, bool]:
    stamped = {0x44: "<", 0x11: ">"}.get(stamp[0])  # 0x44 0x44 / 0x44 0x41 or 0x11 0x11
    if stamped is not None:
        other = ">" if stamped == "<" else "<"
        if _plausible(raw, stamped, None) or not _plausible(raw, other, file_size):
            return stamped, False  # type: ignore[return-value]
        # A stamp that contradicts the header (some writers stamp the wrong order): like IMOD,
        # trust the order in which mode and sizes make sense.
        return other, True  # type: ignore[return-value]
    # No usable stamp (old writers leave zeros): the order in which the header makes sense.
    plausible = [bo for bo in ("<", ">") if _plausible(raw, bo, None)]
    if file_size is not None:
        fitting = [bo for bo in plausible if _plausible(raw, bo, file_size)]
        plausible = fitting or plausible
    if plausible:
        return plausible[0], True  # type: ignore[return-value]
    if not has_map_id:
        raise FileFormatError(f"{name} is not an MRC file (no 'MAP ' id and no usable header)")
    return "<", True


def _plausible(raw: bytes, byte_order: str, file_size: int | None) -> bool:
    nx, ny, nz, mode = np.frombuffer(raw[:16], dtype=f"{byte_order}i4").tolist()
    if mode not in MODE_DTYPES and mode not in UNSUPPORTED_MODES:
        return False
    if not all(0 < n < 2**24 for n in (nx, ny, nz)):
        return False
    if file_size is None or mode not in MODE_ITEMSIZE:
        return True
    nsymbt = int(np.frombuffer(raw[92:96], dtype=f"{byte_order}i4")[0])
    return nsymbt >= 0 and HEADER_BYTES + nsymbt + nx * ny * nz * MODE_ITEMSIZE[mode] <= file_size


def _check(h: MrcHeader, name: str) -> None:
    if h.mode in UNSUPPORTED_MODES:
        raise FileFormatError(
            f"{name} holds {UNSUPPORTED_MODES[h.mode]} data (MRC mode {h.mode}), which "
            "napari-cryoli does not read"
        )
    if h.mode not in MODE_DTYPES:
        raise FileFormatError(f"{name} has an unknown MRC data mode {h.mode}")
    if min(h.nx, h.ny, h.nz) <= 0:
        raise FileFormatError(
            f"{name} has an invalid size in its header (nx, ny, nz = {h.nx}, {h.ny}, {h.nz})"
        )
    if h.nsymbt < 0:
        raise FileFormatError(f"{name} has a negative extended-header size ({h.nsymbt})")


def _spacing(cell: float, grid: int) -> float:
    if grid <= 0 or not math.isfinite(cell) or cell <= 0:
        return math.nan
    spacing = cell / grid
    return spacing if math.isfinite(spacing) and spacing > 0 else math.nan


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def _json_float(value: float) -> float | str:
    """Finite floats as numbers; inf/nan as strings, so the summary stays strict JSON."""
    return float(value) if math.isfinite(value) else str(value)
