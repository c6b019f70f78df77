"""Nothing lost: killed saves, stopped or killed training and prediction, Ctrl-C on any command.

A process killed with SIGKILL gets no chance to clean up: what it leaves on disk is what a crash
or a power cut leaves (short of the kernel's own buffers). Ctrl-C (SIGINT) asks a command to stop
after its current step: it ends with status 130 and writes nothing half-way.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

from napari_cryoli.annotations import autosave_location, load_annotations, save_annotations
from napari_cryoli.io import read_labels, write_mrc
from napari_cryoli.io.atomic import STALE_AFTER_S, TMP_SUFFIX
from napari_cryoli.jobs import run_job
from napari_cryoli.segment import SegmentationModel

from .commands import Running, entries
from .damaged import VOXEL_NM

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")

KILLS = 20
SHAPE = (64, 128, 256)  # 2 MiB of labels: a save takes a few tens of milliseconds

AUTOSAVE_LOOP = """
import numpy as np
from napari_cryoli.annotations import autosave_location, save_annotations

folder, first, shape = sys.argv[1], int(sys.argv[2]), tuple(map(int, sys.argv[3:6]))
location = autosave_location(None, "tomo", folder=folder)
labels = np.zeros(shape, np.uint8)
for version in range(first, first + 10**6):
    labels[...] = version % 5 + 1
    labels.flat[:4] = np.frombuffer(version.to_bytes(4, "little"), np.uint8)
    save_annotations(location, labels, voxel_size_nm=(1.0, 1.0, 1.0))
    print(version, flush=True)
"""


def _version(labels: np.ndarray) -> int:
    """The version a save wrote, checked against the whole volume it must hold."""
    version = int.from_bytes(labels.flat[:4].tobytes(), "little")
    expected = np.full(labels.shape, version % 5 + 1, np.uint8)
    expected.flat[:4] = labels.flat[:4]
    assert np.array_equal(labels, expected), f"version {version} is not complete"
    return version


def _temporaries(folder) -> list[str]:
    return [name for name in entries(folder) if name.endswith(TMP_SUFFIX)]


def test_autosave_killed_at_random_moments_always_leaves_a_complete_copy(tmp_path):
    rng = np.random.default_rng(6)
    location = autosave_location(None, "tomo", folder=tmp_path)
    restored_from = []
    for kill in range(KILLS):
        run = Running.script(AUTOSAVE_LOOP, str(tmp_path), str(kill * 10**5), *map(str, SHAPE))
        run.wait_for(r"\d+\n")  # one save of this run finished
        time.sleep(rng.uniform(0.0, 0.2))
        run.process.kill()
        status, out, _ = run.finish()
        assert status == -signal.SIGKILL
        last_saved = int(out.split()[-1])
        saved = load_annotations(location, SHAPE)
        # The newest complete save: the last one reported, or one that ended just before the
        # kill but after its report was due.
        assert _version(saved.labels) in (last_saved, last_saved + 1), (kill, last_saved)
        for copy in (location.labels, location.backup):  # never a partial file under a name
            if copy.exists():
                _version(np.asarray(read_labels(copy).data))
        if location.meta.exists():
            json.loads(location.meta.read_text())
        restored_from.append(saved.path.name)
    # Kills land at any point of a save, including between its two renames (main file gone,
    # backup restored); leftovers of killed writes go at the next save once they are stale.
    leftovers = _temporaries(tmp_path)
    for name in leftovers:
        old = time.time() - 2 * STALE_AFTER_S
        os.utime(tmp_path / name, (old, old))
    save_annotations(location, np.ones(SHAPE, np.uint8), voxel_size_nm=(1.0, 1.0, 1.0))
    assert _temporaries(tmp_path) == []
    assert len(restored_from) == KILLS


# --- training --------------------------------------------------------------------------------

TRAINING = """
import numpy as np
from napari_cryoli.io import read_labels, read_mrc
from napari_cryoli.jobs import run_job
from napari_cryoli.segment import TrainConfig, train

image, labels = read_mrc(sys.argv[1]).data, read_labels(sys.argv[2]).data
sparse = np.zeros_like(labels)
sparse[::2, ::3, ::3] = labels[::2, ::3, ::3]
config = TrainConfig(base_channels=4, depth=2, patch_size=16, batch_size=1, minutes=None,
                     max_steps=10**6, eval_every=1, max_val_patches=1, device="cpu")
