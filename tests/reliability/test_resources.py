"""Resources: volumes larger than the memory allowed, a disk that fills up, no GPU.

Memory limits use RLIMIT_DATA in a child process: it counts the heap and private mappings but
not a read-only memory-mapped file, so a reader that maps a file passes whatever its size while
one that copies it fails. A full disk is a real one where the system allows it (a tiny tmpfs in
a user namespace of the child's own), and a file-size limit (RLIMIT_FSIZE) everywhere.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_cryoli.io import open_mrc_for_writing

from .commands import (
    can_mount_tmpfs,
    entries,
    error_message,
    result,
    run_cli,
    run_on_full_disk,
    run_python,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_DATA/RLIMIT_FSIZE and /proc semantics"
)

MIB = 2**20


def _big_file(path: Path, shape: tuple[int, ...], dtype, labels: bool = False) -> Path:
    """A volume file of ``shape`` written by the streaming writer (zeros, so quick to make)."""
    with open_mrc_for_writing(path, shape, dtype, voxel_size_nm=1.0, labels=labels) as a:
        a[shape[0] // 2] = 1
    return path


@pytest.fixture(scope="module")
def big_tomogram(tmp_path_factory) -> Path:
    """256 MiB of float32: four times what the children below may hold."""
    return _big_file(tmp_path_factory.mktemp("big") / "big.mrc", (256, 512, 512), np.float32)


@pytest.fixture(scope="module")
def big_labels(tmp_path_factory) -> Path:
    """128 MiB of labels (a thin slab of Li in the middle)."""
    return _big_file(tmp_path_factory.mktemp("big") / "seg.mrc", (512, 512, 512), np.uint8, True)


def test_reader_maps_a_tomogram_larger_than_the_memory_allowed(big_tomogram):
    done = run_python(
        """
        import numpy as np
        from napari_cryoli.io import read_mrc
        from napari_cryoli._napari.reader import get_reader

        path = sys.argv[1]
        reader = get_reader(path)
        limit_data(64 * 2**20)
        volume = read_mrc(path)
        (data, kwargs, kind), = reader(path)
        report(mapped=isinstance(volume.data, np.memmap) and isinstance(data, np.memmap),
               shape=list(data.shape), kind=kind, middle=float(data[128].mean()))
        """,
        str(big_tomogram),
    )
    assert result(done) == {
        "mapped": True,
        "shape": [256, 512, 512],
        "kind": "image",
        "middle": 1.0,
    }


def test_measure_on_labels_larger_than_the_memory_allowed_ends_in_one_line(big_labels, tmp_path):
    out = tmp_path / "report.json"
    done = run_python(
        """
        limit_data(4 * 2**20)  # measure streams in ~10 MiB; 4 leaves it short
        status, err = run_cli("measure", sys.argv[1], "--out", sys.argv[2])
        report(status=status, err=err)
        """,
        str(big_labels),
        str(out),
    )
    found = result(done)
    lines = [line for line in found["err"].splitlines() if line.strip()]
    assert found["status"] == 2 and len(lines) == 1, found
    assert re.match(r"napari-cryoli measure: error: not enough memory", lines[0])
    assert entries(tmp_path) == []


def test_measure_streams_labels_larger_than_the_memory_allowed(big_labels, tmp_path):
    out = tmp_path / "report.json"
    done = run_python(
        """
        limit_data(64 * 2**20)
        status, err = run_cli("measure", sys.argv[1], "--out", sys.argv[2])
        report(status=status, err=err)
        """,
        str(big_labels),
        str(out),
    )
    assert result(done)["status"] == 0
    assert json.loads(out.read_text())["volumes_nm3"]["Li"] == 0


PREDICT_STREAMING = """
import numpy as np
import torch
from pathlib import Path
from napari_cryoli.io import read_mrc
from napari_cryoli.jobs import run_job
from napari_cryoli.segment import Normalisation, PredictConfig, PredictOutputs, SegmentationModel, predict
from napari_cryoli.segment.network import Architecture


class PerVoxel(torch.nn.Module):
    '''A one-voxel network: prediction's own memory is measured here, not a U-Net's.'''

    def __init__(self):
        super().__init__()
        self.arch = Architecture(5, base_channels=1, depth=1, smoothing_sigmas=())
        self.conv = torch.nn.Conv3d(1, 5, 1)

    def forward(self, x):
        return self.conv(x)


