"""The dendrite phantom: its truths are what its labels contain, and it images like real data."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI
from napari_cryoli.errors import InputError
from napari_cryoli.jobs import run_job
from napari_cryoli.tomo.phantom import PhantomSpec, build_specimen, simulate, write_phantom

SMALL = (88, 48, 128)  # 2 nm voxels: room for one 100-110 nm dendrite, quick to build


def _specimen(**kwargs):
    spec = PhantomSpec(**{"shape": SMALL, **kwargs})
    return build_specimen(spec, np.random.default_rng(spec.seed))


@pytest.fixture(scope="module")
def aged():
    """A 24 h phantom imaged and reconstructed (the full pipeline, once for several tests)."""
    return run_job(simulate(PhantomSpec(shape=SMALL, seed=4)))


def _runs(row: np.ndarray, value: int) -> list[tuple[int, int]]:
    """(start, stop) of the runs of ``value`` along a 1D array."""
    padded = np.concatenate(([False], row == value, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(int)))
    return list(zip(edges[::2], edges[1::2]))


def _shell_widths_beside_metal(labels: np.ndarray, z_axis: int, half: int) -> dict[int, list]:
    """SEI run lengths (voxels) along x near the axis height, keyed by the metal they touch.

    Rows within ``half`` voxels of the axis cross the shell almost along its normal.
    """
    widths: dict[int, list[int]] = {LI: [], LIH: []}
    for row in labels[z_axis - half : z_axis + half + 1].reshape(-1, labels.shape[-1]):
        for start, stop in _runs(row, SEI):
            for neighbour in (start - 1, stop):
                if 0 <= neighbour < row.size and row[neighbour] in widths:
                    widths[int(row[neighbour])].append(stop - start)
    return widths


def test_labels_use_the_ontology_and_leave_nothing_unlabelled(aged):
    assert aged.labels.dtype == np.uint8
    assert set(np.unique(aged.labels)) <= {BACKGROUND, LI, LIH, CU, SEI}
    assert not np.any(aged.labels == 0)
    assert aged.tomogram.shape == aged.labels.shape == SMALL
    assert aged.tomogram.dtype == np.float32
    assert aged.voxel_size_nm == (2.0, 2.0, 2.0)


def test_lih_fraction_in_the_truth_is_the_fraction_of_the_labels(aged):
    n_li = np.count_nonzero(aged.labels == LI)
    n_lih = np.count_nonzero(aged.labels == LIH)
    truth = aged.truth
    assert truth["lih_volume_fraction"] == pytest.approx(n_lih / (n_li + n_lih), abs=1e-12)
    dendrite = truth["dendrites"][0]
    assert dendrite["lih_volume_fraction"] == pytest.approx(truth["lih_volume_fraction"])
    assert 0.15 - 0.03 <= dendrite["lih_volume_fraction"] <= 0.35 + 0.01  # the 24 h range
    assert dendrite["lih_volume_fraction"] == pytest.approx(
        dendrite["lih_fraction_target"], abs=0.03
    )
    assert truth["volumes_nm3"]["LiH"] == n_lih * 8.0


def test_lih_is_one_region_inside_the_metal_that_reaches_the_surface(aged):
    lih = aged.labels == LIH
    assert ndimage.label(lih)[1] == 1
    touching = ndimage.binary_dilation(lih) & (aged.labels == SEI)
    assert np.count_nonzero(touching) > 100  # it has a free surface under the SEI


@pytest.mark.parametrize(("t_li", "t_lih"), [(12.0, 12.0), (8.0, 16.0)])
def test_shell_has_the_set_thickness_on_li_and_on_lih(t_li, t_lih):
    specimen = _specimen(
        sei_thickness_nm=t_li,
        sei_thickness_on_lih_nm=t_lih,
        lih_fraction=0.5,
        seed=2,
        shape=(96, 48, 128),
    )
    d = specimen.truth["dendrites"][0]
    z_axis, half = round(d["axis_nm"]["z"] / 2.0), int(d["diameter_nm"] / 2 / 6 / 2.0)
    widths = _shell_widths_beside_metal(specimen.labels, z_axis, half)
    for phase, t in ((LI, t_li), (LIH, t_lih)):
        assert len(widths[phase]) > 10
        assert np.mean(widths[phase]) * 2.0 == pytest.approx(t, abs=1.0)  # half a voxel
    assert specimen.truth["sei_thickness_nm"]["nominal_on_Li"] == t_li
    assert specimen.truth["sei_thickness_nm"]["nominal_on_LiH"] == t_lih


def test_every_metal_surface_is_covered_and_the_shell_rests_on_the_film():
    specimen = _specimen(aging="fresh", seed=5)
    labels = specimen.labels
    metal = (labels == LI) | (labels == LIH) | (labels == CU)
    assert not np.any(ndimage.binary_dilation(metal) & (labels == BACKGROUND))
    film_top_voxel = round(specimen.truth["film"]["top_nm"] / 2.0 - 0.5)
    sei_z = np.flatnonzero((labels == SEI).any(axis=(1, 2)))
    assert sei_z.min() == film_top_voxel + 1  # the lowest SEI sits right on the film


def test_fresh_has_no_lih_and_the_preset_shell():
    specimen = _specimen(aging="fresh")
    assert not np.any(specimen.labels == LIH)
    assert specimen.truth["lih_volume_fraction"] == 0.0
    assert specimen.truth["sei_thickness_nm"]["nominal_on_Li"] == 10.0


def test_extended_sei_of_7d_sits_on_li_only():
    specimen = _specimen(aging="7d", seed=3, shape=(88, 64, 160))
    labels = specimen.labels
    extended = specimen.regions["extended SEI"]
    assert specimen.truth["extended_sei"]["n_clusters"] > 0
    assert np.count_nonzero(extended) * 8.0 == pytest.approx(
        specimen.truth["extended_sei"]["volume_nm3"]
    )
    assert specimen.truth["extended_sei"]["max_extent_nm"] <= 110.0
    metal = (labels == LI) | (labels == LIH) | (labels == CU)
    _, nearest = ndimage.distance_transform_edt(~metal, return_indices=True)
    under = labels[tuple(nearest)][extended]
    assert np.all(under == LI)
    # and the SEI over LiH is the compact shell alone
    depth = ndimage.distance_transform_edt(~metal, sampling=2.0)
    over_lih = (labels == SEI) & (labels[tuple(nearest)] == LIH)
    assert depth[over_lih].max() <= 14.0 + 1.0  # from voxel centres: within half a voxel


def test_cu_particle_sits_inside_the_metal_next_to_the_lih(aged):
    (cu,) = aged.truth["cu_particles"]
    particle = aged.labels == CU
    assert 8.0 <= cu["radius_nm"] <= 15.0
    assert np.count_nonzero(particle) * 8.0 == cu["volume_nm3"]
    assert cu["equivalent_diameter_nm"] == pytest.approx(2 * cu["radius_nm"], rel=0.1)
    shell = ndimage.binary_dilation(particle) & ~particle
    assert set(np.unique(aged.labels[shell])) <= {LI, LIH}  # buried in metal
    gap = ndimage.distance_transform_edt(aged.labels != LIH, sampling=2.0)[particle].min()
    assert gap <= 8.0
    centroid = np.argwhere(particle).mean(axis=0) * 2.0
    assert cu["centroid_nm"] == pytest.approx(list(centroid))


def test_no_cu_when_switched_off():
    specimen = _specimen(cu=False)
    assert not np.any(specimen.labels == CU)
    assert specimen.truth["cu_particles"] == []


def test_dendrite_diameters_are_in_range_and_as_designed():
    specimen = _specimen(seed=7, bent=True)
    (d,) = specimen.truth["dendrites"]
    assert 100.0 <= d["diameter_nm"] <= 200.0
    assert d["diameter_measured_nm"] == pytest.approx(d["diameter_nm"], rel=0.03)
    assert d["bent"]


def test_several_dendrites_lie_side_by_side():
    specimen = _specimen(n_dendrites=2, shape=(88, 32, 192), seed=1)
    metal = np.isin(specimen.labels, (LI, LIH, CU))
    assert ndimage.label(metal)[1] == 2
    xs = [d["axis_nm"]["x"][0] for d in specimen.truth["dendrites"]]
    assert xs == sorted(xs)  # numbered by increasing x


def test_same_seed_same_phantom_other_seed_other_phantom():
    a = run_job(simulate(PhantomSpec(shape=(88, 24, 128), seed=11)))
    b = run_job(simulate(PhantomSpec(shape=(88, 24, 128), seed=11)))
    c = run_job(simulate(PhantomSpec(shape=(88, 24, 128), seed=12)))
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.tomogram, b.tomogram)
    assert a.truth == b.truth
    assert not np.array_equal(a.labels, c.labels)


def test_lih_is_darker_than_li_in_the_tomogram(aged):
    """Dense is dark: LiH (0.78 g/cm³) below Li (0.53), both below vacuum, SEI and Cu lower."""
    tom, labels = aged.tomogram, aged.labels
    mean = {k: float(tom[labels == k].mean()) for k in (LI, LIH, CU)}
    assert mean[LIH] < mean[LI] < 0.0
    assert mean[CU] < mean[LIH]
    grey = aged.truth["grey_values"]
    assert grey["mean"]["LiH"] == pytest.approx(mean[LIH])
    assert grey["mean"]["LiH"] < grey["mean"]["Li"]
    assert abs(grey["mean"]["vacuum"]) < 0.1
    assert 0.3 < grey["cnr_lih_li"] < 2.0  # contrast comparable to the noise, as in real data


def test_tilt_series_covers_the_tilt_range(aged):
    assert aged.angles_deg[0] == -60.0 and aged.angles_deg[-1] == 60.0
    assert len(aged.angles_deg) == 121
    assert aged.tilt_series.shape == (121, SMALL[1], SMALL[2])


def test_stop_before_imaging_returns_a_stopped_phantom():
    stop = threading.Event()
    stop.set()
    phantom = run_job(simulate(PhantomSpec(shape=SMALL), stop=stop))
    assert phantom.stopped
    assert np.all(phantom.tomogram == 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": (40, 64, 128)}, "does not fit in 40 voxels"),
        ({"shape": SMALL, "n_dendrites": 3}, "side by side"),
        ({"aging": "1y"}, "unknown aging"),
        ({"shape": (8, 64, 64)}, "at least 16"),
        ({"lih_fraction": 1.5}, "LiH fraction"),
        ({"dose_e_per_A2": 0}, "dose"),
    ],
)
def test_impossible_specs_raise_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        spec = PhantomSpec(**kwargs)
        build_specimen(spec, np.random.default_rng(0))


def test_write_phantom_writes_files_that_read_back(aged, tmp_path):
    from napari_cryoli.io import read_labels, read_mrc, read_tilt_series

    paths = write_phantom(aged, tmp_path / "out")
    tomogram = read_mrc(paths["tomogram"])
    assert tomogram.voxel_size_nm == pytest.approx((2.0, 2.0, 2.0))
    assert np.array_equal(np.asarray(tomogram.data), aged.tomogram)
    labels = read_labels(paths["labels"])
    assert labels.header["mode"] == 0
    assert np.array_equal(np.asarray(labels.data), aged.labels)
    assert json.loads(paths["truth"].read_text()) == json.loads(json.dumps(aged.truth))
    series = read_tilt_series(paths["tilt_series"], paths["angles"])
    assert series.angles_deg == pytest.approx(aged.angles_deg, abs=1e-3)
    assert series.pixel_size_nm == pytest.approx(2.0)


def test_write_phantom_refuses_a_file_as_folder(aged, tmp_path):
    from napari_cryoli.errors import FileFormatError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FileFormatError, match="not a folder"):
        write_phantom(aged, blocker)


# --- options beyond the aging presets ------------------------------------------------------------

# Checksums of phantoms made before the options existed: the defaults must still give them.
_BEFORE = {
    "7d, two dendrites": (
        {"shape": (96, 64, 300), "aging": "7d", "seed": 11, "n_dendrites": 2},
        "27c0e25e84edc51eae3e2f0f02e83d03698a0bbdead0cd6cca172e760758fc94",
    ),
    "bent fresh": (
        {"shape": (96, 64, 200), "aging": "fresh", "seed": 3, "bent": True, "cu": False},
        "01a8fa04df7c22558a3c2a8f87112677b0eaae8b569eecde739ac24d61751e80",
    ),
    "two thicknesses": (
        {"shape": (96, 48, 160), "aging": "7d", "seed": 5, "sei_thickness_nm": 8,
         "sei_thickness_on_lih_nm": 16, "lih_fraction": 0.3},
        "7fb781ff75d525ced6cbd5205f8e109c669600c8e5a968e2aa3db0a4c8f4a3f8",
    ),
}  # fmt: skip


def _sha(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(_BEFORE))
def test_defaults_reproduce_the_labels_made_before_the_options(name):
    kwargs, checksum = _BEFORE[name]
    spec = PhantomSpec(**kwargs)
    assert _sha(build_specimen(spec, np.random.default_rng(spec.seed)).labels) == checksum


def test_defaults_reproduce_the_tomogram_made_before_the_options(aged):
    assert _sha(aged.labels) == "a0304c7e31de3c8913908927894c2f0c50957c10f4f07c242341ff14e01ff112"
    # Float32 reconstruction differs by about 2e-5 between CPUs (SIMD paths of the FFTs); a
    # change in what the defaults simulate moves these by far more.
    tomogram = aged.tomogram.astype(np.float64)
    assert tomogram.mean() == pytest.approx(-0.134529638939956, rel=1e-4)
    assert tomogram.std() == pytest.approx(0.2835634586051721, rel=1e-4)
    assert aged.tilt_series.astype(np.float64).mean() == pytest.approx(
        -0.21315509494105112, rel=1e-4
    )


def _metal_direction(labels: np.ndarray) -> float:
    """In-plane angle (degrees from y towards x, in [0, 180)) of the metal's long axis."""
    _, yy, xx = np.nonzero(np.isin(labels, (LI, LIH, CU)))
    cov = np.cov(np.stack([yy, xx]).astype(float))
    _, vecs = np.linalg.eigh(cov)
    dy, dx = vecs[:, -1]
    return float(np.degrees(np.arctan2(dx, dy)) % 180.0)


