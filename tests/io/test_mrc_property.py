"""Property: for any header and any truncation the reader returns a valid Volume or raises
FileFormatError with one sentence; never another exception, never a crash."""

from __future__ import annotations

import bz2
import gzip
import json
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from napari_cryoli.errors import FileFormatError
from napari_cryoli.io import read_labels, read_mrc

MODES = [0, 1, 2, 3, 4, 6, 12, 16, 101]
ITEMSIZE = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2, 16: 3, 101: 1}
SUFFIXES = [".mrc", ".map", ".st", ".mrcs", ".mrc.gz", ".mrc.bz2"]
STAMPS = {"<": (0x44, 0x44, 0, 0), ">": (0x11, 0x11, 0, 0)}

small = st.integers(min_value=-2, max_value=9)
# No subnormals: training in the same process flushes them to zero (segment.model.fast_cpu_math),
# and hypothesis refuses to draw them then.
floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=False)
RARELY = st.integers(0, 3).map(lambda i: i == 3)  # True one time in four


def mostly(draw, valid, other):
    """A value from ``valid`` three times in four, else from ``other``."""
    return draw(other) if draw(RARELY) else draw(valid)


@st.composite
def mrc_files(draw) -> tuple[str, bytes]:
    """(suffix, file bytes) from a random header, extended header, data and truncation."""
    byte_order = draw(st.sampled_from("<>"))
    size = st.integers(1, 9)
    mode = mostly(draw, st.sampled_from(MODES), st.integers(-10, 2**31 - 1))
    nx, ny, nz = (mostly(draw, size, small) for _ in range(3))
    axis_map = mostly(draw, st.permutations([1, 2, 3]), st.tuples(small, small, small))
    grid = tuple(mostly(draw, size, small) for _ in range(3))
    fields = {
        "nx": nx,
        "ny": ny,
        "nz": nz,
        "mode": mode,
        "nxstart": draw(st.integers(-50, 50)),
        "nystart": draw(st.integers(-50, 50)),
        "nzstart": draw(st.integers(-50, 50)),
        "mx": grid[0],
        "my": grid[1],
        "mz": grid[2],
        "cella": tuple(
            mostly(draw, st.floats(0.5, 50.0, width=32, allow_subnormal=False), floats32) * max(g, 1) for g in grid
        ),
        "mapc": axis_map[0],
        "mapr": axis_map[1],
        "maps": axis_map[2],
        "dmin": draw(floats32),
        "dmax": draw(floats32),
        "ispg": draw(st.sampled_from([0, 1, 1, 401, 630, -1, 9999])),
        "nsymbt": mostly(draw, st.just(0), st.sampled_from([128, 160, 256, 2048, -4, 10**9])),
        "exttyp": draw(st.sampled_from([b"", b"FEI1", b"FEI2", b"SERI", b"CCP4", b"\xff\xfe"])),
        "origin": (draw(floats32), draw(floats32), draw(floats32)),
        "map": mostly(draw, st.just(b"MAP "), st.sampled_from([b"MAP\0", b"\0\0\0\0", b"XYZW"])),
        "machst": mostly(
            draw,
            st.just(STAMPS[byte_order]),
            st.sampled_from([(0x44, 0x41, 0, 0), (0x11, 0x11, 0, 0), (0, 0, 0, 0), (1, 2, 3, 4)]),
        ),
        "nlabl": draw(st.integers(-3, 12)),
    }
    from mrcfile.dtypes import HEADER_DTYPE

    h = np.zeros((), dtype=HEADER_DTYPE.newbyteorder(byte_order))
    for key, value in fields.items():
        h[key] = value
    header = bytearray(h.tobytes())
    if draw(st.booleans()):  # IMOD stamp / SerialEM fields
        header[128:132] = np.array(draw(st.tuples(small, small)), f"{byte_order}i2").tobytes()
        header[152:160] = np.array([1146047817, draw(small)], f"{byte_order}i4").tobytes()
    if draw(RARELY):  # arbitrary bytes instead of a header
        header = bytearray(draw(st.binary(min_size=0, max_size=1100)))
    n_ext = max(0, min(fields["nsymbt"], 4096))
    n_data = max(nx, 0) * max(ny, 0) * max(nz, 0) * ITEMSIZE.get(mode, 4)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    body = rng.integers(0, 256, n_ext + n_data, dtype=np.uint8).tobytes()
    if draw(st.booleans()):  # plausible FEI records instead of random bytes
        records = np.zeros((max(n_ext // 128, 0), 32), f"{byte_order}f4")
        records[:, 0] = rng.uniform(-70, 70, len(records))
        records[:, 11] = draw(st.sampled_from([2e-9, 0.0, np.nan, 1e30]))
        body = records.tobytes()[:n_ext] + body[n_ext:]
    content = bytes(header) + body
    cut = draw(st.integers(0, len(content))) if draw(RARELY) else None
    suffix = draw(st.sampled_from(SUFFIXES))
    if cut is not None:
        content = content[:cut]
    if suffix.endswith(".gz"):
        content = gzip.compress(content)
    elif suffix.endswith(".bz2"):
        content = bz2.compress(content)
    if suffix[-3:] in (".gz", "bz2") and draw(RARELY):
        content = content[: draw(st.integers(0, len(content)))]  # cut the compressed stream
    return suffix, content


def _check_volume(volume, n_voxels: int) -> None:
    data = volume.data
    assert volume.kind in ("volume", "image", "stack")
    assert data.ndim == (2 if volume.kind == "image" else 3)
    assert len(volume.voxel_size_nm) == len(volume.origin_nm) == data.ndim
    assert all(math.isfinite(v) and v > 0 for v in volume.voxel_size_nm)
    assert all(math.isfinite(v) for v in volume.origin_nm)
    assert data.size == n_voxels
    assert data.dtype.isnative
    float(np.asarray(data[tuple(slice(None, None, max(1, s // 2)) for s in data.shape)]).sum())
    if volume.tilt_angles_deg is not None:
        assert len(volume.tilt_angles_deg) == data.shape[0]
    json.dumps(volume.header, allow_nan=False)
    assert all(isinstance(w, str) and "\n" not in w for w in volume.warnings)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mrc_files())
def test_reader_returns_a_volume_or_a_file_format_error(example) -> None:
    suffix, content = example
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{suffix}"
        path.write_bytes(content)
        for read in (read_mrc, read_labels, lambda p: read_mrc(p, mmap=False)):
            try:
                volume = read(path)
            except FileFormatError as e:
                message = str(e)
                assert message and "\n" not in message
                event("FileFormatError")
                continue
            event(f"Volume ({volume.kind})")
            header = volume.header
            _check_volume(volume, header["nx"] * header["ny"] * header["nz"])
            if read is read_labels:
                assert volume.data.dtype == np.uint8
            del volume
