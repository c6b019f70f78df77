"""Predict and measure many tomograms as dask.distributed tasks, resumably, into one table.

Each tomogram is one task (:func:`process_tomogram`): it does what ``napari-cryoli predict`` and
``napari-cryoli measure`` do and writes ``<name>.seg.mrc`` then ``<name>.report.json`` into the
output folder, each atomically; the report, written last, records what it was made from, so a
rerun skips a tomogram whose outputs are complete and made from the same tomogram, model and
settings (:func:`is_finished`). A failing tomogram becomes a row of the table, not the end of the
batch. :func:`run_batch` is a job: the CLI, the Batch widget and tests drive it the same way, on a
local cluster (:func:`open_client`) or on any running scheduler given by address.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import CryoliError, FileFormatError, InputError
from ..jobs import Job, Progress, run_job, stop_requested
from ..measure.report import CSV_COLUMNS, MeasureSettings

if TYPE_CHECKING:
    from distributed import Client, Future

    from ..segment import SegmentationModel

#: The dataset table: where each row comes from, then the report's per-dendrite columns.
DATASET_COLUMNS = ("tomogram", "condition", "status", "error", "path", *CSV_COLUMNS)

#: The table every batch writes into its output folder.
DATASET_TABLE = "dataset.csv"

Status = Literal["done", "skipped", "failed", "not run"]


@dataclass(frozen=True)
class BatchItem:
    """One tomogram of a batch: its file, its condition and the name of its outputs."""

    tomogram: Path
    condition: str = ""
    name: str = ""

    def segmentation(self, out_dir: Path) -> Path:
        return out_dir / f"{self.name}.seg.mrc"

    def report(self, out_dir: Path) -> Path:
        return out_dir / f"{self.name}.report.json"

    def zarr(self, out_dir: Path) -> Path:
        return out_dir / f"{self.name}.seg.ome.zarr"


@dataclass(frozen=True)
class BatchConfig:
    """What every tomogram of a batch goes through, and where the outputs go."""

    model: Path
    out_dir: Path
    device: str = "cpu"
    tile: int | None = None
    tta: bool = False
    extended_threshold_nm: float = MeasureSettings.extended_threshold_nm  # its default
    #: Also write each segmentation as OME-Zarr (``<name>.seg.ome.zarr``) for lazy viewing.
    zarr: bool = False


@dataclass(frozen=True)
class TomogramResult:
    """What became of one tomogram; ``seconds`` is the time its task took (0 when skipped)."""

    item: BatchItem
    status: Status
    error: str = ""
    seconds: float = 0.0
    n_dendrites: int = 0
    worker: str = ""


@dataclass(frozen=True)
class BatchResult:
    """Every tomogram's fate in input order, the dataset table and whether the batch stopped."""

    results: tuple[TomogramResult, ...]
    table: Path
    stopped: bool = False
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)


# --- planning ----------------------------------------------------------------------------------


def plan_batch(
    tomograms: Sequence[str | os.PathLike],
    *,
    condition: str = "",
    conditions: dict[str, str] | None = None,
) -> tuple[BatchItem, ...]:
    """The items of a batch: absolute paths, conditions and unique output names.

    ``conditions`` maps a tomogram (its path as given, its absolute path, its file name or its
    output name) to its condition; tomograms it does not name take ``condition``. Output names
    are the file stems, prefixed by as many parent folders as it takes to tell them apart
    (``fresh_0/tomogram.mrc`` and ``fresh_1/tomogram.mrc`` give ``fresh_0_tomogram`` and
    ``fresh_1_tomogram``).
    """
    if not tomograms:
        raise InputError("no tomograms given")
    paths = [Path(t).expanduser().absolute() for t in tomograms]
    seen: set[Path] = set()
    for given, path in zip(tomograms, paths):
        if path in seen:
            raise InputError(f"{given} is given twice")
        seen.add(path)
        if not path.is_file():
            raise FileFormatError(f"no tomogram at {given}")
    names = _unique_names(paths)
    conditions = conditions or {}
    items = []
    for given, path, name in zip(tomograms, paths, names):
        keys = (str(given), str(path), path.name, name)
        cond = next((conditions[k] for k in keys if k in conditions), condition)
        items.append(BatchItem(path, cond, name))
    return tuple(items)