@pytest.mark.parametrize("angle", [90.0, 37.0, 140.0])
def test_dendrite_axis_turns_by_the_axis_angle(angle):
    specimen = _specimen(shape=(88, 96, 96), axis_angle_deg=angle, diameter_nm=(100, 110))
    found = _metal_direction(specimen.labels)
    assert min(abs(found - angle), 180 - abs(found - angle)) < 6.0  # rods lie within 4° of it
    (d,) = specimen.truth["dendrites"]
    assert d["diameter_measured_nm"] == pytest.approx(d["diameter_nm"], rel=0.05)
    assert specimen.truth["field"]["axis_angle_deg"] == angle
    labels = specimen.labels
    metal = (labels == LI) | (labels == LIH) | (labels == CU)
    assert not np.any(ndimage.binary_dilation(metal) & (labels == BACKGROUND))  # still covered


def test_perpendicular_dendrite_runs_along_x_and_crosses_the_field():
    specimen = _specimen(shape=(88, 96, 128), axis_angle_deg=90.0)
    metal = np.isin(specimen.labels, (LI, LIH, CU))
    assert metal.any(axis=(0, 1)).all()  # every x column holds metal
    assert not metal.any(axis=(0, 2)).all()  # but not every y row: it is ~100-110 nm wide
    axis = specimen.truth["dendrites"][0]["axis_nm"]
    assert np.ptp(axis["x"]) > 5 * np.ptp(axis["y"])


