"""Model files: strangers, booby-trapped pickles, newer formats, models made for other data.

A model file is only ever opened with ``torch.load(weights_only=True)``: a pickle that would run
code when unpickled is refused before any of it runs (proved below with a pickle that creates a
file, which a plain unpickler does create). Every refusal is one line and writes nothing.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch

from napari_cryoli.classes import DEFAULT_ONTOLOGY
from napari_cryoli.errors import CheckpointError
from napari_cryoli.segment import SegmentationModel
from napari_cryoli.segment.model import FORMAT, FORMAT_VERSION

from .commands import entries, error_message, notes, run_cli
from .conftest import tiny_model


class CreatesAFile:
    """Unpickling this calls ``open(path, "w")``: the file appearing means code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _checkpoint_like(marker: Path) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata_json": "{}",
        "state_dict": {},
        "payload": CreatesAFile(marker),
    }


TRAPS = ("torch.save", "plain pickle")


def _trapped_file(folder: Path, kind: str) -> tuple[Path, Path]:
    """A model file that creates ``<kind>.ran`` when unpickled: (model, marker)."""
    stem = kind.replace(" ", "_").replace(".", "_")
    path, marker = folder / f"{stem}.pt", folder / f"{stem}.ran"
    if kind == "torch.save":
        torch.save(_checkpoint_like(marker), path)
    else:
        path.write_bytes(pickle.dumps(_checkpoint_like(marker), protocol=4))
    return path, marker


@pytest.mark.parametrize("kind", TRAPS)
def test_the_trapped_pickles_do_run_code_in_a_plain_unpickler(tmp_path, kind):
    """The control: without weights_only, each file runs its code (so the refusals mean it)."""
    path, marker = _trapped_file(tmp_path, kind)
    if kind == "torch.save":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(
    ("entry", "kind"),
    [(entry, kind) for entry in ("load", "predict --model", "train --init") for kind in TRAPS],
)
def test_a_pickle_that_runs_code_is_refused_before_it_runs(capsys, good, tmp_path, entry, kind):
    path, marker = _trapped_file(tmp_path, kind)
    out = tmp_path / "out"
    out.mkdir()
    if entry == "load":
        with pytest.raises(CheckpointError, match="holds pickled objects"):
            SegmentationModel.load(path)
    else:
        outcome = run_cli(capsys, *_using_model(entry, good, path, out))
        message = error_message(outcome, entry.split()[0], alone=False)
        assert f"{path.name} is not a napari-cryoli model file" in message
    assert not marker.exists()
    assert entries(out) == []


def _using_model(entry: str, good, model: Path, out: Path) -> list:
    if entry == "predict --model":
        return [
            "predict",
            good.tomogram,
            "--model",
            model,
            "--out",
            out / "seg.mrc",
            "--device",
            "cpu",
        ]
    return [
        "train",
        good.tomogram,
        good.labels,
        "--init",
        model,
        "--out",
        out / "model.pt",
        "--device",
        "cpu",
        "--max-steps",
        "1",
    ]


def _damaged_state(path: Path) -> None:
    tiny_model().save(path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))
    torch.save(payload, path)


def _newer(path: Path) -> None:
    tiny_model().save(path)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, path)


STRANGERS = {
    "missing": (lambda p: None, r"model file .*model.pt does not exist"),
    "empty": (lambda p: p.write_bytes(b""), r"model.pt is not a napari-cryoli model file"),
    "a text file": (lambda p: p.write_text("weights\n"), r"not a napari-cryoli model file"),
    "a tomogram": (
        lambda p: p.write_bytes((p.parent.parent / "tomo").read_bytes()),
        r"not a napari-cryoli model file",
    ),
    "another program's weights": (
        lambda p: torch.save({"conv.weight": torch.ones(2)}, p),
        r"not a napari-cryoli model file",
    ),
    "a list": (lambda p: p.write_bytes(pickle.dumps([1, 2, 3])), r"not a napari-cryoli model"),
    "cut short": (
        lambda p: (tiny_model().save(p), p.write_bytes(p.read_bytes()[:2000])),
        r"not a napari-cryoli model file \(it is unreadable\)",
    ),
    "weights missing": (_damaged_state, r"is a damaged napari-cryoli model file"),
    "a newer format": (_newer, r"written by a newer napari-cryoli \(model format 2\)"),
}


@pytest.mark.parametrize("entry", ["predict --model", "train --init"])
@pytest.mark.parametrize("case", list(STRANGERS))
def test_a_file_that_is_not_a_usable_model_is_one_line(capsys, good, tmp_path, case, entry):
    make, says = STRANGERS[case]
    (tmp_path / "tomo").write_bytes(good.tomogram.read_bytes())
    folder = tmp_path / "models"
    folder.mkdir()
    model = folder / "model.pt"
    make(model)
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli(capsys, *_using_model(entry, good, model, out))
    assert re.search(says, error_message(outcome, entry.split()[0], alone=False))
    assert entries(out) == []


def test_a_model_trained_at_another_voxel_size_predicts_with_a_warning(capsys, good, tmp_path):
    model = tmp_path / "coarse.pt"
    tiny_model(voxel_size_nm=(4.0, 3.0, 3.0)).save(model)  # twice the tomogram's voxel size
    outcome = run_cli(
        capsys,
        "predict",
        good.tomogram,
        "--model",
        model,
        "--out",
        tmp_path / "seg.mrc",
        "--device",
        "cpu",
    )
    assert outcome.status == 0, outcome
    assert any("trained at a voxel size of 4 x 3 x 3 nm" in n for n in notes(outcome))
    assert (tmp_path / "seg.mrc").exists()


def test_a_model_for_other_classes_predicts_with_a_warning(capsys, good, tmp_path):
    model = tmp_path / "ice.pt"
    tiny_model(ontology=DEFAULT_ONTOLOGY.with_class("ice")).save(model)
    outcome = run_cli(
        capsys,
        "predict",
        good.tomogram,
        "--model",
        model,
        "--out",
        tmp_path / "seg.mrc",
        "--device",
        "cpu",
    )
    assert outcome.status == 0, outcome
    assert any("6=ice" in n for n in notes(outcome)), outcome.lines
