"""Inputs that do not fit: labels against their image, ids nobody knows, nothing painted.

Training refuses what cannot train a model (one line, no model file); measuring accepts any
label volume, treats ids it does not know as background and says so, and refuses what is not a
3D label volume by name.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from napari_cryoli.classes import BACKGROUND, CU, DEFAULT_ONTOLOGY, LI, LIH, SEI
from napari_cryoli.errors import InputError
from napari_cryoli.io import write_mrc
from napari_cryoli.jobs import run_job

from .commands import entries, error_message, notes, run_cli
from .conftest import tiny_model
from .damaged import VOXEL_NM

# A budget shorter than the set-up: a run that gets past the checks saves an untrained model.
TRAIN = ["--minutes", "0.001", "--device", "cpu", "--base-channels", "4", "--depth", "2"]


def _sparse(labels: np.ndarray) -> np.ndarray:
    """Every fourth voxel of two sections painted, the rest not annotated."""
    painted = np.zeros_like(labels)
    painted[[3, 8], ::4, ::4] = labels[[3, 8], ::4, ::4]
    painted[labels == CU] = CU
    return painted


def _train(capsys, good, tmp_path, labels: np.ndarray, *, image=None, voxel=VOXEL_NM):
    """Train on ``labels`` (and ``image``, default the good tomogram's values) from files."""
    image_path = tmp_path / "tomogram.mrc"
    values = good.image_values if image is None else image
    write_mrc(image_path, values, voxel_size_nm=VOXEL_NM)
    labels_path = tmp_path / "labels.mrc"
    write_mrc(labels_path, labels, voxel_size_nm=voxel, labels=True)
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli(capsys, "train", image_path, labels_path, "--out", out / "model.pt", *TRAIN)
    return outcome, out


CASES = {
    "labels of another shape": (lambda lab: lab[:-1], "shape"),
    "nothing painted": (lambda lab: np.zeros_like(lab), "nothing is painted"),
    "one class painted": (
        lambda lab: np.where(lab > 0, LI, 0).astype(np.uint8),
        "only Li is painted",
    ),
    "ids no class has": (
        lambda lab: np.where(lab == SEI, 200, lab).astype(np.uint8),
        r"\[200\].*not classes",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_train_refuses_labels_that_cannot_train_in_one_line(capsys, good, tmp_path, case):
    change, says = CASES[case]
    outcome, out = _train(capsys, good, tmp_path, change(_sparse(good.label_values)))
    assert re.search(says, error_message(outcome, "train", alone=False))
    assert entries(out) == []


def test_train_refuses_an_image_with_nan_in_one_line(capsys, good, tmp_path):
    image = good.image_values.copy()
    image[4, 5, 6] = np.nan
    outcome, out = _train(capsys, good, tmp_path, _sparse(good.label_values), image=image)
    assert "NaN" in error_message(outcome, "train", alone=False)
    assert entries(out) == []


def test_train_refuses_labels_with_another_voxel_size(capsys, good, tmp_path):
    voxel = tuple(2 * v for v in VOXEL_NM)
    outcome, out = _train(capsys, good, tmp_path, _sparse(good.label_values), voxel=voxel)
    assert re.search("voxel size", error_message(outcome, "train", alone=False))
    assert entries(out) == []


def test_train_takes_several_pairs_and_refuses_an_odd_count(capsys, good, tmp_path):
    paths = []
    for i in range(2):
        image_path, labels_path = tmp_path / f"t{i}.mrc", tmp_path / f"l{i}.mrc"
        write_mrc(image_path, good.image_values * (1 + i), voxel_size_nm=VOXEL_NM)
        write_mrc(labels_path, _sparse(good.label_values), voxel_size_nm=VOXEL_NM, labels=True)
        paths += [image_path, labels_path]
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli(capsys, "train", *paths[:3], "--out", out / "model.pt", *TRAIN)
    assert "in pairs" in error_message(outcome, "train", alone=False)
    assert entries(out) == []
    outcome = run_cli(capsys, "train", *paths, "--out", out / "model.pt", "--max-steps", "2",
                      *TRAIN)
    assert outcome.status == 0, outcome.lines
    from napari_cryoli.segment import SegmentationModel

    assert SegmentationModel.load(out / "model.pt", device="cpu").summary["tomograms"] == 2


def test_fine_tuning_a_model_on_labels_without_one_of_its_classes(good):
    """A class the model knows but nobody painted this time: training goes on with the rest."""
    from napari_cryoli.segment import TrainConfig, train

    model = tiny_model(ontology=DEFAULT_ONTOLOGY.with_class("ice"))
    config = TrainConfig(
        base_channels=4, depth=2, patch_size=16, minutes=None, max_steps=2, device="cpu"
    )
    result = run_job(train(good.image_values, _sparse(good.label_values), config, init=model))
    assert result.model.ontology == model.ontology
    assert result.summary["steps"] == 2


def test_fine_tuning_refuses_labels_with_a_class_the_model_lacks(good):
    from napari_cryoli.segment import TrainConfig, train

    labels = _sparse(good.label_values)
    labels[3, 0, :4] = 6  # "ice", painted, unknown to the default model
    with pytest.raises(InputError, match=r"ids \[6\] that are not classes of the model"):
        train(good.image_values, labels, TrainConfig(max_steps=1, minutes=None), init=tiny_model())


# --- measure --------------------------------------------------------------------------------


def _measure(capsys, tmp_path, values: np.ndarray, name: str = "seg.mrc", **kwargs):
    path = tmp_path / name
    write_mrc(path, values, voxel_size_nm=VOXEL_NM[-values.ndim :], **kwargs)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    outcome = run_cli(capsys, "measure", path, "--out", out / "report.json")
    report = json.loads((out / "report.json").read_text()) if outcome.status == 0 else None
    return outcome, report, out


def _volumes(labels: np.ndarray) -> dict[str, float]:
    """The phase volumes a report must give (nm³), counted directly."""
    voxel = float(np.prod(VOXEL_NM))
    return {
        name: float((labels == i).sum()) * voxel
        for name, i in (("Li", LI), ("LiH", LIH), ("Cu", CU), ("SEI", SEI))
    }


NOT_LABELS = {
    "a tomogram (float values)": (
        lambda lab: lab.astype(np.float32),
        {},
        r"holds float32 values \(MRC mode 2\), not labels",
    ),
    "negative ids": (
        lambda lab: lab.astype(np.int16) - 3,
        {"labels": False},
        r"holds values -2…2, not label ids 0–255",
    ),
    "ids above 255": (
        lambda lab: lab.astype(np.uint16) * 100,
        {"labels": False},
        r"holds values 100…500, not label ids 0–255",
    ),
    "a 2D image": (lambda lab: lab[5], {}, r"holds a 2D image of shape \(20, 24\), not a 3D"),
}


@pytest.mark.parametrize("case", NOT_LABELS)
def test_measure_refuses_what_is_not_a_label_volume_in_one_line(capsys, good, tmp_path, case):
    change, kwargs, says = NOT_LABELS[case]
    outcome, _, out = _measure(capsys, tmp_path, change(good.label_values), **kwargs)
    assert re.search(says, error_message(outcome, "measure"))
    assert entries(out) == []


def test_measure_refuses_a_tilt_series(capsys, good, tmp_path):
    outcome, _, out = _measure(capsys, tmp_path, good.label_values, name="seg.st", kind="stack")
    assert "seg.st holds a stack of 2D images" in error_message(outcome, "measure")
    assert entries(out) == []


def test_measure_treats_unknown_ids_as_background_and_says_so(capsys, good, tmp_path):
    labels = good.label_values.copy()
    outside = labels == BACKGROUND
    labels[outside & (np.arange(labels.shape[2]) < 6)] = 7  # "carbon support", a user class
    labels[outside & (np.arange(labels.shape[2]) >= 20)] = 200
    for folder in ("odd", "plain"):
        (tmp_path / folder).mkdir()
    odd, report, _ = _measure(capsys, tmp_path / "odd", labels)
    plain, expected, _ = _measure(capsys, tmp_path / "plain", good.label_values)
    assert odd.status == plain.status == 0
    for key in (
        "volumes_nm3",
        "lih_volume_fraction",
        "sei_thickness_nm",
        "dendrites",
        "cu_particles",
    ):
        assert report[key] == expected[key], key
    said = "ids 7, 200 are not Li, LiH, Cu or SEI: measured as background"
    assert said in notes(odd) and said in report["notes"]


@pytest.mark.parametrize(
    "case",
    ["nothing painted", "background only", "Li only", "SEI only"],
)
def test_measure_reports_empty_and_single_phase_volumes(capsys, good, tmp_path, case):
    value = {"nothing painted": 0, "background only": BACKGROUND, "Li only": LI, "SEI only": SEI}[
        case
    ]
    labels = np.full(good.label_values.shape, value, np.uint8)
    outcome, report, _ = _measure(capsys, tmp_path, labels)
    assert outcome.status == 0, outcome
    assert report["volumes_nm3"] == pytest.approx(_volumes(labels))
    assert len(report["dendrites"]) == (1 if value == LI else 0)
    expected_note = "no Li or LiH" if value != LI else "no SEI in the segmentation"
    assert any(expected_note in n for n in report["notes"])


@pytest.mark.parametrize("shape", [(1, 20, 24), (2, 20, 24), (12, 1, 24), (12, 20, 2)])
def test_measure_a_volume_one_or_two_voxels_thick(capsys, good, tmp_path, shape):
    """A thin crop used to crash the surface normals (numpy.gradient needs two samples)."""
    labels = np.ascontiguousarray(good.label_values[: shape[0], : shape[1], : shape[2]])
    path = tmp_path / "thin.mrc"
    write_mrc(path, labels, voxel_size_nm=VOXEL_NM)
    if shape[0] == 1:  # one section is a 2D image to the reader: measure the volume directly
        from napari_cryoli.measure.report import measure

        report = run_job(measure(labels, VOXEL_NM)).to_dict()
    else:
        outcome, report, _ = _measure(capsys, tmp_path, labels)
        assert outcome.status == 0, outcome
    assert report["volumes_nm3"] == pytest.approx(_volumes(labels))


def test_predict_refuses_or_survives_nan_in_the_image(capsys, good, tmp_path):
    image = good.image_values.copy()
    image[4, 5, 6] = np.nan
    path = tmp_path / "tomogram.mrc"
    write_mrc(path, image, voxel_size_nm=VOXEL_NM)
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli(
        capsys,
        "predict",
        path,
        "--model",
        good.model,
        "--out",
        out / "seg.mrc",
        "--uncertainty",
        out / "unc.mrc",
        "--device",
        "cpu",
    )
    if outcome.status == 2:
        assert "NaN" in error_message(outcome, "predict", alone=False)
        assert entries(out) == []
    else:
        from napari_cryoli.io import read_mrc

        assert outcome.status == 0, outcome
        assert np.isfinite(read_mrc(out / "unc.mrc").data).all()