def test_three_dendrites_and_the_metal_fraction_of_the_field():
    specimen = _specimen(n_dendrites=3, shape=(88, 32, 320), diameter_nm=(100, 110), seed=2)
    metal = np.isin(specimen.labels, (LI, LIH, CU))
    assert ndimage.label(metal)[1] == 3
    assert len(specimen.truth["dendrites"]) == 3
    assert specimen.truth["field"]["metal_volume_fraction"] == pytest.approx(metal.mean())


def test_fiducials_are_dense_gold_labelled_background():
    specimen = _specimen(fiducials=8, shape=(88, 64, 160), seed=3)
    beads = specimen.truth["fiducials"]
    assert len(beads) == 8
    gold = specimen.regions["gold"]
    assert np.all(specimen.labels[gold] == BACKGROUND)
    for bead in beads:
        assert 5.0 <= bead["diameter_nm"] <= 15.0
        centre = tuple(np.round(np.asarray(bead["centre_nm"]) / 2.0).astype(int))
        assert gold[centre] and specimen.density[centre] > 15.0
        assert bead["on"] in ("film top", "film underside", "vacuum")
    # clear of the specimen: nothing labelled within a voxel of any bead
    assert not np.any(ndimage.binary_dilation(gold) & (specimen.labels != BACKGROUND))


