"""Condition statistics on the project's own simulated fresh / 24 h / 7 d series."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from napari_cryoli.cli import main
from napari_cryoli.dataset.batch import TomogramResult, plan_batch, write_dataset_table
from napari_cryoli.dataset.statistics import CompareConfig, compare
from napari_cryoli.io import read_labels
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import measure, write_report

from .conftest import write_series

AGINGS = ("fresh", "24h", "7d")
#: Seeds frozen before the statistics were written; four tomograms per condition.
SEEDS = (11, 12, 13, 14)


@pytest.fixture(scope="module")
def truth_table(tmp_path_factory) -> Path:
    """The dataset table of the series' true labels: what a perfect segmentation would give,
    so that the statistics are checked against the design, not the network."""
    root = tmp_path_factory.mktemp("aging")
    series = write_series(root, AGINGS, SEEDS, shape=(56, 64, 64), voxel_size_nm=2.0,
                          diameter_nm=(40.0, 60.0), tilt_step_deg=6.0)
    labels = {p.with_name("labels.mrc"): aging for aging, ps in series.items() for p in ps}
    items = plan_batch(list(labels), conditions={str(p): c for p, c in labels.items()})
    out = root / "out"
    out.mkdir()
    results = []
    for item in items:
        volume = read_labels(item.tomogram)
        write_report(run_job(measure(volume.data, volume.voxel_size_nm)), item.report(out))
        results.append(TomogramResult(item, "done"))
    return write_dataset_table(results, out)


def test_recovers_the_designed_ordering(truth_table):
    result = run_job(compare(truth_table, CompareConfig(n_bootstrap=2000, n_permutations=2000)))
    assert result.conditions == AGINGS
    mean = {m: [result.summary(m, c).mean for c in AGINGS]
            for m in ("lih_volume_fraction", "sei_trusted_median_nm")}
    # Designed: LiH 0 / 0.15-0.35 / 0.40-0.60; compact SEI 10 / 12 / 14 nm.
    assert mean["lih_volume_fraction"][0] == 0
    assert 0.15 <= mean["lih_volume_fraction"][1] <= 0.35
    assert 0.40 <= mean["lih_volume_fraction"][2] <= 0.60
    assert np.allclose(mean["sei_trusted_median_nm"], (10, 12, 14), atol=0.5)
    for metric in ("lih_volume_fraction", "sei_trusted_median_nm"):
        for a, b in (("fresh", "24h"), ("fresh", "7d"), ("24h", "7d")):
            d = result.difference(metric, a, b)
            assert d.difference > 0 and d.excludes_zero, (metric, a, b, d)
            assert d.p_permutation < 0.05 and d.p_mann_whitney < 0.05
    # Extended SEI is designed into 7 d only: on Li it differs, between fresh and 24 h it does not.
    assert result.difference("extended_share_li", "24h", "7d").excludes_zero
    same = result.difference("extended_share_li", "fresh", "24h")
    assert same.difference == 0 and not same.excludes_zero and same.p_permutation > 0.5
    s = result.summary("lih_volume_fraction", "24h")
    assert s.ci_low <= s.mean <= s.ci_high and s.n_tomograms == 4


def test_intervals_shrink_with_confidence_and_are_reproducible(truth_table):
    a = run_job(compare(truth_table, CompareConfig(n_bootstrap=1000, n_permutations=500)))
    b = run_job(compare(truth_table, CompareConfig(n_bootstrap=1000, n_permutations=500)))
    c = run_job(compare(truth_table, CompareConfig(n_bootstrap=1000, n_permutations=500,
                                                  confidence=0.8)))
    key = ("lih_volume_fraction", "7d")
    sa, sb, sc = (r.summary(*key) for r in (a, b, c))
    assert (sa.ci_low, sa.ci_high) == (sb.ci_low, sb.ci_high)
    assert sa.ci_low <= sc.ci_low <= sc.ci_high <= sa.ci_high


def test_cli_compare(truth_table, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(truth_table), "--out", str(out), "--bootstrap", "500",
                 "--permutations", "500"]) == 0
    err = capsys.readouterr().err
    assert "LiH fraction of the metal: fresh 0" in err
    for name in ("summary.csv", "differences.csv", "comparison.json", "comparison.png",
                 "comparison.svg"):
        assert (out / name).stat().st_size > 0
    with open(out / "differences.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 3
    from matplotlib.image import imread

    assert imread(out / "comparison.png").shape[2] in (3, 4)
    assert (out / "comparison.svg").read_text().lstrip().startswith("<?xml")


def test_cli_compare_refuses_bad_input(tmp_path, capsys):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["compare", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not a napari-cryoli dataset table" in capsys.readouterr().err
    empty = tmp_path / "dataset.csv"
    empty.write_text("tomogram,condition,status,lih_volume_fraction,id\nt,c,failed,,\n")
    assert main(["compare", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "no measured dendrite" in capsys.readouterr().err


def test_one_dendrite_per_tomogram_makes_the_units_agree(truth_table):
    """With one dendrite in each tomogram, resampling tomograms is resampling dendrites."""
    with open(truth_table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len({r["tomogram"] for r in rows})
    config = {"n_bootstrap": 500, "n_permutations": 500, "seed": 3}
    by_tomogram = run_job(compare(rows, CompareConfig(unit="tomogram", **config)))
    by_dendrite = run_job(compare(rows, CompareConfig(unit="dendrite", **config)))
    assert by_tomogram.summaries == by_dendrite.summaries
    assert by_tomogram.differences == by_dendrite.differences
