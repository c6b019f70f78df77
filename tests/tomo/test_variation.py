"""Pre-training phantoms: every kind of variation is drawn, deterministically, within budget."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from napari_cryoli.errors import InputError
from napari_cryoli.jobs import run_job
from napari_cryoli.segment.pretrain import BENCHMARK_SEEDS
from napari_cryoli.tomo.phantom import simulate
from napari_cryoli.tomo.variation import MAX_VOXELS, describe, draw_spec

SEEDS = range(500_000, 500_060)


@pytest.fixture(scope="module")
def drawn():
    return [draw_spec(seed) for seed in SEEDS]


def test_same_seed_same_spec_other_seed_other_spec():
    assert draw_spec(500_001) == draw_spec(500_001)
    assert draw_spec(500_001) != draw_spec(500_002)
    assert draw_spec(500_001).seed == 500_001


def test_benchmark_and_excluded_seeds_are_refused():
    for seed in BENCHMARK_SEEDS:
        with pytest.raises(InputError, match="kept out"):
            draw_spec(seed)
    with pytest.raises(InputError, match="kept out"):
        draw_spec(500_003, exclude={500_003})


def test_fields_stay_within_the_voxel_budget_at_any_voxel_size(drawn):
    assert all(np.prod(s.shape) <= MAX_VOXELS for s in drawn)
    fine = [draw_spec(seed, voxel_size_nm=1.0) for seed in SEEDS[:15]]
    assert all(np.prod(s.shape) <= MAX_VOXELS and s.voxel_size_nm == 1.0 for s in fine)
    # the field is drawn in nm: a finer voxel sees a smaller field
    assert np.median([s.shape[0] for s in fine]) > 1.5 * np.median(
        [s.shape[0] for s in drawn[:15]]
    )


def test_field_composition_varies(drawn):
    counts = Counter(s.n_dendrites for s in drawn)
    assert set(counts) == {1, 2, 3}
    metal = [describe(s)["expected_metal_fraction"] for s in drawn]
    assert min(metal) < 0.08 and max(metal) > 0.4  # mostly-vacuum fields and full ones
    assert set(Counter(s.film for s in drawn)) == {"full", "holey", "none"}
    assert 0.15 < np.mean([s.fiducials > 0 for s in drawn]) < 0.65
    assert all(1 <= s.fiducials <= 15 for s in drawn if s.fiducials)
    assert 0.1 < np.mean([s.ice_blobs > 0 for s in drawn]) < 0.55


def test_axis_angles_cover_the_half_turn(drawn):
    angles = np.array([s.axis_angle_deg for s in drawn])
    assert angles.min() >= 0.0 and angles.max() < 180.0
    assert np.histogram(angles, bins=4, range=(0, 180))[0].min() >= 5  # perpendicular too


def test_imaging_varies_within_the_stated_ranges(drawn):
    defocus = np.array([s.defocus_um for s in drawn])
    assert 0.3 < np.mean(defocus > 0) < 0.7
    assert defocus[defocus > 0].min() >= 1.0 and defocus.max() <= 5.0
    assert 0.3 < np.mean([s.scattering == "elemental" for s in drawn]) < 0.7
    assert 0.08 < np.mean([s.inverted for s in drawn]) < 0.35
    assert 0.08 < np.mean([s.denoise_sigma_nm > 0 for s in drawn]) < 0.35
    assert all(120 <= s.dose_e_per_A2 <= 800 for s in drawn)
    assert all(50 <= s.tilt_range_deg <= 66 for s in drawn)
    assert {s.tilt_step_deg for s in drawn} == {1.0, 2.0, 3.0}
    assert all(1.0 <= s.psf_fwhm_nm <= 3.5 for s in drawn)


def test_chemistry_is_drawn_without_the_studys_conclusions(drawn):
    density = np.array([s.sei_density_g_cm3 for s in drawn])
    assert np.any(density == 1.1)
    assert density[density != 1.1].min() >= 1.5 and density.max() <= 2.6
    assert set(Counter(s.extended_sei_on for s in drawn)) == {"Li", "LiH", "both", "none"}
    assert {s.lih_pieces for s in drawn} == {0, 1, 2, 3}
    assert {s.lih_interior for s in drawn} == {True, False}
    assert all(0.0 <= s.lih_fraction <= 0.7 for s in drawn)
    assert all(s.cu_anywhere for s in drawn if s.cu) and not all(s.cu for s in drawn)
    # the aging name says nothing: fresh phantoms with LiH, SEI on LiH thicker or thinner
    assert any(s.aging == "fresh" and s.lih_fraction > 0 for s in drawn)
    diff = [s.sei_thickness_on_lih_nm - s.sei_thickness_nm for s in drawn]
    assert min(diff) < -3 and max(diff) > 3


def test_describe_is_json_ready(drawn):
    info = describe(drawn[0])
    assert json.loads(json.dumps(info)) == info
    assert info["voxels"] == int(np.prod(drawn[0].shape))
    assert info["field_nm"][0] == pytest.approx(
        drawn[0].shape[0] * drawn[0].voxel_size_nm, abs=0.1
    )


def test_a_drawn_phantom_simulates_with_its_truths():
    spec = draw_spec(500_007, voxel_size_nm=4.0, max_voxels=400_000)
    phantom = run_job(simulate(spec))
    truth = phantom.truth
    assert phantom.tomogram.shape == spec.shape
    assert truth["field"]["axis_angle_deg"] == spec.axis_angle_deg
    assert len(truth["dendrites"]) == spec.n_dendrites
    assert 0.0 < truth["field"]["metal_volume_fraction"] < 0.7
    assert truth["imaging"]["defocus_um"] == spec.defocus_um