def test_ice_blobs_are_background_at_the_density_of_ice():
    specimen = _specimen(ice_blobs=2, shape=(88, 96, 192), seed=4)
    assert len(specimen.truth["ice"]) == 2
    ice = specimen.regions["ice"]
    assert np.all(specimen.labels[ice] == BACKGROUND)
    core = ndimage.binary_erosion(ice, iterations=2) & ~specimen.regions["film"]
    assert specimen.density[core].mean() == pytest.approx(0.93, abs=0.01)


@pytest.mark.parametrize("pieces", [0, 2, 3])
def test_lih_comes_in_the_set_number_of_pieces(pieces):
    specimen = _specimen(aging="7d", lih_pieces=pieces, lih_fraction=0.4, cu=False, seed=1)
    lih = specimen.labels == LIH
    assert ndimage.label(lih, np.ones((3, 3, 3)))[1] == pieces
    d = specimen.truth["dendrites"][0]
    assert d["lih_pieces"] == pieces
    assert d["lih_volume_fraction"] == pytest.approx(0.4 if pieces else 0.0, abs=0.02)
    if pieces:
        assert d["lih_reaches_surface"]


@pytest.mark.parametrize("pieces", [1, 2])
def test_interior_lih_never_touches_the_sei(pieces):
    specimen = _specimen(lih_pieces=pieces, lih_interior=True, lih_fraction=0.3, seed=2)
    lih = specimen.labels == LIH
    assert np.count_nonzero(lih) > 100
    near = ndimage.binary_dilation(lih, np.ones((3, 3, 3), bool))
    assert not np.any(near & np.isin(specimen.labels, (SEI, BACKGROUND)))
    assert not specimen.truth["dendrites"][0]["lih_reaches_surface"]