job = train(image, sparse, config, checkpoint_path=sys.argv[3])
run_job(job, lambda p: print("step", p.step, flush=True))
"""


def test_training_killed_leaves_a_loadable_checkpoint(good, tmp_path):
    """Killed at random while it checkpoints the best model after every step."""
    rng = np.random.default_rng(2)
    checkpoint = tmp_path / "model.pt"
    for _ in range(2):
        run = Running.script(TRAINING, str(good.tomogram), str(good.labels), str(checkpoint))
        run.wait_for(r"step 1\n")  # about a step a second, a checkpoint after each
        time.sleep(rng.uniform(0.0, 1.0))
        run.process.kill()
        run.finish()
        model = SegmentationModel.load(checkpoint, device="cpu")
        assert model.ontology.names == ("background", "Li", "LiH", "Cu", "SEI")


def test_training_stopped_keeps_a_loadable_model(good, tmp_path):
    """The Stop button and Ctrl-C set the job's stop event: the run ends after its step."""
    from napari_cryoli.segment import TrainConfig, train

    checkpoint = tmp_path / "model.pt"
    stop = threading.Event()
    config = TrainConfig(
        base_channels=4,
        depth=2,
        patch_size=16,
        batch_size=1,
        minutes=5,
        eval_every=1,
        max_val_patches=1,
        device="cpu",
    )
    sparse = np.zeros_like(good.label_values)
    sparse[::2, ::3, ::3] = good.label_values[::2, ::3, ::3]
    job = train(good.image_values, sparse, config, checkpoint_path=checkpoint, stop=stop)
    result = run_job(job, lambda p: p.step == 2 and stop.set())
    assert result.stopped and result.summary["steps"] == 2
    saved = SegmentationModel.load(checkpoint, device="cpu")
    assert saved.summary["stopped"] is True and saved.summary["steps"] == 2
    assert entries(tmp_path) == ["model.pt"]


# --- prediction ------------------------------------------------------------------------------


@pytest.fixture
def deep_tomogram(good, tmp_path):
    """A tomogram of many tiles for the small model (16-voxel tiles): seconds of prediction."""
    path = tmp_path / "deep.mrc"
    write_mrc(path, np.tile(good.image_values, (4, 3, 3)), voxel_size_nm=VOXEL_NM)
    return path


def _predict(good, tomogram, out):
    return Running.cli(
        "predict",
        tomogram,
        "--model",
        good.model,
        "--out",
        out / "seg.mrc",
        "--uncertainty",
        out / "unc.mrc",
        "--probabilities",
        out / "p.mrc",
        "--device",
        "cpu",
        "--tile",
        "16",
    )


def test_prediction_stopped_with_ctrl_c_leaves_no_file(good, deep_tomogram, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    run = _predict(good, deep_tomogram, out)
    run.wait_for(r"predict \[")
    run.process.send_signal(signal.SIGINT)
    status, _, err = run.finish()
    assert status == 130, err
    assert "stopped, nothing written" in err and "Traceback" not in err
    assert entries(out) == []


def test_prediction_killed_leaves_nothing_under_the_final_names(good, deep_tomogram, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    run = _predict(good, deep_tomogram, out)
    run.wait_for(r"predict \[")
    run.process.kill()
    run.finish()
    assert [name for name in entries(out) if not name.startswith(".")] == []
    # The hidden temporaries a kill leaves go with the next prediction to the same names, once
    # stale (a live one is written to all along).
    for name in entries(out):
        old = time.time() - 2 * STALE_AFTER_S
        os.utime(out / name, (old, old))
    tiny = tmp_path / "tiny.mrc"
    write_mrc(tiny, good.image_values, voxel_size_nm=VOXEL_NM)
    status, _, err = _predict(good, tiny, out).finish()
    assert status == 0, err
    assert [name for name in entries(out) if name.startswith(".")] == []


# --- Ctrl-C on the other commands ------------------------------------------------------------


def test_reconstruct_stopped_with_ctrl_c_writes_nothing(tmp_path):
    rng = np.random.default_rng(0)
    series = tmp_path / "series.st"
    write_mrc(series, rng.random((61, 384, 128), np.float32), voxel_size_nm=1.0, kind="stack")
    angles = tmp_path / "series.tlt"
    angles.write_text("\n".join(str(a) for a in np.linspace(-60, 60, 61)))
    out = tmp_path / "out"
    out.mkdir()
    run = Running.cli(
        "reconstruct", series, "--angles", angles, "--out", out / "rec.mrc", "--device", "cpu"
    )
    run.wait_for(r"reconstruct \[#")  # one chunk of slices done
    run.process.send_signal(signal.SIGINT)
    status, _, err = run.finish()
    assert status == 130 and "stopped, nothing written" in err, err
    assert entries(out) == []


def test_measure_stopped_with_ctrl_c_writes_nothing(tmp_path):
    z, y, x = np.indices((128, 192, 192))
    r = np.sqrt((z - 64) ** 2 + (y - 96) ** 2 + (x - 96) ** 2)
    labels = np.where(r < 60, 5, 1).astype(np.uint8)
    labels[r < 50] = 2  # a ball of Li in a shell of SEI: many surface points to measure
    seg = tmp_path / "seg.mrc"
    write_mrc(seg, labels, voxel_size_nm=1.0)
    out = tmp_path / "out"
    out.mkdir()
    run = Running.cli("measure", seg, "--out", out / "report.json", "--csv", out / "table.csv")
    run.wait_for(r"measure \[")
    run.process.send_signal(signal.SIGINT)
    status, _, err = run.finish()
    assert status == 130 and "stopped, nothing written" in err, err
    assert entries(out) == []
