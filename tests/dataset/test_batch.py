"""Batch prediction and measurement on a real dask.distributed cluster."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_cryoli.cli import main
from napari_cryoli.dataset.batch import (
    DATASET_COLUMNS,
    BatchConfig,
    plan_batch,
    read_conditions,
    run_batch,
)
from napari_cryoli.errors import FileFormatError, InputError
from napari_cryoli.io import read_labels, read_mrc, write_mrc
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import read_report


def _table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _stamps(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.startswith(".")}


@pytest.fixture
def with_origin(tiny_series, tmp_path) -> Path:
    """The 24 h tomogram with an origin and anisotropic voxels, which must reach every output."""
    image = read_mrc(tiny_series[1])
    path = tmp_path / "shifted" / "tomogram.mrc"
    path.parent.mkdir()
    write_mrc(path, np.asarray(image.data), voxel_size_nm=(4.0, 4.2, 4.2),
              origin_nm=(12.0, -40.0, 80.0))
    return path


def test_batch_writes_resumes_and_records_failures(tiny_series, with_origin, model_path,
                                                   client, tmp_path):
    bad = tmp_path / "broken.mrc"
    bad.write_bytes(b"not an MRC file at all" * 10)
    tomograms = [*tiny_series, with_origin, bad]
    conditions = {"fresh_0/tomogram.mrc": "fresh", str(tiny_series[1]): "24h",
                  "7d_0_tomogram": "7d"}
    items = plan_batch(tomograms, condition="other", conditions=conditions)
    names = [i.name for i in items]
    assert names == ["fresh_0_tomogram", "24h_0_tomogram", "7d_0_tomogram", "shifted_tomogram",
                     "broken"]
    # Keys match the path as given or absolute, the file name or the output name; a path's
    # tail is none of these.
    assert [i.condition for i in items] == ["other", "24h", "7d", "other", "other"]

    out = tmp_path / "out"
    config = BatchConfig(model=model_path, out_dir=out)
    records = []
    result = run_job(run_batch(items, config, client), records.append)
    assert [r.status for r in result.results] == ["done"] * 4 + ["failed"]
    assert "broken.mrc" in result.results[-1].error
    assert records[-1].done == records[-1].total == 5
    assert {r.worker for r in result.results[:4]} <= {str(w["name"]) for w in
                                                      client.scheduler_info()["workers"].values()}

    # Each segmentation keeps its tomogram's grid; each report is what `measure` makes of it.
    for item in items[:4]:
        image, seg = read_mrc(item.tomogram), read_labels(item.segmentation(out))
        assert seg.data.shape == image.data.shape and seg.data.dtype == np.uint8
        assert np.allclose(seg.voxel_size_nm, image.voxel_size_nm)
        assert np.allclose(seg.origin_nm, image.origin_nm)
    assert np.allclose(read_labels(items[3].segmentation(out)).origin_nm, (12.0, -40.0, 80.0))
    alone = tmp_path / "alone.json"
    assert main(["measure", str(items[2].segmentation(out)), "--out", str(alone)]) == 0
    ours, theirs = read_report(items[2].report(out)), read_report(alone)
    assert ours.pop("batch")["model_sha256"]
    ours.pop("notes"), theirs.pop("notes")
    assert ours == theirs

    rows = _table(result.table)
    assert list(rows[0]) == list(DATASET_COLUMNS)
    for item in items[:4]:
        report = read_report(item.report(out))
        mine = [r for r in rows if r["tomogram"] == item.name]
        assert len(mine) == max(1, report["n_dendrites"])
        assert {r["condition"] for r in mine} == {item.condition}
        for row, d in zip(mine, report["dendrites"]):
            assert int(row["id"]) == d["id"]
            assert float(row["volume_nm3"]) == pytest.approx(d["volume_nm3"])
    failed = [r for r in rows if r["tomogram"] == "broken"]
    assert len(failed) == 1 and failed[0]["status"] == "failed" and failed[0]["id"] == ""

    # A rerun skips what is finished and valid, retries the failure, touches nothing else.
    before = _stamps(out)
    again = run_job(run_batch(items, config, client))
    assert [r.status for r in again.results] == ["skipped"] * 4 + ["failed"]
    after = _stamps(out)
    assert {k: v for k, v in after.items() if k != "dataset.csv"} == {
        k: v for k, v in before.items() if k != "dataset.csv"}
    assert [{**r, "status": "done"} if r["status"] == "skipped" else r
            for r in _table(again.table)] == rows

    # A missing report, a damaged segmentation or another model: only those are redone.
    items[0].report(out).unlink()
    items[1].segmentation(out).write_bytes(b"\0" * 100)
    third = run_job(run_batch(items, config, client))
    assert [r.status for r in third.results] == ["done", "done", "skipped", "skipped", "failed"]
    assert _stamps(out)[items[2].report(out).name] == before[items[2].report(out).name]
    other_model = tmp_path / "copy.pt"
    shutil.copyfile(model_path, other_model)
    with open(other_model, "ab") as f:  # same weights, another file: another fingerprint
        f.write(b"\0")
    assert not any(r.status == "skipped" for r in run_job(run_batch(
        items[:1], BatchConfig(model=other_model, out_dir=tmp_path / "o2"), client)).results)


def test_stop_cancels_what_has_not_started(tiny_series, model_path, client, tmp_path):
    import threading

    items = plan_batch(tiny_series)
    config = BatchConfig(model=model_path, out_dir=tmp_path / "out")
    stop = threading.Event()
    job = run_batch(items, config, client, stop)
    next(job)
    stop.set()  # before any task could finish: all are cancelled
    result = run_job(job)
    assert result.stopped
    assert [r.status for r in result.results] == ["not run"] * 3
    rows = _table(result.table)
    assert [r["status"] for r in rows] == ["not run"] * 3
    time.sleep(1)  # a task a worker had begun may still finish: then it is whole
    for item in items:
        if item.report(config.out_dir).exists():
            assert read_report(item.report(config.out_dir))["shape"] == [32, 64, 64]
    rerun = run_job(run_batch(items, config, client))
    assert {r.status for r in rerun.results} <= {"done", "skipped"}


def test_worker_killed_mid_batch_loses_nothing(tiny_series, model_path, tmp_path):
    from napari_cryoli.dataset.batch import open_client

    series = [*tiny_series, tiny_series[0]]  # four tasks: some finish before the kill, some after
    copies = []
    for i, path in enumerate(series):
        copy = tmp_path / "in" / f"t{i}.mrc"
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, copy)
        copies.append(copy)
    items = plan_batch(copies)
    config = BatchConfig(model=model_path, out_dir=tmp_path / "out")
    with open_client(workers=2) as c:
        job = run_batch(items, config, c)
        killed = False
        while True:
            try:
                p = next(job)
            except StopIteration as end:
                result = end.value
                break
            if p.done >= 1 and not killed:
                pids = c.run(os.getpid)
                os.kill(next(iter(pids.values())), signal.SIGKILL)
                killed = True
                finished = _stamps(config.out_dir)
    assert killed
    # Outputs finished before the kill are untouched; every output present is whole.
    after = _stamps(config.out_dir)
    complete = [i for i in items if i.report(config.out_dir).name in finished]
    assert complete
    for i in complete:
        for path in (i.report(config.out_dir), i.segmentation(config.out_dir)):
            assert after[path.name] == finished[path.name]
    # A task lost with its worker runs again elsewhere; if the lost worker had finished writing,
    # the second run finds the outputs and skips.
    for r in result.results:
        assert r.status in ("done", "skipped", "failed"), result.results
        if r.status != "failed":
            assert read_report(r.item.report(config.out_dir))["shape"] == [32, 64, 64]
    with open_client(workers=2) as c:
        rerun = run_job(run_batch(items, config, c))
    redo = [r.item.name for r in rerun.results if r.status == "done"]
    assert redo == [r.item.name for r in result.results if r.status == "failed"]
    assert all(r.status in ("done", "skipped") for r in rerun.results)


def test_scheduler_started_separately_gives_identical_outputs(tiny_series, model_path,
                                                              client, tmp_path):
    """`dask scheduler` + `dask worker` as their own processes, then `napari-cryoli batch
    --scheduler`: the same bytes as on the local cluster."""
    local = tmp_path / "local"
    remote = tmp_path / "remote"
    items = plan_batch(tiny_series[:2])
    run_job(run_batch(items, BatchConfig(model=model_path, out_dir=local), client))

    bin_dir = Path(sys.executable).parent
    file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    scheduler = subprocess.Popen(
        [bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--dashboard-address", "127.0.0.1:0", "--scheduler-file", file],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = subprocess.Popen(
            [bin_dir / "dask", "worker", "--scheduler-file", file, "--nthreads", "1",
             "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        code = main(["batch", *map(str, tiny_series[:2]), "--model", str(model_path),
                     "--out-dir", str(remote), "--scheduler", address])
    finally:
        for p in (worker, scheduler):
            if p is not None:
                p.send_signal(signal.SIGINT)
        for p in (worker, scheduler):
            if p is not None:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
    assert code == 0
    names = sorted(p.name for p in local.iterdir() if not p.name.startswith("."))
    assert names == sorted(p.name for p in remote.iterdir() if not p.name.startswith("."))
    assert len(names) == 5
    for name in names:
        a, b = (local / name).read_bytes(), (remote / name).read_bytes()
        if name.endswith(".mrc"):  # the header's text labels carry the time of writing
            a, b = a[:224] + a[1024:], b[:224] + b[1024:]
        assert a == b, name


def test_cli_batch(tiny_series, model_path, client, tmp_path, capsys):
    table = tmp_path / "conditions.csv"
    table.write_text("tomogram,condition\n" + "".join(
        f"{p},{p.parent.name.split('_')[0]}\n" for p in tiny_series))
    assert read_conditions(table)[str(tiny_series[0])] == "fresh"
    out = tmp_path / "out"
    zarr = importlib.util.find_spec("ome_zarr") is not None  # Python 3.11 or later
    argv = ["batch", *map(str, tiny_series), "--model", str(model_path), "--out-dir", str(out),
            "--conditions", str(table), "--workers", "1", *(["--zarr"] if zarr else [])]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "dashboard: http://127.0.0.1:" in err and "batch [" in err
    assert "3 done, 0 already done, 0 failed" in err
    rows = _table(out / "dataset.csv")
    assert rows[0]["condition"] == "fresh" and rows[-1]["condition"] == "7d"
    if zarr:
        from napari_cryoli.dataset.zarr import zarr_shape

        assert zarr_shape(out / "fresh_0_tomogram.seg.ome.zarr") == (32, 64, 64)
    rerun = [a for a in argv if a not in ("--workers", "1")]
    assert main([*rerun, "--scheduler", client.scheduler.address]) == 0
    assert "0 done, 3 already done" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "{model}", "--out-dir", "{out}", "missing.mrc"], "no tomogram at"),
        (["--model", "{tmp}/none.pt", "--out-dir", "{out}", "{tomo}"], "does not exist"),
        (["--model", "{model}", "--out-dir", "{out}", "{tomo}", "{tomo}"], "given twice"),
        (["--model", "{model}", "--out-dir", "{tomo}", "{tomo}"], "not a folder"),
        (["--model", "{model}", "--out-dir", "{out}", "--conditions", "{tomo}", "{tomo}"],
         "'tomogram' and 'condition'"),
        (["--model", "{model}", "--out-dir", "{out}", "--workers", "0", "{tomo}"],
         "at least one worker"),
    ],
)
def test_cli_batch_refuses_bad_input(argv, message, tiny_series, model_path, tmp_path, capsys):
    fill = {"model": model_path, "out": tmp_path / "out", "tmp": tmp_path,
            "tomo": tiny_series[0]}
    assert main(["batch", *(a.format(**fill) for a in argv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_plan_errors(tmp_path):
    with pytest.raises(InputError, match="no tomograms"):
        plan_batch([])
    with pytest.raises(FileFormatError, match="no conditions table"):
        read_conditions(tmp_path / "none.csv")


def test_ctrl_c_stops_cleanly(tiny_series, model_path, tmp_path):
    """Ctrl-C in a terminal reaches the command and its worker processes alike: the batch
    stops with status 130, lists what did not run, and nobody prints a traceback."""
    out = tmp_path / "out"
    many = []
    for i in range(4):
        copy = tmp_path / f"t{i}.mrc"
        shutil.copyfile(tiny_series[i % 3], copy)
        many.append(str(copy))
    cmd = [sys.executable, "-m", "napari_cryoli.cli", "batch", *many, "--model", str(model_path),
           "--out-dir", str(out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120  # until a worker is writing a segmentation
    while not any(out.glob(".*.seg.mrc.*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "not run; wrote" in err
    rows = _table(out / "dataset.csv")
    assert {r["status"] for r in rows} <= {"done", "not run"} and len(rows) >= 4


def _worker_settings() -> tuple:
    import torch

    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS"), os.environ.get(
        "MALLOC_TRIM_THRESHOLD_")


def test_local_workers_run_one_thread_with_glibc_defaults(client):
    """One torch thread per worker process; dask's malloc trim setting, which made each task
    half as slow again, is not passed on."""
    settings = client.run(_worker_settings)
    assert len(settings) == 2
    assert set(settings.values()) == {(1, "1", None)}
