"""Helpers for the io tests: MRC files with any header a writer (or a corruption) could produce."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mrcfile.dtypes import HEADER_DTYPE

STAMPS = {"<": (0x44, 0x44, 0, 0), ">": (0x11, 0x11, 0, 0)}
MODES = {"i1": 0, "u1": 0, "i2": 1, "f4": 2, "c8": 4, "u2": 6, "f2": 12}


def mrc_bytes(
    data: np.ndarray | None = None,
    *,
    byte_order: str = "<",
    spacing_xyz: tuple[float, float, float] = (10.0, 10.0, 10.0),
    ext: bytes = b"",
    imod: tuple[int, int] | None = None,
    nint_nreal: tuple[int, int] | None = None,
    labels: tuple[str, ...] = (),
    payload: bytes | None = None,
    **fields,
) -> bytes:
    """Header + extended header + data of an MRC file; ``fields`` override any header field.

    ``data`` is stored as (sections, rows, columns) in ``byte_order``; ``payload`` replaces the
    data bytes (to truncate or pad them).
    """
    if data is None:
        data = np.zeros((2, 3, 4), dtype=np.float32)
    nz, ny, nx = data.shape
    h = np.zeros((), dtype=HEADER_DTYPE.newbyteorder(byte_order))
    h["nx"], h["ny"], h["nz"] = nx, ny, nz
    h["mode"] = MODES[data.dtype.str[1:]]
    h["mx"], h["my"], h["mz"] = nx, ny, nz
    h["cella"] = tuple(s * n for s, n in zip(spacing_xyz, (nx, ny, nz)))
    h["cellb"] = (90, 90, 90)
    h["mapc"], h["mapr"], h["maps"] = 1, 2, 3
    h["ispg"] = 1
    h["nsymbt"] = len(ext)
    h["nversion"] = 20141
    h["map"] = b"MAP "
    h["machst"] = STAMPS[byte_order]
    h["dmin"], h["dmax"], h["dmean"], h["rms"] = 0, -1, -2, -1
    h["nlabl"] = len(labels)
    for i, text in enumerate(labels):
        h["label"][i] = text.encode().ljust(80)
    for key, value in fields.items():
        h[key] = value
    raw = bytearray(h.tobytes())
    if imod is not None:
        raw[152:160] = np.array(imod, dtype=f"{byte_order}i4").tobytes()
    if nint_nreal is not None:
        raw[128:132] = np.array(nint_nreal, dtype=f"{byte_order}i2").tobytes()
    body = (
        data.astype(data.dtype.newbyteorder(byte_order)).tobytes() if payload is None else payload
    )
    return bytes(raw) + ext + body


@pytest.fixture
def make_mrc_bytes() -> Callable[..., bytes]:
    """The :func:`mrc_bytes` builder (stateless, so safe to share across hypothesis examples)."""
    return mrc_bytes


@pytest.fixture
def write_mrc_bytes(tmp_path: Path) -> Callable[..., Path]:
    """``write_mrc_bytes(name, data=None, **mrc_bytes_options) -> Path`` in ``tmp_path``."""

    def write(name: str, data: np.ndarray | None = None, **options) -> Path:
        path = tmp_path / name
        path.write_bytes(mrc_bytes(data, **options))
        return path

    return write
