"""Running jobs off the GUI thread: one heavy job per viewer, stoppable, errors as notifications."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error, show_info

from ..errors import CryoliError
from ..jobs import Progress

log = logging.getLogger(__name__)

# The heavy job running per viewer: training, prediction, reconstruction, measurement all compete for
# the same cores and memory, so a second one is refused with a message instead of queued silently.
_ACTIVE: weakref.WeakKeyDictionary[Any, JobHandle] = weakref.WeakKeyDictionary()


def unwrapped(viewer: Any) -> Any:
    """The viewer itself (plugin widgets get it through a proxy, one per widget)."""
    return getattr(viewer, "__wrapped__", viewer)


def report_error(error: BaseException, what: str) -> None:
    """Show an error as a napari notification: the message alone for errors a user can fix."""
    if isinstance(error, CryoliError):
        show_error(f"{what}: {error}")
    elif isinstance(error, MemoryError):
        show_error(f"{what}: not enough memory; try a smaller tile or close other layers")
    else:
        log.exception("%s failed", what, exc_info=error)
        show_error(f"{what} failed: {type(error).__name__}: {error}")


class JobHandle:
    """A running job: its worker and the event that asks it to stop."""

    def __init__(self, name: str, worker: GeneratorWorker, stop: threading.Event) -> None:
        self.name = name
        self.worker = worker
        self.stop_event = stop
        self.done = False  # set on the GUI thread once the worker has finished

    def stop(self) -> None:
        self.stop_event.set()


def quiet_worker(function: Callable, *args, on_error: Callable[[Exception], None], **kwargs):
    """An unstarted napari worker whose errors go to ``on_error`` only (superqt would otherwise
    re-raise them in the Qt event loop)."""
    return create_worker(function, *args, _start_thread=False, _connect={"errored": on_error},
                         **kwargs)


def active_job(viewer: Any) -> JobHandle | None:
    return _ACTIVE.get(unwrapped(viewer))


def start_job(
    viewer: Any,
    name: str,
    job_factory: Callable[[threading.Event], Any],
    *,
    owner: Any = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_result: Callable[[Any], None] | None = None,
    on_finish: Callable[[], None] | None = None,
) -> JobHandle | None:
    """Start ``job_factory(stop)`` (a job generator) in a worker thread.

    Callbacks run on the GUI thread. When ``owner`` (the widget that started the job) is destroyed,
    e.g. because the viewer closed, the job is asked to stop and its callbacks are dropped. Returns
    None (after telling the user) when another job is running in this viewer.
    """
    viewer = unwrapped(viewer)
    running = _ACTIVE.get(viewer)
    if running is not None:
        show_info(f"{running.name} is running: stop it or wait before starting {name.lower()}")
        return None
    stop = threading.Event()

    def run(stop: threading.Event):
        return (yield from job_factory(stop))

    run.__qualname__ = name
    alive = [True]  # emptied when the owner widget is destroyed

    def guarded(callback: Callable | None) -> Callable:
        return lambda *args: callback(*args) if alive and callback is not None else None

    worker = quiet_worker(run, stop, on_error=guarded(lambda e: report_error(e, name)))
    handle = JobHandle(name, worker, stop)
    _ACTIVE[viewer] = handle

    if owner is not None:
        owner.destroyed.connect(lambda *_: (alive.clear(), stop.set()))

    def release() -> None:
        handle.done = True
        if _ACTIVE.get(viewer) is handle:
            del _ACTIVE[viewer]

    worker.yielded.connect(guarded(on_progress))
    worker.returned.connect(guarded(on_result))
    worker.finished.connect(release)
    worker.finished.connect(guarded(on_finish))
    worker.start()
    return handle
