"""The phase table against lattice constants, and identification from pairs of reflections."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_cryoli.errors import FileFormatError
from napari_cryoli.hrtem.phases import (
    Tolerances,
    canonical_zone,
    default_table,
    family_members,
    identify,
    load_table,
    parse_hkl,
)
from napari_cryoli.hrtem.reflections import Reflection

# The spacings the study quotes (Å); the table computes them from lattice constants.
QUOTED = {
    ("Li", "110"): 2.48, ("Li", "200"): 1.75, ("LiH", "111"): 2.36, ("LiH", "200"): 2.04,
    ("LiH", "220"): 1.44, ("Cu", "111"): 2.09, ("Cu", "200"): 1.81, ("Li2O", "111"): 2.66,
    ("Li2O", "200"): 2.31, ("LiF", "111"): 2.33, ("LiF", "200"): 2.01, ("Cu2O", "111"): 2.46,
}


@pytest.mark.parametrize(("key", "d"), QUOTED.items())
def test_quoted_spacings_follow_from_the_lattice_constants(key, d):
    phase = default_table().by_name(key[0])
    hkl = parse_hkl(key[1])
    assert hkl in phase.families
    assert phase.d_A(hkl) == pytest.approx(phase.a_A / math.sqrt(sum(v * v for v in hkl)))
    assert phase.d_A(hkl) == pytest.approx(d, rel=0.005)


def test_families_and_zones():
    assert len(family_members((1, 1, 1))) == 4
    assert len(family_members((2, 0, 0))) == 3
    assert len(family_members((2, 1, 1))) == 12
    assert canonical_zone((1, -1, 0)) == (0, 1, 1)
    assert canonical_zone((0, 0, -2)) == (0, 0, 1)
    assert parse_hkl("-1 1 1") == (-1, 1, 1) and parse_hkl("220") == (2, 2, 0)


def zone_reflections(phase_name: str, zone, rotation_deg: float, scale: float = 1.0,
                     d_min: float = 1.1):
    """Exact reflections of a phase at a zone axis, as a perfect measurement would give them."""
    phase = default_table().by_name(phase_name)
    _, xy = phase.zone(zone)
    t = math.radians(rotation_deg)
    rot = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    out = []
    for gy, gx in xy @ rot * scale:
        if 1 / math.hypot(gy, gx) >= d_min:
            out.append(Reflection(float(gy), float(gx), 1.0, 20.0))
    return out


CASES = [("Li", (0, 0, 1)), ("Li", (1, 1, 1)), ("LiH", (0, 1, 1)), ("Cu", (0, 0, 1)),
         ("Cu", (0, 1, 1)), ("Li2O", (0, 1, 1)), ("Cu2O", (0, 0, 1)), ("Cu2O", (0, 1, 1))]


@pytest.mark.parametrize(("name", "zone"), CASES)
@pytest.mark.parametrize("scale", [0.98, 1.0, 1.02])
def test_a_two_percent_pixel_size_error_does_not_change_the_answer(name, zone, scale):
    found = identify(zone_reflections(name, zone, 37.0, scale), default_table())
    best = found.phases[0]
    assert best.phase == name or name in best.ambiguous_with
    assert best.zone_axis == canonical_zone(zone)
    if best.phase == name:
        assert best.scale == pytest.approx(scale, rel=1e-3)
    if name in ("Li", "Cu", "Cu2O") and zone != (1, 1, 1):
        assert best.phase == name


def test_lih_and_lif_are_reported_as_ambiguous():
    found = identify(zone_reflections("LiH", (0, 0, 1), 12.0), default_table())
    best = found.phases[0]
    assert best.phase == "LiH" and best.ambiguous_with == ("LiF",)
    lif = identify(zone_reflections("LiF", (0, 0, 1), 12.0), default_table()).phases[0]
    assert lif.phase == "LiF" and "LiH" in lif.ambiguous_with
    # each 200 reflection lists both by spacing alone
    names = {c.phase for c in found.candidates[0]}
    assert {"LiH", "LiF"} <= names


def test_single_spacing_is_not_enough_but_a_pair_is():
    """Li 110 (2.48 Å) and Cu2O 111 (2.47 Å): one spacing fits both, the zone picks one."""
    li = zone_reflections("Li", (0, 0, 1), 0.0, 0.99)
    one = identify(li[:1], default_table())
    assert not one.phases
    assert {c.phase for c in one.candidates[0]} >= {"Li", "Cu2O"}
    assert identify(li, default_table()).phases[0].phase == "Li"


def test_two_grains_give_two_phases():
    refl = zone_reflections("Li", (0, 0, 1), 10.0) + zone_reflections("Cu", (0, 1, 1), 70.0)
    found = identify(refl, default_table())
    assert {m.phase for m in found.phases} == {"Li", "Cu"}


def test_unrelated_spacings_give_no_phase():
    refl = [Reflection(0.0, 1 / 3.6, 1, 20), Reflection(1 / 1.95, 0.0, 1, 20)]
    found = identify(refl, default_table(), Tolerances())
    assert not found.phases and found.label(default_table()) == 255
    assert identify([], default_table()).amorphous


def test_user_table(tmp_path):
    table = default_table().to_dict()
    table["phases"].append({"name": "NiO", "a_A": 4.177, "label": 9,
                            "families": ["111", "200", "220"]})
    path = tmp_path / "t.json"
    path.write_text(json.dumps(table))
    loaded = load_table(path)
    assert loaded.by_name("NiO").d_A((2, 0, 0)) == pytest.approx(2.0885)
    (tmp_path / "bad.json").write_text('{"phases": [{"name": "X"}]}')
    with pytest.raises(FileFormatError, match="bad.json is not a phase table"):
        load_table(tmp_path / "bad.json")
    (tmp_path / "dup.json").write_text(json.dumps(
        {"phases": [{"name": "X", "a_A": 4, "label": 1, "families": ["111"]}]}))
    with pytest.raises(FileFormatError, match="labels must be"):
        load_table(tmp_path / "dup.json")
    with pytest.raises(FileFormatError, match="does not exist"):
        load_table(tmp_path / "none.json")