def _unique_names(paths: list[Path]) -> list[str]:
    """File stems; where stems collide, as many parent folders as it takes, joined by '_'."""

    def stem(p: Path) -> str:
        name = p.name
        for suffix in (".gz", ".bz2"):
            name = name.removesuffix(suffix)
        return name.rsplit(".", 1)[0] if "." in name else name

    def named(p: Path, depth: int) -> str:
        parents = p.parent.parts[1:]  # never the root
        return "_".join([*parents[len(parents) - depth:], stem(p)] if depth else [stem(p)])

    depths = [0] * len(paths)
    while True:
        names = [named(p, d) for p, d in zip(paths, depths)]
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            return names
        for i, n in enumerate(names):
            if n in clashes:
                if depths[i] >= len(paths[i].parent.parts) - 1:
                    raise InputError(f"the tomograms named {n} cannot be told apart")
                depths[i] += 1


def read_conditions(path: str | os.PathLike) -> dict[str, str]:
    """A CSV with ``tomogram`` and ``condition`` columns, as a mapping (or ``FileFormatError``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileFormatError(f"no conditions table at {path}") from None
    except UnicodeDecodeError:
        text = ""
    except OSError as e:
        raise FileFormatError(f"could not read the conditions table {path}: {e}") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"tomogram", "condition"} <= set(reader.fieldnames):
        raise FileFormatError(f"{path.name} needs the columns 'tomogram' and 'condition'")
    return {row["tomogram"].strip(): (row["condition"] or "").strip() for row in reader
            if row.get("tomogram")}


def model_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 of a model file: outputs made with another model are not reused."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise FileFormatError(f"model file {path} does not exist") from None
    except OSError as e:
        raise FileFormatError(f"could not read the model {path}: {e.strerror or e}") from None
    return digest.hexdigest()


def provenance(item: BatchItem, config: BatchConfig, fingerprint: str) -> dict:
    """What a report records of its making; a rerun with the same record skips the tomogram."""
    return {
        "tomogram": str(item.tomogram),
        "tomogram_bytes": item.tomogram.stat().st_size,
        "model_sha256": fingerprint,
        "tile": config.tile,
        "tta": config.tta,
        "extended_threshold_nm": config.extended_threshold_nm,
    }


def is_finished(item: BatchItem, config: BatchConfig, fingerprint: str) -> bool:
    """Whether ``item``'s outputs are complete, readable and made as ``config`` would make them."""
    from ..io import read_labels
    from ..measure.report import read_report

    try:
        report = read_report(item.report(config.out_dir))
        if report.get("stopped") or report.get("batch") != provenance(item, config, fingerprint):
            return False
        seg = read_labels(item.segmentation(config.out_dir))
        if list(seg.data.shape) != report.get("shape"):
            return False
        if config.zarr:
            from .zarr import zarr_shape

            return list(zarr_shape(item.zarr(config.out_dir))) == report.get("shape")
    except (CryoliError, OSError):
        return False
    return True


# --- one tomogram (runs on a worker) -----------------------------------------------------------


@lru_cache(maxsize=2)
def _model(path: str, device: str, fingerprint: str) -> SegmentationModel:
    """The model, loaded once per worker process (the fingerprint tells a changed file)."""
    from ..segment import SegmentationModel

    return SegmentationModel.load(path, device=device)


def process_tomogram(item: BatchItem, config: BatchConfig, fingerprint: str) -> TomogramResult:
    """Predict and measure one tomogram into ``config.out_dir``; any failure becomes the result.

    The same steps as ``napari-cryoli predict`` then ``napari-cryoli measure``: the voxel size
    and origin of the tomogram go into the segmentation, the report is made from the
    segmentation file as written. Every file is written atomically, the report last.
    """
    start = time.perf_counter()
    worker = _worker_name()
    if is_finished(item, config, fingerprint):  # a task run twice (a worker lost) redoes nothing
        return TomogramResult(item, "skipped", worker=worker)
    try:
        n = _process(item, config, fingerprint)
    except Exception as e:  # noqa: BLE001 - one tomogram's failure is a row of the table
        return TomogramResult(item, "failed", _one_line(e), time.perf_counter() - start,
                              worker=worker)
    return TomogramResult(item, "done", "", time.perf_counter() - start, n, worker)


