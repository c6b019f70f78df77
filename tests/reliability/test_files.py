"""Bad and unusual files through every entry point that reads one.

Entry points: napari's File > Open with our reader (``viewer.open``), and the commands
``measure``, ``reconstruct``, ``predict`` and ``train``. A damaged file ends in one sentence that
names it (a notification in napari; one line on stderr and status 2 on the command line) and
nothing written; a legal but unusual file opens with its values intact and a warning wherever
something had to be assumed.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from napari.errors import ReaderPluginError
from napari.utils.notifications import Notification, NotificationSeverity, notification_manager

from napari_cryoli.errors import FileFormatError
from napari_cryoli.io import read_angles, read_mrc

from .commands import entries, error_message, notes, run_cli
from .damaged import DAMAGES, ODDITIES, damaged_copy, with_nan_inf

PLUGIN = "napari-cryoli"


# --- napari: File > Open ---------------------------------------------------------------------


def test_napari_shows_one_sentence_for_each_damaged_file(make_napari_viewer, good, tmp_path):
    viewer = make_napari_viewer()  # one viewer for every case: each open starts from scratch
    for case, damage in DAMAGES.items():
        path = damaged_copy(good.tomogram, case, tmp_path)
        if case == "missing":  # napari itself checks before asking any reader
            with pytest.raises(FileNotFoundError, match=re.escape(path.name)):
                viewer.open(str(path), plugin=PLUGIN)
            continue
        with pytest.raises(FileFormatError) as chosen:
            viewer.open(str(path), plugin=PLUGIN)
        message = str(chosen.value)
        assert re.search(damage.says, message) and path.name in message, case
        assert "\n" not in message and len(message) < 300, case
        # An exception in the GUI becomes this notification: the sentence alone, as an error.
        shown = Notification.from_exception(chosen.value)
        assert (shown.message, shown.severity) == (message, NotificationSeverity.ERROR), case
        # Dropped on the window or File > Open (no reader chosen, as napari's Qt viewer calls
        # it), napari names our reader and its reader dialog quotes the sentence.
        with pytest.raises(ReaderPluginError) as dropped:
            viewer.open(str(path), plugin=None)
        assert dropped.value.reader_plugin == PLUGIN, case
        assert str(dropped.value).endswith(f"FileFormatError: {message}"), case
        assert len(viewer.layers) == 0, case


def test_napari_opens_each_unusual_file_with_its_warning(make_napari_viewer, good, tmp_path):
    viewer = make_napari_viewer()
    for case, oddity in ODDITIES.items():
        path = tmp_path / f"{case.replace(' ', '_')}.mrc"
        oddity.write(path, good.image_values, "volume")
        notification_manager.records.clear()
        (layer,) = viewer.open(str(path), plugin=PLUGIN)
        expected = with_nan_inf(good.image_values) if oddity.non_finite else good.image_values
        np.testing.assert_array_equal(np.asarray(layer.data, np.float32), expected, err_msg=case)
        assert tuple(layer.scale) == pytest.approx(oddity.voxel_nm), case
        shown = [
            n.message
            for n in notification_manager.records
            if n.severity == NotificationSeverity.WARNING
        ]
        if oddity.warns:
            assert any(
                re.search(oddity.warns, m) and m.startswith(f"{path.name}: ") for m in shown
            ), (case, shown)
        viewer.layers.clear()


def test_napari_opens_a_big_endian_file_from_another_program(make_napari_viewer, shared_data):
    viewer = make_napari_viewer()
    (swapped,) = viewer.open(
        str(shared_data / "derived/EMD-3197_bigendian_byteswapped.mrc"), plugin=PLUGIN
    )
    (native,) = viewer.open(str(shared_data / "mrcfile/EMD-3197.map"), plugin=PLUGIN)
    np.testing.assert_array_equal(swapped.data, native.data)
    assert tuple(swapped.scale) == pytest.approx((1.14, 1.14, 1.14))


def test_napari_refuses_a_header_only_file_from_another_program(make_napari_viewer, shared_data):
    viewer = make_napari_viewer()
    with pytest.raises(FileFormatError, match="HAADF_header_only.mrc is truncated"):
        viewer.open(str(shared_data / "derived/HAADF_header_only.mrc"), plugin=PLUGIN)


# --- the command line -----------------------------------------------------------------------


def _command(name: str, good, bad, out):
    """The arguments that feed ``bad`` to command ``name`` (the other inputs good)."""
    return {
        "measure": ["measure", bad, "--out", out / "report.json", "--csv", out / "table.csv"],
        "reconstruct": ["reconstruct", bad, "--angles", good.angles, "--out", out / "rec.mrc"],
        "predict": [
            "predict",
            bad,
            "--model",
            good.model,
            "--out",
            out / "seg.mrc",
            "--uncertainty",
            out / "unc.mrc",
        ],
        "train (tomogram)": [
            "train",
            bad,
            good.labels,
            "--out",
            out / "model.pt",
            "--minutes",
            "0.05",
            "--device",
            "cpu",
        ],
        "train (labels)": [
            "train",
            good.tomogram,
            bad,
            "--out",
            out / "model.pt",
            "--minutes",
            "0.05",
            "--device",
            "cpu",
        ],
    }[name]


def _good_input(name: str, good):
    return {
        "measure": good.labels,
        "reconstruct": good.tilt_series,
        "train (labels)": good.labels,
    }.get(name, good.tomogram)


CLI_READERS = ["measure", "reconstruct", "predict", "train (tomogram)", "train (labels)"]


@pytest.mark.parametrize("case", DAMAGES)
@pytest.mark.parametrize(
    "command",
    CLI_READERS,
)
def test_command_refuses_a_damaged_file_in_one_line(capsys, good, tmp_path, command, case):
    bad = damaged_copy(_good_input(command, good), case, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli(capsys, *_command(command, good, bad, out))
    message = error_message(outcome, command.split()[0])
    assert re.search(DAMAGES[case].says, message) and bad.name in message
    assert entries(out) == []


@pytest.mark.parametrize("case", ODDITIES)
def test_measure_reads_unusual_label_files(capsys, good, tmp_path, case):
    oddity = ODDITIES[case]
    path = tmp_path / "seg.mrc"
    oddity.write(path, good.label_values, "volume")
    out = tmp_path / "report.json"
    outcome = run_cli(capsys, "measure", path, "--out", out)
    if not oddity.labels_ok:
        assert re.search(
            r"seg.mrc holds \w+ values .*not labels", error_message(outcome, "measure")
        )
        assert not out.exists()
        return
    assert outcome.status == 0, outcome
    report = json.loads(out.read_text())
    voxel = float(np.prod(oddity.voxel_nm))
    counts = np.bincount(good.label_values.ravel(), minlength=6)
    truth = {"Li": counts[2], "LiH": counts[3], "Cu": counts[4], "SEI": counts[5]}
    assert report["volumes_nm3"] == pytest.approx({k: v * voxel for k, v in truth.items()})
    assert report["voxel_size_nm"] == pytest.approx(list(oddity.voxel_nm))
    if oddity.warns:  # said on the terminal and kept in the report
        assert any(re.search(oddity.warns, n) for n in notes(outcome))
        assert any(re.search(oddity.warns, n) for n in report["notes"])


@pytest.fixture(scope="module")
def clean_reconstruction(good, tmp_path_factory):
    """The reconstruction of the good tilt series, through the same command."""
    from napari_cryoli.cli import main

    out = tmp_path_factory.mktemp("clean") / "rec.mrc"
    assert (
        main(
            ["reconstruct", str(good.tilt_series), "--angles", str(good.angles), "--out", str(out)]
        )
        == 0
    )
    return np.asarray(read_mrc(out).data)


@pytest.mark.parametrize("case", ODDITIES)
def test_reconstruct_reads_unusual_tilt_series(capsys, good, tmp_path, clean_reconstruction, case):
    oddity = ODDITIES[case]
    path = tmp_path / "series.st"
    oddity.write(path, good.tilt_values, "stack")
    out = tmp_path / "rec.mrc"
    outcome = run_cli(capsys, "reconstruct", path, "--angles", good.angles, "--out", out)
    if oddity.non_finite:
        message = error_message(outcome, "reconstruct", alone=False)
        assert "not finite (NaN or infinity)" in message
        assert entries(tmp_path) == ["series.st"]
        return
    assert outcome.status == 0, outcome
    rec = read_mrc(out)
    np.testing.assert_allclose(rec.data, clean_reconstruction, rtol=1e-5, atol=1e-4)
    assert rec.voxel_size_nm == pytest.approx((oddity.voxel_nm[2],) * 3)
    if oddity.warns:
        assert any(re.search(oddity.warns, n) for n in notes(outcome)), outcome.lines


@pytest.mark.parametrize("case", ["int8", "uint16", "float16", "big-endian", "zero voxel size"])
def test_predict_reads_unusual_tomograms(capsys, good, tmp_path, case):
    path = tmp_path / "tomogram.mrc"
    ODDITIES[case].write(path, good.image_values, "volume")
    out = tmp_path / "seg.mrc"
    outcome = run_cli(capsys, "predict", path, "--model", good.model, "--out", out)
    assert outcome.status == 0, outcome
    assert read_mrc(out).data.shape == good.image_values.shape


# --- angle files --------------------------------------------------------------------------------

ANGLE_FILES = {
    "one line short": ("{lines_but_last}", r"holds 8 angles but the tilt series has 9 images"),
    "one line too many": ("{lines}\n70\n", r"holds 10 angles but the tilt series has 9 images"),
    "not a number": ("{lines_but_last}\nabc\n", r"line 9 of angles.tlt is 'abc', not a number"),
    "two numbers on a line": ("-60 -45\n", r"line 1 of angles.tlt holds 2 values"),
    "beyond 90 degrees": ("{lines_but_last}\n95\n", r"holds 95, not a tilt angle within ±90°"),
    "empty": ("", r"angles.tlt holds no angles"),
    "binary": (None, r"angles.tlt is not a text file"),
    "missing": (False, r"angle file .*angles.tlt does not exist"),
}


@pytest.mark.parametrize("case", ANGLE_FILES)
def test_reconstruct_refuses_a_bad_angle_file_in_one_line(capsys, good, tmp_path, case):
    template, says = ANGLE_FILES[case]
    lines = good.angles.read_text().splitlines()
    angles = tmp_path / "angles.tlt"
    if template is None:
        angles.write_bytes(bytes(range(256)))
    elif template is not False:
        angles.write_text(
            template.format(lines="\n".join(lines), lines_but_last="\n".join(lines[:-1]))
        )
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli(
        capsys, "reconstruct", good.tilt_series, "--angles", angles, "--out", out / "rec.mrc"
    )
    assert re.search(says, error_message(outcome, "reconstruct"))
    assert entries(out) == []


# --- any damage at all -----------------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.one_of(st.none(), st.integers(0, 4096)),
    edits=st.lists(st.tuples(st.integers(0, 1023), st.integers(0, 255)), max_size=6),
)
def test_measure_on_any_damaged_label_file_is_a_report_or_one_line(
    capsys, good, tmp_path_factory, cut, edits
):
    """Random header bytes and truncations: a report, or one line with status 2, nothing else."""
    folder = tmp_path_factory.mktemp("damaged")
    raw = bytearray(good.labels.read_bytes())
    for offset, value in edits:
        raw[offset] = value
    path = folder / "seg.mrc"
    path.write_bytes(bytes(raw[:cut]))
    out = folder / "out"
    out.mkdir()
    outcome = run_cli(capsys, "measure", path, "--out", out / "report.json")
    if outcome.status == 0:
        assert json.loads((out / "report.json").read_text())["volumes_nm3"]
    else:
        assert "seg.mrc" in error_message(outcome, "measure", alone=False)
        assert entries(out) == []


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.characters(codec="utf-8"), max_size=200))
def test_any_angle_file_gives_angles_or_one_sentence(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("angles") / "angles.tlt"
    path.write_text(text, encoding="utf-8")
    try:
        angles = read_angles(path)
    except FileFormatError as e:
        assert "\n" not in str(e) and "angles.tlt" in str(e)
    else:
        assert angles.ndim == 1 and np.all(np.abs(angles) <= 90)
