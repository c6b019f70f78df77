"""The command line as a user runs it, and Python run in a separate, limited process.

``run_cli`` calls ``napari_cryoli.cli.main`` and returns stderr as a terminal shows it (a progress
bar redraws its own line); ``error_message`` checks the error contract of the architecture doc.
``run_python`` runs a script in a fresh interpreter with helpers to limit its memory or file size;
``run_on_full_disk`` runs one on a small tmpfs of its own (a real "disk full"), where the system
allows unprivileged mounts.
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from napari_cryoli.cli import main

#: A progress-bar line: "measure [####----] 2/6 ..." or "train 12 ...".
PROGRESS = re.compile(r"^[a-z]+ (\[[#-]+\] )?\d+")


@dataclass(frozen=True)
class Outcome:
    """What a command returned and what its user saw."""

    status: int
    lines: tuple[str, ...]  # stderr, as a terminal shows it
    stdout: str


def terminal_lines(text: str) -> tuple[str, ...]:
    """Non-empty lines as displayed: of a line redrawn with carriage returns, its last state."""
    shown = (line.split("\r")[-1].rstrip() for line in text.splitlines())
    return tuple(line for line in shown if line)


def run_cli(capsys, *args) -> Outcome:
    """Run ``napari-cryoli ARGS`` in this process, as a terminal would show it.

    Python warnings go to stderr in a real run (pytest would otherwise keep them to itself);
    SystemExit from argparse becomes a status.
    """
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status = main([str(a) for a in args])
        except SystemExit as e:
            status = int(e.code or 0)
    captured = capsys.readouterr()
    shown = "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught
    )
    return Outcome(status, terminal_lines(shown + captured.err), captured.out)


def error_message(outcome: Outcome, command: str, *, alone: bool = True) -> str:
    """The message of a failed command, after checking the contract.

    Status 2; the error is the last line and the only one that is not a note or the progress
    bar (with ``alone``, the only line at all); no traceback anywhere.
    """
    prefix = f"napari-cryoli {command}: error: "
    assert outcome.status == 2, outcome
    assert not any("Traceback" in line for line in outcome.lines), outcome.lines
    assert outcome.lines and outcome.lines[-1].startswith(prefix), outcome.lines
    if alone:
        assert len(outcome.lines) == 1, outcome.lines
    for line in outcome.lines[:-1]:
        assert line.startswith("note: ") or PROGRESS.match(line), outcome.lines
    return outcome.lines[-1][len(prefix) :]


def notes(outcome: Outcome) -> list[str]:
    return [line[len("note: ") :] for line in outcome.lines if line.startswith("note: ")]


def entries(folder: Path) -> list[str]:
    """Everything in ``folder``, hidden files (temporaries) included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- separate processes --------------------------------------------------------------------------

PRELUDE = '''
import json, os, resource, signal, sys


def limit_data(extra_bytes):
    """Allow this process ``extra_bytes`` of private memory beyond what it holds now.

    RLIMIT_DATA counts the heap and private mappings, not read-only or shared file maps, so a
    memory-mapped file of any size does not count against it, but a copy of its data does.
    """
    import numpy

    numpy.ones((64, 64)) @ numpy.ones((64, 64))  # BLAS takes its buffers at first use
    with open("/proc/self/status") as f:
        held = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    resource.setrlimit(resource.RLIMIT_DATA, (held + extra_bytes, hard))


def limit_file_size(n_bytes):
    """No file may grow past ``n_bytes``: writes beyond fail (EFBIG) instead of killing."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))


def fill_disk(folder, room=0):
    """Fill the file system of ``folder`` to the last byte, then free ``room`` bytes."""
    filler = os.path.join(folder, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (2**16, 2**12, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError:
                pass
    finally:
        os.close(fd)
    if room:
        os.truncate(filler, max(os.path.getsize(filler) - room, 0))


def run_cli(*args):
    """napari-cryoli ARGS here; returns (status, stderr)."""
    import contextlib
    import io

    from napari_cryoli.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, err.getvalue()


def report(**values):
    print("RESULT " + json.dumps(values), flush=True)
'''

#: Threads and allocator arenas kept few, so a memory limit measures the work, not the pools.
QUIET_ENV = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}


def child_env() -> dict[str, str]:
    return {**os.environ, **QUIET_ENV}


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` (after the helpers above) in a fresh interpreter; ``sys.argv[1:]`` = args."""
    script = PRELUDE + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


def result(done: subprocess.CompletedProcess) -> dict:
    """The values a child passed to ``report``."""
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise AssertionError(f"no result (status {done.returncode}):\n{done.stdout}\n{done.stderr}")


@functools.cache
def can_mount_tmpfs() -> bool:
    """Whether this system lets us mount a tmpfs in a user namespace of our own."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d"',
        ],
        check=False,
        capture_output=True,
    )
    return probe.returncode == 0


def run_on_full_disk(
    code: str, folder: Path, *args: str, size_kib: int = 512, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run ``code`` with a fresh ``size_kib`` tmpfs mounted on ``folder`` (gone when it ends).

    The script sees the mount point as ``sys.argv[1]``; it should put what it needs there,
    call ``fill_disk``, act, and ``report`` what it found, since the files vanish with the mount.
    """
    script = PRELUDE + textwrap.dedent(code)
    folder.mkdir(parents=True, exist_ok=True)
    shell = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    return subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            shell,
            "sh",
            f"{size_kib}k",
            str(folder),
            sys.executable,
            "-c",
            script,
            str(folder),
            *args,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


# --- interrupting a run ----------------------------------------------------------------------


class Running:
    """A command or script running in a child process, its stderr (or stdout) read as it comes."""

    def __init__(self, argv: list[str], *, watch: str = "stderr") -> None:
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        self._stream = getattr(self.process, watch)
        self.seen = ""

    @classmethod
    def cli(cls, *args) -> Running:
        return cls([sys.executable, "-m", "napari_cryoli.cli", *map(str, args)])

    @classmethod
    def script(cls, code: str, *args: str) -> Running:
        return cls([sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args], watch="stdout")

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match:
        """Read until ``pattern`` appears in the output; fail if the process ends first."""
        deadline = time.monotonic() + timeout
        fd = self._stream.fileno()
        while True:
            found = re.search(pattern, self.seen)
            if found:
                return found
            left = deadline - time.monotonic()
            assert left > 0, f"{pattern!r} not seen in {timeout} s: {self.seen[-2000:]}"
            ready, _, _ = select.select([fd], [], [], left)
            chunk = os.read(fd, 65536) if ready else b""
            if ready and not chunk:
                raise AssertionError(f"ended before {pattern!r}: {self.seen[-2000:]}")
            self.seen += chunk.decode(errors="replace")

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """Wait for the end: (status, stdout, stderr), with what was read so far included."""
        out, err = self.process.communicate(timeout=timeout)
        if self._stream is self.process.stderr:
            return self.process.returncode, out.decode(), self.seen + err.decode()
        return self.process.returncode, self.seen + out.decode(), err.decode()
