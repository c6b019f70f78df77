"""Every design truth of the dendrite phantom (its exact labels) recovered within 5 %."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import Report, measure
from napari_cryoli.tomo.phantom import PhantomSpec, build_specimen

SPECS = {
    "fresh": PhantomSpec(aging="fresh"),
    "24h": PhantomSpec(aging="24h"),
    "7d": PhantomSpec(aging="7d"),
    "two-bent": PhantomSpec(
        aging="24h",
        n_dendrites=2,
        bent=True,
        shape=(96, 160, 256),
        sei_thickness_nm=10.0,
        sei_thickness_on_lih_nm=16.0,
    ),
}


@pytest.fixture(scope="module", params=list(SPECS))
def measured(request) -> tuple[dict, Report]:
    spec = SPECS[request.param]
    specimen = build_specimen(spec, np.random.default_rng(spec.seed))
    return specimen.truth, run_job(measure(specimen.labels, spec.voxel_size_nm))


def close(measured_value, truth, rel=0.05) -> bool:
    return measured_value == pytest.approx(truth, rel=rel)


def test_shell_thickness_on_li_and_on_lih(measured):
    truth, report = measured
    sei = report.sei_thickness_nm
    # Compact SEI only: the 7d phantom grows porous extended SEI on Li on top of the shell.
    assert close(sei.compact.on_li.median, truth["sei_thickness_nm"]["nominal_on_Li"])
    assert close(sei.compact.on_li.mean, truth["sei_thickness_nm"]["nominal_on_Li"])
    if truth["lih_volume_fraction"] > 0:
        assert close(sei.on_lih.median, truth["sei_thickness_nm"]["nominal_on_LiH"])
        assert close(sei.on_lih.mean, truth["sei_thickness_nm"]["nominal_on_LiH"])


def test_lih_fraction_overall_and_per_dendrite(measured):
    truth, report = measured
    assert report.lih_volume_fraction == pytest.approx(truth["lih_volume_fraction"], abs=1e-9)
    assert len(report.dendrites) == len(truth["dendrites"])
    for t in truth["dendrites"]:
        # Match by volume: dendrite ids are numbered in a different order.
        d = min(report.dendrites, key=lambda d: abs(d.volume_nm3 - t["volume_nm3"]))
        assert close(d.volume_nm3, t["volume_nm3"], rel=1e-9)
        assert d.lih_volume_fraction == pytest.approx(t["lih_volume_fraction"], abs=0.01)
        assert close(d.diameter_nm, t["diameter_measured_nm"])
        assert close(d.width_xy_nm, t["diameter_measured_nm"])
        assert close(d.width_z_nm, t["diameter_measured_nm"])
        axis = t["axis_nm"]
        polyline = np.stack([np.full(len(axis["y"]), axis["z"]), axis["y"], axis["x"]], axis=1)
        length = np.linalg.norm(np.diff(polyline, axis=0), axis=1).sum()
        ends = (len(axis["y"]) - 1) * (axis["y"][1] - axis["y"][0])
        # The axis samples stop short of the far border: scale to the volume's full extent.
        full = length * (report.shape[1] * report.voxel_size_nm[1]) / ends
        assert close(d.length_nm, full)


def test_cu_particle_size_and_place(measured):
    truth, report = measured
    assert len(report.cu_particles) == len(truth["cu_particles"])
    for t in truth["cu_particles"]:
        p = min(
            report.cu_particles,
            key=lambda p: np.linalg.norm(np.subtract(p.centroid_nm, t["centroid_nm"])),
        )
        assert close(p.equivalent_diameter_nm, t["equivalent_diameter_nm"], rel=1e-6)
        assert close(p.equivalent_diameter_nm, 2 * t["radius_nm"])  # the design
        assert np.allclose(p.centroid_nm, t["centroid_nm"], atol=1e-6)
        assert 0.3 < p.position_along_axis < 0.7  # placed mid-dendrite


def test_extended_sei_only_on_li(measured):
    truth, report = measured
    share = report.sei_thickness_nm.extended_share
    if truth["extended_sei"]["n_clusters"]:
        assert share.li > 0.005
    else:
        assert share.li == 0.0
    assert share.lih in (0.0, None)