@pytest.mark.parametrize(("on", "phases"), [("LiH", {LIH}), ("both", {LI, LIH}), ("Li", {LI})])
def test_extended_sei_sits_over_the_chosen_phases(on, phases):
    specimen = _specimen(aging="24h", extended_sei_on=on, lih_fraction=0.5, seed=3,
                         shape=(88, 64, 160))  # fmt: skip
    labels, extended = specimen.labels, specimen.regions["extended SEI"]
    assert extended.any()
    metal = np.isin(labels, (LI, LIH, CU))
    _, nearest = ndimage.distance_transform_edt(~metal, return_indices=True)
    under = set(np.unique(labels[tuple(nearest)][extended]).tolist())
    assert under <= phases
    over = specimen.truth["extended_sei"]["volume_over_nm3"]
    assert sum(over.values()) == pytest.approx(specimen.truth["extended_sei"]["volume_nm3"])


def test_no_extended_sei_on_7d_when_switched_off():
    specimen = _specimen(aging="7d", extended_sei_on="none", seed=3)
    assert not specimen.regions["extended SEI"].any()
    assert specimen.truth["extended_sei"]["on"] == []


def test_cu_anywhere_is_buried_in_metal_and_not_tied_to_the_lih():
    gaps = []
    for seed in range(4):
        specimen = _specimen(cu_anywhere=True, lih_fraction=0.2, seed=seed)
        particle = specimen.labels == CU
        shell = ndimage.binary_dilation(particle) & ~particle
        assert set(np.unique(specimen.labels[shell])) <= {LI, LIH}
        assert specimen.truth["cu_particles"][0]["placement"] == "anywhere in the metal"
        lih_gap = ndimage.distance_transform_edt(specimen.labels != LIH, sampling=2.0)
        gaps.append(lih_gap[particle].min())
    assert max(gaps) > 8.0  # at least one far from the LiH (beside it: within 8 nm)


def test_sei_density_sets_the_shell_density():
    specimen = _specimen(sei_density_g_cm3=2.2)
    shell = (specimen.labels == SEI) & ~specimen.regions["extended SEI"]
    assert specimen.density[shell].mean() == pytest.approx(2.2, rel=0.02)
    assert specimen.truth["densities_g_cm3"]["SEI"] == 2.2


@pytest.mark.parametrize("film", ["none", "holey"])
def test_film_absent_or_ending_at_a_hole(film):
    specimen = _specimen(film=film, seed=6)
    covered = specimen.regions["film"].any(axis=0)
    if film == "none":
        assert not covered.any() and specimen.slab_mass_nm == 0.0
        assert specimen.film_edge is None
    else:
        assert 0.05 < covered.mean() < 0.95  # the edge crosses the field
        edge = specimen.film_edge
        ny, nx = covered.shape
        yc, xc = ((np.arange(n) - (n - 1) / 2) * 2.0 for n in (ny, nx))
        assert np.array_equal(covered, edge.signed_distance(yc[:, None], xc[None, :]) >= 0)
        metal_yx = np.isin(specimen.labels, (LI, LIH)).any(axis=0)
        assert (metal_yx & covered).any() and (metal_yx & ~covered).any()  # partly over vacuum


