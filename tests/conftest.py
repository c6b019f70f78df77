"""Shared fixtures: the real MRC files in tests/data and small synthetic volumes."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Real files written by other software, kept in the repository with their licences (README.md).
SHARED_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real files written by other software."""
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Autosaves of in-memory layers go to the user cache: give each test its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def wait_job(qtbot):
    """Wait until a job started by a widget has finished and its callbacks have run."""

    def wait(handle, timeout: int = 180_000) -> None:
        assert handle is not None, "the widget refused to start the job"
        qtbot.waitUntil(lambda: handle.done, timeout=timeout)
        qtbot.wait(20)

    return wait
