"""The command line's own contract: bad options and unusable outputs end in one line, at once.

An output that cannot be written is found before any work (a reconstruction or a training run
must not end in "could not write" after an hour); an option out of range is named; argparse's own
errors keep their usage line but never a traceback.
"""

from __future__ import annotations

import re

import pytest

from .commands import PROGRESS, entries, error_message, run_cli

BAD_OUTPUT_MESSAGE = r"could not write .*: (the folder .* does not exist|it is a folder)"


def _commands(good, out):
    """Each command with the given output path ``out`` (its other arguments good)."""
    return {
        "measure": ["measure", good.labels, "--out", out],
        "measure --csv": ["measure", good.labels, "--out", out.parent / "r.json", "--csv", out],
        "reconstruct": ["reconstruct", good.tilt_series, "--angles", good.angles, "--out", out],
        "predict": ["predict", good.tomogram, "--model", good.model, "--out", out],
        "predict --uncertainty": [
            "predict",
            good.tomogram,
            "--model",
            good.model,
            "--out",
            out.parent / "s.mrc",
            "--uncertainty",
            out,
        ],
        "predict --probabilities": [
            "predict",
            good.tomogram,
            "--model",
            good.model,
            "--out",
            out.parent / "s.mrc",
            "--probabilities",
            out,
        ],
        "train": ["train", good.tomogram, good.labels, "--out", out, "--device", "cpu"],
        "simulate": ["simulate", out / "phantom"],
    }


COMMANDS = [
    "measure",
    "measure --csv",
    "reconstruct",
    "predict",
    "predict --uncertainty",
    "predict --probabilities",
    "train",
    "simulate",
]


# simulate makes a missing output folder itself: only a file in its way can stop it.
@pytest.mark.parametrize(("command", "where"), [
    (c, w) for c in COMMANDS for w in ("in a missing folder", "a folder")
    if (c, w) != ("simulate", "in a missing folder")
])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(
    capsys, good, tmp_path, command, where
):
    if where == "a folder":
        out = tmp_path / "taken"
        out.mkdir()
        if command == "simulate":  # its output is a folder: a file in the way instead
            (out / "phantom").write_text("not a folder")
    else:
        out = tmp_path / "missing" / "out.mrc"
    outcome = run_cli(capsys, *_commands(good, out)[command])
    message = error_message(outcome, command.split()[0])  # alone: no progress, no work
    assert re.search(BAD_OUTPUT_MESSAGE, message) or "exists and is not a folder" in message
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == (
        ["phantom"] if command == "simulate" and where == "a folder" else []
    )


BAD_OPTIONS = {
    "measure threshold": (
        ["measure", "{labels}", "--out", "{out}/r.json", "--extended-threshold-nm", "-1"],
        "must be a positive number",
    ),
    "measure voxel size 0": (
        ["measure", "{labels}", "--out", "{out}/r.json", "--voxel-size-nm", "0"],
        "voxel sizes must be positive",
    ),
    "measure voxel size nan": (
        ["measure", "{labels}", "--out", "{out}/r.json", "--voxel-size-nm", "nan"],
        "voxel sizes must be positive",
    ),
    "measure two voxel sizes": (
        ["measure", "{labels}", "--out", "{out}/r.json", "--voxel-size-nm", "1", "2"],
        "needs 1 or 3 values",
    ),
    "reconstruct thickness": (
        [
            "reconstruct",
            "{series}",
            "--angles",
            "{angles}",
            "--out",
            "{out}/r.mrc",
            "--thickness",
            "0",
        ],
        "at least 1 voxel",
    ),
    "reconstruct cutoff": (
        [
            "reconstruct",
            "{series}",
            "--angles",
            "{angles}",
            "--out",
            "{out}/r.mrc",
            "--radial-cutoff",
            "0.7",
        ],
        r"radial cutoff must lie in \(0, 0.5\]",
    ),
    "predict tile": (
        ["predict", "{tomogram}", "--model", "{model}", "--out", "{out}/s.mrc", "--tile", "4"],
        "too small",
    ),
    "predict phase sigma": (
        ["predict", "{tomogram}", "--model", "{model}", "--out", "{out}/s.mrc",
         "--phase-sigma-nm", "-1"],
        "phase pooling sigma must be 0 nm or more",
    ),
    "train minutes": (
        ["train", "{tomogram}", "{labels}", "--out", "{out}/m.pt", "--minutes", "0"],
        "time budget must be positive",
    ),
    "train steps": (
        ["train", "{tomogram}", "{labels}", "--out", "{out}/m.pt", "--max-steps", "0"],
        "at least one step",
    ),
    "train depth": (
        ["train", "{tomogram}", "{labels}", "--out", "{out}/m.pt", "--depth", "0"],
        "depth",
    ),
    "simulate shape": (
        ["simulate", "{out}/sim", "--shape", "8", "8", "8"],
        "phantom shape must be",
    ),
    "simulate dose": (["simulate", "{out}/sim", "--dose", "0"], "dose must be positive"),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_an_option_out_of_range_is_one_line(capsys, good, tmp_path, case):
    template, says = BAD_OPTIONS[case]
    names = {
        "labels": good.labels,
        "series": good.tilt_series,
        "angles": good.angles,
        "tomogram": good.tomogram,
        "model": good.model,
        "out": tmp_path,
    }
    args = [str(a).format(**names) for a in template]
    outcome = run_cli(capsys, *args)
    assert re.search(says, error_message(outcome, args[0]))
    assert entries(tmp_path) == []


@pytest.mark.parametrize(
    "args",
    [
        ["measure", "seg.mrc"],
        ["reconstruct", "series.st", "--out", "x.mrc"],
        ["predict", "t.mrc", "--out", "s.mrc", "--device", "tpu"],
        ["train"],
        [],
    ],
    ids=["no --out", "no --angles", "unknown device", "nothing", "no command"],
)
def test_usage_errors_show_the_usage_and_no_traceback(capsys, args):
    outcome = run_cli(capsys, *args)
    assert outcome.status == 2
    assert outcome.lines[-1].startswith("napari-cryoli") and "error: " in outcome.lines[-1]
    assert outcome.lines[0].startswith("usage: napari-cryoli")
    assert not any("Traceback" in line or PROGRESS.match(line) for line in outcome.lines)
