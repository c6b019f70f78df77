"""Atomic writes: a file is either its old self or completely new, never half-written.

Data goes to a temporary file in the destination's folder (same file system, so the final rename
is atomic), is flushed to disk with ``fsync``, and only then replaces the destination with
``os.replace``. On any error, a full disk included, the temporary file is removed and the old file
stays as it was; temporaries that a killed process could not remove are cleared by the next
successful write of the same file.
"""

from __future__ import annotations

import errno
import glob
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..errors import FileFormatError

#: Temporary files are hidden siblings named ``.<name>.<random>.tmp``.
TMP_SUFFIX = ".tmp"

#: A temporary untouched this long (seconds) belongs to no live write.
STALE_AFTER_S = 3600.0


def temporary_sibling(path: Path) -> Path:
    """A fresh, unused hidden temporary path next to ``path``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block ends without error.

    The temporary file exists (empty, with the permissions a new file would get) when the block
    starts; the block may write it or replace it. Whatever the block raises propagates after the
    temporary file is removed; failures of the final sync or rename raise ``FileFormatError``.
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        # 0o666 masked by the umask: the permissions any newly created file would have.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise write_error(path, e) from e
    try:
        yield tmp
        try:
            _fsync(tmp)
            os.replace(tmp, path)
            _fsync_folder(path.parent)
        except OSError as e:
            raise write_error(path, e) from e
        remove_stale_temporaries(path)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries of ``path`` that writes killed before their end left behind.

    A live write touches its temporary all along, so one untouched for ``STALE_AFTER_S`` is
    a leftover (of a crash, a kill, a power cut): each can be as large as the file itself.
    Returns the paths removed.
    """
    path = Path(path)
    removed = []
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{TMP_SUFFIX}"):
        with suppress(OSError):
            if now - tmp.stat().st_mtime > STALE_AFTER_S:
                tmp.unlink()
                removed.append(tmp)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (all or nothing)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
        except OSError as e:
            raise write_error(path, e) from e


def check_writable(path: str | os.PathLike) -> None:
    """Raise ``FileFormatError`` now if ``path`` cannot be written, before long work is wasted.

    Creates and removes a temporary sibling, so a missing or read-only folder is caught whatever
    the permissions say; a disk that fills up later is still caught by the write itself.
    """
    path = Path(path)
    if path.is_dir():
        raise FileFormatError(f"could not write {path}: it is a folder")
    probe = temporary_sibling(path)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise write_error(path, e) from e
    os.unlink(probe)


def write_error(path: Path, error: OSError) -> FileFormatError:
    """The one-sentence error for a failed write of ``path``."""
    if error.errno == errno.ENOENT and not path.parent.is_dir():
        reason = f"the folder {path.parent} does not exist"
    elif error.errno == errno.ENOSPC:
        reason = "the disk is full"
    else:
        reason = error.strerror or str(error)
    return FileFormatError(f"could not write {path}: {reason}; any previous file is unchanged")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the platform allows syncing a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