def _process(item: BatchItem, config: BatchConfig, fingerprint: str) -> int:
    from ..classes import DEFAULT_ONTOLOGY
    from ..cli import _nm
    from ..io import read_labels, read_mrc
    from ..measure.report import MeasureSettings, measure, write_report
    from ..segment import PredictConfig, PredictOutputs, predict
    from ..segment.calibration import describe_intensity

    out = config.out_dir
    image = read_mrc(item.tomogram)
    if image.kind != "volume":
        raise InputError(f"{item.tomogram.name} is not a 3D volume")
    model = _model(str(config.model), config.device, fingerprint)
    notes = [*image.warnings, *model.compatibility_warnings(DEFAULT_ONTOLOGY, image.voxel_size_nm)]
    outputs = PredictOutputs(labels=item.segmentation(out), voxel_size_nm=image.voxel_size_nm,
                             origin_nm=image.origin_nm)
    predict_config = PredictConfig(tile=config.tile, tta=config.tta, device=config.device,
                                   uncertainty=False)
    prediction = run_job(predict(image.data, model, predict_config, outputs=outputs,
                                 voxel_size_nm=image.voxel_size_nm))
    notes.append(f"intensity: {describe_intensity(prediction.intensity)}")
    if prediction.resampled_from_nm is not None:
        notes.append(f"resampled from {_nm(prediction.resampled_from_nm)} nm to the model's "
                     f"{_nm(model.voxel_size_nm)} nm voxels and back")
    volume = read_labels(item.segmentation(out))
    settings = MeasureSettings(extended_threshold_nm=config.extended_threshold_nm)
    report = run_job(measure(volume.data, volume.voxel_size_nm, settings,
                             notes=[*notes, *volume.warnings]))
    if config.zarr:
        from .zarr import write_ome_zarr

        write_ome_zarr(item.zarr(out), volume.data, voxel_size_nm=volume.voxel_size_nm,
                       origin_nm=volume.origin_nm, labels=True)
    write_report({**report.to_dict(), "batch": provenance(item, config, fingerprint)},
                 item.report(out))
    return len(report.dendrites)


def _one_line(error: BaseException) -> str:
    if isinstance(error, CryoliError):
        text = str(error)
    elif isinstance(error, MemoryError):
        text = "not enough memory for this volume"
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return ""


# --- the batch ---------------------------------------------------------------------------------


@contextmanager
def open_client(workers: int = 2, scheduler: str | None = None) -> Iterator[Client]:
    """A dask.distributed client: to the scheduler at ``scheduler``, or to a local cluster of
    ``workers`` single-threaded worker processes (dashboard on a free port of 127.0.0.1)."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise InputError(f"no dask scheduler answers at {scheduler} ({e})") from None
        with client:
            yield client
        return
    if workers < 1:
        raise InputError(f"a local cluster needs at least one worker, not {workers}")
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environment()}), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         host="127.0.0.1", dashboard_address="127.0.0.1:0",
                         silence_logs=logging.ERROR, preload=[__name__]) as cluster, \
            Client(cluster) as client:
        yield client


def worker_environment() -> dict:
    """What dask's nanny sets before starting a local worker, less ``MALLOC_TRIM_THRESHOLD_``.

    The single-thread settings (OMP_NUM_THREADS=1, ...: torch runs one thread per worker) stay.
    The malloc setting goes: it also fixes glibc's mmap threshold, so every large array of the
    prediction and measurement came from fresh, zeroed pages; a task took 2.2 s instead of 1.5 s
    (``benchmarks/batch_speedup.py``).
    """
    import dask

    environ = dask.config.get("distributed.nanny.pre-spawn-environ", {})
    return {k: v for k, v in environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}


def dask_setup(worker) -> None:
    """Run in each local worker process (its ``preload``): Ctrl-C in a terminal reaches the
    whole process group, and the command, not its workers, decides what to do with it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_batch(
    items: Sequence[BatchItem],
    config: BatchConfig,
    client: Client,
    stop: threading.Event | None = None,
) -> Job[BatchResult]:
    """Predict and measure ``items`` on ``client``'s workers, then write the dataset table.

    Checks the model and the output folder at once (``CryoliError`` before any work), then
    returns the job: it yields a progress record whenever a tomogram is finished, failed or
    found already done. When ``stop`` is set, the tomograms not finished are cancelled and listed
    as "not run" for the next run to complete; one that a worker had already started may still
    write its outputs (whole, never half), which the next run then finds and skips.
    """
    fingerprint = check_batch(config)
    return _run(tuple(items), config, client, fingerprint, stop)


def check_batch(config: BatchConfig) -> str:
    """Check the model and make the output folder (``CryoliError`` if either will not do);
    returns the model's fingerprint."""
    from ..segment import SegmentationModel

    fingerprint = model_fingerprint(config.model)
    SegmentationModel.load(config.model, device="cpu")  # a bad model: one error, not N rows
    _make_folder(config.out_dir)
    return fingerprint


def batch_on_cluster(
    items: Sequence[BatchItem],
    config: BatchConfig,
    workers: int = 2,
    scheduler: str | None = None,
    stop: threading.Event | None = None,
) -> Job[BatchResult]:
    """:func:`run_batch` on a cluster opened for it and closed after (as the Batch widget runs
    it); the first progress record carries the dashboard link in ``metrics["dashboard"]``."""
    fingerprint = check_batch(config)
    with open_client(workers, scheduler) as client:
        yield Progress(0, len(items), "cluster ready",
                       {"dashboard": client.dashboard_link, "scheduler": client.scheduler.address})
        return (yield from _run(tuple(items), config, client, fingerprint, stop))


