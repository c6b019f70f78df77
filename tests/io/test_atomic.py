"""Atomic writes: a failure at any point leaves the old file intact and no temporary file behind."""

from __future__ import annotations

import errno
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_cryoli.errors import FileFormatError
from napari_cryoli.io import atomic, atomic_path, atomic_write_bytes, read_mrc, write_mrc


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_bytes_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    atomic_write_bytes(path, b"old")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert _entries(tmp_path) == ["notes.json"]


def test_new_files_get_ordinary_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_bytes(tmp_path / "a", b"x")
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o666 & ~umask


def test_error_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.mrc"
    path.write_bytes(b"precious")
    with pytest.raises(ValueError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise ValueError("interrupted")
    assert path.read_bytes() == b"precious"
    assert _entries(tmp_path) == ["labels.mrc"]


def test_full_disk_at_sync_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "seg.mrc"
    write_mrc(path, np.ones((3, 4, 5), np.uint8), voxel_size_nm=1.0)
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(FileFormatError, match="disk is full.*previous file is unchanged"):
        write_mrc(path, np.full((30, 40, 50), 3, np.uint8), voxel_size_nm=1.0)
    assert path.read_bytes() == before
    assert _entries(tmp_path) == ["seg.mrc"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE semantics")
def test_real_write_failure_mid_file_keeps_the_old_file(tmp_path: Path) -> None:
    """The kernel refuses to grow any file past 64 KiB: the write fails half-way through."""
    import resource

    path = tmp_path / "tomogram.mrc"
    old = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    write_mrc(path, old, voxel_size_nm=1.0)
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        with pytest.raises(FileFormatError, match="could not write"):
            write_mrc(path, np.ones((10, 100, 100), np.float32), voxel_size_nm=1.0)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert path.read_bytes() == before
    np.testing.assert_array_equal(read_mrc(path).data, old)
    assert _entries(tmp_path) == ["tomogram.mrc"]


class _FillingDisk:
    """A file whose disk fills after ``room`` bytes: the rest of a write fails with ENOSPC."""

    def __init__(self, path, mode: str, room: int) -> None:
        self._file = open(path, mode)  # noqa: SIM115 (closed by __exit__, like a real file)
        self.room = room
        self.written = 0

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        fits = max(0, min(len(data), self.room - self.written))
        self._file.write(data[:fits])
        self.written += fits
        if fits < len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fits

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()


def test_disk_filling_up_mid_write_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    from napari_cryoli.io import mrc

    path = tmp_path / "volume.mrc"
    write_mrc(path, np.zeros((2, 2, 2), np.float32), voxel_size_nm=1.0)
    before = path.read_bytes()
    disks: list[_FillingDisk] = []

    def filling_open(file, mode="r", *args, **kwargs):
        disks.append(_FillingDisk(file, mode, room=50_000))
        return disks[-1]

    monkeypatch.setattr(mrc, "open", filling_open, raising=False)
    with pytest.raises(FileFormatError, match="disk is full"):
        write_mrc(path, np.ones((10, 20, 300), np.float32), voxel_size_nm=1.0)
    assert disks and disks[0].written == 50_000  # the header and part of the data went out
    assert path.read_bytes() == before
    assert _entries(tmp_path) == ["volume.mrc"]


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="folder .* does not exist"):
        atomic_write_bytes(tmp_path / "nope" / "file.bin", b"x")
    with pytest.raises(FileFormatError, match="does not exist"):
        write_mrc(tmp_path / "nope" / "v.mrc", np.ones((2, 2, 2), np.float32), voxel_size_nm=1)
