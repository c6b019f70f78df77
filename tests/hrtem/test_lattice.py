"""Whole-image analysis of synthetic micrographs with known truth (small and quick; the quality
figures on frozen seeds are in benchmarks/hrtem_quality.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.hrtem.lattice import analyse, report
from napari_cryoli.hrtem.phases import AMORPHOUS, canonical_zone, default_table
from napari_cryoli.hrtem.simulate import Grain, MicrographSpec, simulate_micrograph


@pytest.mark.parametrize(("phase", "zone"), [("Li", (0, 0, 1)), ("LiH", (0, 1, 1)),
                                             ("Cu", (0, 1, 1)), ("Li2O", (0, 0, 1))])
def test_single_grain(phase, zone):
    spec = MicrographSpec(grains=(Grain(phase, zone, 23.0),), shape=(320, 320), seed=5)
    m = simulate_micrograph(spec)
    result = analyse(m.image, m.pixel_size_A).identification
    assert result.phases[0].phase == phase
    assert result.phases[0].zone_axis == canonical_zone(zone)
    truth = default_table().by_name(phase)
    for r, assigned in zip(result.reflections, result.assigned):
        if assigned and assigned[0] == phase:
            assert r.d_A == pytest.approx(truth.d_A(assigned[1]), rel=0.005)


def test_two_grains_side_by_side():
    spec = MicrographSpec(layout="two", grains=(Grain("Li", (0, 0, 1), 10.0),
                                                Grain("LiH", (0, 1, 1), 75.0)),
                          shape=(384, 384), boundary_deg=20.0, seed=2)
    m = simulate_micrograph(spec)
    found = {p.phase for p in analyse(m.image, m.pixel_size_A).identification.phases}
    assert found == {"Li", "LiH"}


def test_amorphous_layer_has_no_phase():
    m = simulate_micrograph(MicrographSpec(layout="amorphous", shape=(320, 320), seed=4))
    result = analyse(m.image, m.pixel_size_A)
    assert result.identification.amorphous
    assert result.identification.label(default_table()) == AMORPHOUS
    data = report(result)
    assert data["amorphous"] is True and data["phases"] == [] and data["reflections"] == []


def test_report_keys():
    spec = MicrographSpec(grains=(Grain("LiH", (0, 0, 1), 5.0),), shape=(256, 256), seed=1)
    m = simulate_micrograph(spec)
    data = report(analyse(m.image, m.pixel_size_A))
    assert data["pixel_size_A"] == pytest.approx(0.41)
    r = data["reflections"][0]
    assert {"d_A", "azimuth_deg", "intensity", "snr", "phase", "hkl", "candidates"} <= set(r)
    assert r["phase"] == "LiH" and sorted(abs(v) for v in r["hkl"]) == [0, 0, 2]
    assert {"LiH", "LiF"} <= {c["phase"] for c in r["candidates"]}
    p = data["phases"][0]
    assert p["phase"] == "LiH" and p["zone_axis"] == [0, 0, 1] and p["ambiguous_with"] == ["LiF"]
    assert 0 < p["score"] <= 1
    assert np.asarray(data["angles_deg"]).shape == (len(data["reflections"]),) * 2