torch.manual_seed(0)
model = SegmentationModel(PerVoxel(), normalisation=Normalisation(0.0, 1.0), patch_size=32)
image = read_mrc(sys.argv[1]).data
out = Path(sys.argv[2])
config = PredictConfig(tile=32, overlap=0.0, batch_size=1, device="cpu")
run_job(predict(image[:32], model, config))  # torch's first-call allocations, before the limit
limit_data(int(sys.argv[3]))
outputs = PredictOutputs(labels=out / "seg.mrc", uncertainty=out / "unc.mrc")
prediction = run_job(predict(image, model, config, outputs=outputs))
report(tiles=prediction.tiles, shape=list(prediction.labels.shape),
       classes=np.unique(prediction.labels[::64]).tolist())
"""


def test_predict_streams_a_tomogram_larger_than_the_memory_allowed(tmp_path):
    image = _big_file(tmp_path / "deep.mrc", (2048, 128, 128), np.float32)  # 128 MiB
    out = tmp_path / "out"
    out.mkdir()
    # It runs in 24 MiB (with room to spare at 48 MiB): a third of the image.
    done = run_python(PREDICT_STREAMING, str(image), str(out), str(48 * MIB))
    found = result(done)
    assert found["shape"] == [2048, 128, 128] and found["tiles"] == 64 * 4 * 4
    assert entries(out) == ["seg.mrc", "unc.mrc"]


# --- a disk that fills up --------------------------------------------------------------------

FULL_DISK = """
import shutil
from pathlib import Path
import numpy as np
from napari_cryoli.annotations import autosave_location, load_annotations, save_annotations
from napari_cryoli.errors import FileFormatError
from napari_cryoli.io import open_mrc_for_writing, read_mrc

disk = Path(sys.argv[1])
seg, series, angles, old_labels, tomogram, model = sys.argv[2:8]
mode = sys.argv[8]
found = {}


def scenario(name, old, act, room=0):
    '''Put ``old`` files on the disk, leave it ``room`` bytes, ``act``; record what is left.'''
    for p in disk.iterdir():
        p.unlink()
    for rel, content in old.items():
        (disk / rel).write_bytes(content)
    before = {rel: (disk / rel).read_bytes() for rel in old}
    if mode == "full":
        fill_disk(disk, room)
    try:
        outcome = act()
    except FileFormatError as e:
        outcome = {"error": str(e)}
    except Exception as e:  # anything else is a bug the parent reports
        outcome = {"unexpected": f"{type(e).__name__}: {e}"}
    found[name] = {
        "outcome": outcome,
        "intact": all((disk / rel).read_bytes() == b for rel, b in before.items()),
        "entries": sorted(p.name for p in disk.iterdir() if p.name != "filler"),
    }


def cli(*args):
    status, err = run_cli(*args)
    return {"status": status, "err": err}


def autosave():
    location = autosave_location(None, "tomo", folder=disk)
    save_annotations(location, np.full((12, 20, 24), 3, np.uint8), voxel_size_nm=(1, 1, 1))
    return {"saved": True}


def save_model():
    import torch
    from napari_cryoli.segment import Normalisation, SegmentationModel

    torch.manual_seed(0)
    SegmentationModel.create(base_channels=4, depth=2, normalisation=Normalisation(0.0, 1.0),
                             device="cpu").save(disk / "model.pt")
    return {"saved": True}


def streamed():
    with open_mrc_for_writing(disk / "seg.mrc", (64, 64, 256), np.uint8,
                              voxel_size_nm=1.0, labels=True) as a:
        a[:] = 2
    return {"saved": True}


if mode == "limit":
    limit_file_size(2000)  # the old files below are smaller, every new one larger
scenario("measure report", {"report.json": b'{"old": true}'},
         lambda: cli("measure", seg, "--out", disk / "report.json"))
scenario("reconstructed tomogram", {"rec.mrc": b"old tomogram"},
         lambda: cli("reconstruct", series, "--angles", angles, "--out", disk / "rec.mrc"))
old_autosave = Path(old_labels).read_bytes()
scenario("autosaved annotations",
         {"tomo.cryoli-labels.mrc": old_autosave, "tomo.cryoli-labels.bak.mrc": old_autosave},
         autosave)
# Room for the header, not for the data: the data would go through a memory map.
scenario("streamed output (prediction)", {"seg.mrc": b"old segmentation"}, streamed, 64 * 1024)
scenario("predicted segmentation", {"seg.mrc": b"old segmentation"},
         lambda: cli("predict", tomogram, "--model", model, "--out", disk / "seg.mrc",
                     "--device", "cpu"), 4 * 1024)