def test_elemental_scattering_weighs_cu_above_li_per_mass():
    from napari_cryoli.tomo.phantom import scattering_per_mass

    assert scattering_per_mass("carbon") == pytest.approx(1.0)
    assert scattering_per_mass("Cu") > 3 * scattering_per_mass("Li")
    assert scattering_per_mass("LiH") > scattering_per_mass("Li")
    specimen = _specimen(scattering="elemental")
    ratio = specimen.scattering / np.where(specimen.density > 0, specimen.density, 1)
    labels = specimen.labels
    assert np.allclose(ratio[labels == CU], scattering_per_mass("Cu"))
    assert np.allclose(ratio[labels == LI], scattering_per_mass("Li"))
    assert _specimen().scattering is None


def test_inverted_flips_the_sign_and_denoising_smooths():
    base = {"shape": (88, 32, 128), "seed": 8, "fiducials": 4}
    plain = run_job(simulate(PhantomSpec(**base)))
    inverted = run_job(simulate(PhantomSpec(**base, inverted=True)))
    assert np.array_equal(inverted.tomogram, -plain.tomogram)
    assert (
        inverted.truth["grey_values"]["mean"]["gold"]
        > inverted.truth["grey_values"]["mean"]["Cu"]
        > 0
    )
    assert inverted.truth["grey_values"]["cnr_lih_li"] == pytest.approx(
        plain.truth["grey_values"]["cnr_lih_li"]
    )
    smooth = run_job(simulate(PhantomSpec(**base, denoise_sigma_nm=3.0)))
    assert smooth.truth["grey_values"]["noise_sd"] < 0.75 * plain.truth["grey_values"]["noise_sd"]
    assert smooth.truth["imaging"]["denoise_sigma_nm"] == 3.0


def test_defocus_adds_phase_contrast_fringes_at_edges():
    base = {"shape": (88, 24, 128), "seed": 9, "dose_e_per_A2": 1e6, "voxel_size_nm": 2.0}
    plain = run_job(simulate(PhantomSpec(**base)))
    phase = run_job(simulate(PhantomSpec(**base, defocus_um=4.0)))
    assert phase.truth["imaging"]["ctf"]["cs_mm"] == 2.7
    # the zero-tilt image: the same absorption, plus edge fringes (more high-frequency power)
    a, b = (
        plain.tilt_series[len(plain.angles_deg) // 2],
        phase.tilt_series[len(phase.angles_deg) // 2],
    )
    assert np.abs(np.diff(b, axis=1)).mean() > 1.5 * np.abs(np.diff(a, axis=1)).mean()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"film": "lacey"}, "unknown film"),
        ({"scattering": "Z"}, "unknown scattering"),
        ({"extended_sei_on": "Cu"}, "extended SEI on"),
        ({"lih_pieces": 4}, "0 to 3 pieces"),
        ({"sei_density_g_cm3": 0}, "SEI density"),
        ({"fiducials": -1}, "cannot be negative"),
        ({"defocus_um": -2}, "cannot be negative"),
        ({"axis_angle_deg": float("nan")}, "axis angle"),
        ({"shape": (88, 64, 64), "axis_angle_deg": 90, "n_dendrites": 3}, "side by side"),
    ],
)
def test_impossible_options_raise_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        PhantomSpec(**kwargs)


def test_overhang_lets_the_dendrite_reach_beyond_the_field():
    specimen = _specimen(shape=(88, 48, 64), overhang_nm=40.0, diameter_nm=(100, 110), seed=1,
                         cu_anywhere=True)  # fmt: skip
    metal = np.isin(specimen.labels, (LI, LIH, CU))
    assert metal[:, :, 0].any() or metal[:, :, -1].any()  # cut by a side of the field
    assert specimen.truth["field"]["metal_volume_fraction"] > 0.3
    particle = specimen.labels == CU
    if particle.any():  # whole inside the field
        assert not (particle[:, :, 0].any() or particle[:, :, -1].any())
