"""Bad input: every file a user could feed the reader gives one clear sentence, never a crash."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import numpy as np
import pytest

from napari_cryoli.errors import FileFormatError
from napari_cryoli.io import read_mrc


def _assert_one_sentence(error: pytest.ExceptionInfo, name: str) -> None:
    message = str(error.value)
    assert name in message
    assert "\n" not in message and len(message) < 300


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="does not exist") as e:
        read_mrc(tmp_path / "nothing.mrc")
    _assert_one_sentence(e, "nothing.mrc")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="is a folder"):
        read_mrc(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mrc").write_bytes(b"")
    with pytest.raises(FileFormatError, match="is empty") as e:
        read_mrc(tmp_path / "empty.mrc")
    _assert_one_sentence(e, "empty.mrc")


def test_shorter_than_a_header(tmp_path: Path, make_mrc_bytes) -> None:
    (tmp_path / "short.mrc").write_bytes(make_mrc_bytes()[:500])
    with pytest.raises(FileFormatError, match=r"too short to be an MRC file \(500 bytes"):
        read_mrc(tmp_path / "short.mrc")


def test_header_only(write_mrc_bytes) -> None:
    path = write_mrc_bytes("header.mrc", payload=b"")
    with pytest.raises(FileFormatError, match="truncated: it holds a header but no data") as e:
        read_mrc(path)
    _assert_one_sentence(e, "header.mrc")


def test_data_cut_short(write_mrc_bytes) -> None:
    data = np.ones((4, 5, 6), np.float32)
    path = write_mrc_bytes("cut.mrc", data, payload=data.tobytes()[:-7])
    with pytest.raises(FileFormatError, match="promises 480 bytes of data but only 473"):
        read_mrc(path)
    with pytest.raises(FileFormatError, match="truncated"):
        read_mrc(path, mmap=False)


def test_extended_header_cut_short(write_mrc_bytes) -> None:
    path = write_mrc_bytes("ext.mrc", ext=b"", nsymbt=4096, payload=b"\0" * 100)
    with pytest.raises(FileFormatError, match="extended header should be 4096 bytes"):
        read_mrc(path)


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is a text file\n" * 100,
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
        b"II*\x00" + b"\xff" * 2000,  # a TIFF
    ],
    ids=["text", "png", "tiff"],
)
def test_not_an_mrc_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "picture.mrc"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match="picture.mrc is not an MRC file"):
        read_mrc(path)


def test_gzip_that_is_not_gzip(write_mrc_bytes) -> None:
    path = write_mrc_bytes("volume.mrc.gz")  # plain bytes under a .gz name
    with pytest.raises(FileFormatError, match="named .gz but is not gzip-compressed"):
        read_mrc(path)


def test_bz2_that_is_not_bz2(write_mrc_bytes) -> None:
    path = write_mrc_bytes("volume.mrc.bz2")
    with pytest.raises(FileFormatError, match="named .bz2 but is not bzip2-compressed"):
        read_mrc(path)


def test_corrupt_gzip_stream(tmp_path: Path, make_mrc_bytes) -> None:
    packed = bytearray(gzip.compress(make_mrc_bytes(np.ones((8, 8, 8), np.float32))))
    packed[20:40] = b"\xff" * 20
    (tmp_path / "bad.mrc.gz").write_bytes(bytes(packed))
    with pytest.raises(FileFormatError, match="bad.mrc.gz is not a valid gzip file"):
        read_mrc(tmp_path / "bad.mrc.gz")


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress], ids=["gzip", "bzip2"])
def test_truncated_compressed_stream(tmp_path: Path, make_mrc_bytes, compress) -> None:
    rng = np.random.default_rng(1)
    packed = compress(make_mrc_bytes(rng.standard_normal((8, 8, 8)).astype(np.float32)))
    (tmp_path / "cut.mrc.gz").write_bytes(packed[: len(packed) * 2 // 3])
    with pytest.raises(FileFormatError, match="cut.mrc.gz"):
        read_mrc(tmp_path / "cut.mrc.gz")


def test_compressed_header_only(tmp_path: Path, make_mrc_bytes) -> None:
    (tmp_path / "h.mrc.gz").write_bytes(gzip.compress(make_mrc_bytes(payload=b"")))
    with pytest.raises(FileFormatError, match="truncated"):
        read_mrc(tmp_path / "h.mrc.gz")


def test_4d_volume_stack(write_mrc_bytes) -> None:
    data = np.zeros((6, 4, 4), np.float32)  # 3 volumes of 2 sections
    path = write_mrc_bytes("stack4d.mrc", data, ispg=401, mz=2)
    with pytest.raises(FileFormatError, match="stack of 3 volumes \\(4D data\\)"):
        read_mrc(path)


def test_single_volume_in_a_volume_stack_header_opens(write_mrc_bytes) -> None:
    path = write_mrc_bytes("one.mrc", np.zeros((6, 4, 4), np.float32), ispg=401)
    assert read_mrc(path).data.shape == (6, 4, 4)


@pytest.mark.parametrize("mode", [5, 7, 42, -1, 1000])
def test_unknown_mode(write_mrc_bytes, mode: int) -> None:
    path = write_mrc_bytes("odd.mrc", mode=mode)
    with pytest.raises(FileFormatError, match=f"unknown MRC data mode {mode}"):
        read_mrc(path)


@pytest.mark.parametrize(("mode", "what"), [(16, "RGB"), (101, "4-bit")])
def test_legal_but_unsupported_modes(write_mrc_bytes, mode: int, what: str) -> None:
    path = write_mrc_bytes("odd.mrc", mode=mode)
    with pytest.raises(FileFormatError, match=f"{what}.*mode {mode}"):
        read_mrc(path)


@pytest.mark.parametrize("field", ["nx", "ny", "nz"])
@pytest.mark.parametrize("value", [0, -3])
def test_invalid_size(write_mrc_bytes, field: str, value: int) -> None:
    path = write_mrc_bytes("size.mrc", **{field: value})
    with pytest.raises(FileFormatError, match="invalid size"):
        read_mrc(path)


def test_negative_extended_header(write_mrc_bytes) -> None:
    with pytest.raises(FileFormatError, match="negative extended-header size"):
        read_mrc(write_mrc_bytes("n.mrc", nsymbt=-8))


def test_unreadable_file(tmp_path: Path, make_mrc_bytes, monkeypatch) -> None:
    import errno
    import os

    from napari_cryoli.io import mrc

    path = tmp_path / "locked.mrc"
    path.write_bytes(make_mrc_bytes())

    def denied(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))

    monkeypatch.setattr(mrc, "open", denied, raising=False)  # as if chmod 000 (root ignores it)
    with pytest.raises(FileFormatError, match="could not read .*locked.mrc: Permission denied"):
        read_mrc(path)