scenario("trained model", {"model.pt": b"old model"},
         lambda: cli("train", tomogram, seg, "--out", disk / "model.pt", "--minutes", "0.001",
                     "--device", "cpu", "--base-channels", "4", "--depth", "2"))
scenario("model file (SegmentationModel.save)", {"model.pt": b"old model"}, save_model)
report(**found)
"""


def _small_labels(path: Path) -> Path:
    from napari_cryoli.io import write_mrc

    write_mrc(path, np.ones((4, 4, 4), np.uint8), voxel_size_nm=1.0)
    return path


DISKS = [
    pytest.param("limit", id="file size limit"),
    pytest.param(
        "full",
        id="full tmpfs",
        marks=pytest.mark.skipif(not can_mount_tmpfs(), reason="no user namespaces"),
    ),
]


@pytest.fixture(scope="module", params=DISKS)
def full_disk(request, good, tmp_path_factory) -> tuple[str, dict]:
    """What each writer left when the disk refused its file (one child for every scenario)."""
    mode = request.param
    folder = tmp_path_factory.mktemp("disk")
    disk = folder / "disk"
    disk.mkdir()
    args = [
        str(good.labels),
        str(good.tilt_series),
        str(good.angles),
        str(_small_labels(folder / "old_labels.mrc")),
        str(good.tomogram),
        str(good.model),
        mode,
    ]
    if mode == "full":
        done = run_on_full_disk(FULL_DISK, disk, *args, size_kib=256)
    else:
        done = run_python(FULL_DISK, str(disk), *args)
    return mode, result(done)


REFUSALS = {"limit": "File too large", "full": "the disk is full"}


@pytest.mark.parametrize(
    "command",
    ["measure report", "reconstructed tomogram", "predicted segmentation", "trained model"],
)
def test_command_on_a_full_disk_keeps_the_old_output(full_disk, command):
    mode, found = full_disk
    case = found[command]
    lines = [line.split("\r")[-1] for line in case["outcome"]["err"].splitlines()]
    lines = [line for line in lines if line.strip()]
    assert case["outcome"]["status"] == 2 and lines[-1].startswith("napari-cryoli "), case
    assert REFUSALS[mode].lower() in lines[-1].lower(), lines
    assert case["intact"], case
    assert len(case["entries"]) == 1, case  # the old file alone: no temporary left behind


def test_autosave_on_a_full_disk_keeps_the_last_good_copy(full_disk):
    mode, found = full_disk
    case = found["autosaved annotations"]
    assert REFUSALS[mode] in case["outcome"].get("error", ""), case
    assert case["intact"], case
    assert case["entries"] == ["tomo.cryoli-labels.bak.mrc", "tomo.cryoli-labels.mrc"], case


def test_saving_a_model_on_a_full_disk_is_the_projects_error(full_disk):
    mode, found = full_disk
    case = found["model file (SegmentationModel.save)"]
    assert case["intact"] and case["entries"] == ["model.pt"], case
    assert REFUSALS[mode] in case["outcome"].get("error", ""), case


def test_streamed_output_on_a_full_disk_is_an_error_not_a_crash(full_disk):
    """A memory-mapped output on a full disk used to die of SIGBUS at the first page written."""
    mode, found = full_disk
    case = found["streamed output (prediction)"]
    assert REFUSALS[mode] in case["outcome"].get("error", ""), case
    assert case["intact"] and case["entries"] == ["seg.mrc"], case


# --- no GPU ----------------------------------------------------------------------------------


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize(
    "command",
    [
        "reconstruct",
        "predict",
        "train",
    ],
)
def test_cuda_requested_without_a_gpu_is_one_line(capsys, good, tmp_path, command):
    if _has_cuda():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "out"
    out.mkdir()
    args = {
        "reconstruct": [
            "reconstruct",
            good.tilt_series,
            "--angles",
            good.angles,
            "--out",
            out / "rec.mrc",
        ],
        "predict": ["predict", good.tomogram, "--model", good.model, "--out", out / "seg.mrc"],
        "train": ["train", good.tomogram, good.labels, "--out", out / "m.pt"],
    }[command]
    message = error_message(run_cli(capsys, *args, "--device", "cuda"), command)
    assert re.search(r"(GPU|CUDA).*(requested|asked)|(requested|asked).*(GPU|CUDA)", message)
    assert entries(out) == []