def _run(items, config, client, fingerprint, stop) -> Job[BatchResult]:
    start = time.perf_counter()
    results: dict[str, TomogramResult] = {}
    todo = []
    for item in items:
        if is_finished(item, config, fingerprint):
            results[item.name] = TomogramResult(item, "skipped")
        else:
            todo.append(item)
    total = len(items)
    yield Progress(len(results), total, f"{len(results)} already done, {len(todo)} to do")
    futures: dict[Future, BatchItem] = {
        client.submit(process_tomogram, item, config, fingerprint, pure=False,
                      key=f"napari-cryoli-{item.name}-{os.urandom(4).hex()}"): item
        for item in todo
    }
    pending = set(futures)
    stopped = False
    while pending:
        if stop_requested(stop):
            stopped = True
            client.cancel(list(pending))
            break
        done = [f for f in pending if f.done()]
        if not done:
            time.sleep(0.1)
            continue
        for f in done:
            pending.discard(f)
            result = _collect(f, futures[f])
            results[result.item.name] = result
            f.release()  # else a worker lost later would have the scheduler redo it
        last = results[futures[done[-1]].name]
        failed = sum(r.status == "failed" for r in results.values())
        message = f"{last.item.name}: {last.status}" + (f" ({failed} failed)" if failed else "")
        yield Progress(len(results), total, message)
    ordered = tuple(results.get(i.name) or _unseen(i, config, fingerprint) for i in items)
    table = write_dataset_table(ordered, config.out_dir)
    return BatchResult(ordered, table, stopped, time.perf_counter() - start)


def _unseen(item: BatchItem, config: BatchConfig, fingerprint: str) -> TomogramResult:
    """A tomogram whose task was cancelled: done if its worker finished it all the same."""
    return TomogramResult(item, "done" if is_finished(item, config, fingerprint) else "not run")


def _collect(future: Future, item: BatchItem) -> TomogramResult:
    if future.status == "finished":
        return future.result()
    if future.status == "cancelled":
        return TomogramResult(item, "not run")
    error = future.exception()
    if type(error).__name__ == "KilledWorker":
        return TomogramResult(item, "failed", "the workers running it died (out of memory?)")
    return TomogramResult(item, "failed", _one_line(error))


def _make_folder(folder: Path) -> None:
    from ..cli import _check_folder

    _check_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileFormatError(f"could not create {folder}: {e.strerror or e}") from None


# --- the dataset table -------------------------------------------------------------------------


def dataset_rows(results: Sequence[TomogramResult], out_dir: Path) -> list[dict[str, str]]:
    """One row per dendrite of every measured tomogram (the report's CSV columns), one row for a
    tomogram without dendrites, failed or not run (its status and error say why)."""
    from ..measure.report import dendrite_table, read_report

    rows = []
    for r in results:
        head = {"tomogram": r.item.name, "condition": r.item.condition, "status": r.status,
                "error": r.error, "path": str(r.item.tomogram)}
        dendrites: list[dict[str, str]] = []
        if r.status in ("done", "skipped"):
            try:
                report = read_report(r.item.report(out_dir))
            except FileFormatError as e:
                head.update(status="failed", error=str(e))
            else:
                dendrites = list(csv.DictReader(io.StringIO(dendrite_table(report))))
        rows.extend({**head, **d} for d in dendrites) if dendrites else rows.append(head)
    return rows


def write_dataset_table(results: Sequence[TomogramResult], out_dir: Path) -> Path:
    """Write ``dataset.csv`` (atomically) from the reports in ``out_dir``; returns its path."""
    from ..io import atomic_write_bytes

    buf = io.StringIO()
    writer = csv.DictWriter(buf, DATASET_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(dataset_rows(results, out_dir))
    path = out_dir / DATASET_TABLE
    atomic_write_bytes(path, buf.getvalue().encode())
    return path


@dataclass(frozen=True)
class DatasetTable:
    """A dataset table read back: its rows (strings, as in the file)."""

    path: Path
    rows: tuple[dict[str, str], ...] = field(default=())


def read_dataset(path: str | os.PathLike) -> DatasetTable:
    """Read a ``dataset.csv`` (``FileFormatError`` when it is not one)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileFormatError(f"no dataset table at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"could not read the dataset table {path}: {e}") from None
    reader = csv.DictReader(io.StringIO(text))
    needed = {"tomogram", "condition", "status", "lih_volume_fraction"}
    if not reader.fieldnames or not needed <= set(reader.fieldnames):
        raise FileFormatError(f"{path.name} is not a napari-cryoli dataset table")
    return DatasetTable(path, tuple(reader))
