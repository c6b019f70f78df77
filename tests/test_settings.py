"""Settings dataclasses as the one place for defaults: the command line and the widgets read them."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from napari_cryoli.cli import build_parser
from napari_cryoli.measure.report import MeasureSettings
from napari_cryoli.segment.prediction import PredictConfig
from napari_cryoli.segment.training import TrainConfig
from napari_cryoli.settings import add_argument, default_of, setting, spin_box_options
from napari_cryoli.tomo.wbp import WBPSettings

#: Every option of every subcommand as the parser described it before the options were built
#: from the settings dataclasses (help texts aside): none may change.
BEFORE = Path(__file__).parent / "cli_flags_v1.json"


def _described(parser: argparse.ArgumentParser) -> dict[str, list[dict]]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, p in sub.choices.items():
        out[name] = [{
            "flags": list(a.option_strings) or [a.dest], "dest": a.dest, "default": a.default,
            "type": getattr(a.type, "__name__", None if a.type is None else repr(a.type)),
            "choices": list(a.choices) if a.choices else None, "nargs": a.nargs,
            "required": a.required, "action": type(a).__name__, "metavar": a.metavar,
        } for a in p._actions if not isinstance(a, argparse._HelpAction)]
    return json.loads(json.dumps(out, default=str))


def test_every_option_keeps_its_name_default_and_type():
    before, now = json.loads(BEFORE.read_text()), _described(build_parser())
    for command, options in before.items():
        current = {tuple(o["flags"]): o for o in now[command]}
        for option in options:
            assert current.get(tuple(option["flags"])) == option, (command, option["flags"])


@pytest.mark.parametrize(("command", "flag", "cls", "name"), [
    ("reconstruct", "--radial-cutoff", WBPSettings, "radial_cutoff"),
    ("reconstruct", "--radial-falloff", WBPSettings, "radial_falloff"),
    ("measure", "--extended-threshold-nm", MeasureSettings, "extended_threshold_nm"),
    ("batch", "--extended-threshold-nm", MeasureSettings, "extended_threshold_nm"),
    ("train", "--minutes", TrainConfig, "minutes"),
    ("predict", "--phase-sigma-nm", PredictConfig, "phase_sigma_nm"),
])
def test_defaults_and_help_come_from_the_dataclass(capsys, command, flag, cls, name):
    value = default_of(cls, name)
    assert value == getattr(cls(), name)
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert f"{flag} " in shown and f"(default {value:g})" in shown


def test_a_setting_becomes_an_option_and_a_spin_box():
    @dataclass(frozen=True)
    class Demo:
        width_nm: float = setting(3.5, "how wide", minimum=0.5, maximum=9.0, step=0.5)
        steps: int | None = setting(None, "how many")
        quick: bool = setting(False, "go fast")

    parser = argparse.ArgumentParser()
    for name in ("width_nm", "steps", "quick"):
        add_argument(parser, Demo, name)
    assert vars(parser.parse_args([])) == {"width_nm": 3.5, "steps": None, "quick": False}
    assert vars(parser.parse_args(["--width-nm", "2", "--steps", "4", "--quick"])) == {
        "width_nm": 2.0, "steps": 4, "quick": True}
    assert "how wide (default 3.5)" in parser.format_help()
    assert spin_box_options(Demo, "width_nm") == {
        "minimum": 0.5, "maximum": 9.0, "singleStep": 0.5, "value": 3.5, "toolTip": "how wide"}
    assert spin_box_options(WBPSettings, "radial_cutoff")["value"] == WBPSettings().radial_cutoff
