"""Condition statistics of a dataset table: the study's headline in one command.

Per condition, the distribution of four per-dendrite numbers of the dataset table (LiH fraction,
SEI thickness on the trusted surface, extended-SEI share on Li and on LiH), their mean with a
bootstrap percentile confidence interval, and for every pair of conditions the difference of
means with its bootstrap interval, a permutation test and a Mann-Whitney U test.

Dendrites of one tomogram share its sample, freezing and imaging, so by default the unit of
resampling is the tomogram (a cluster bootstrap; the permutation test shuffles whole tomograms
between conditions, and Mann-Whitney compares tomogram means). ``unit="dendrite"`` treats every
dendrite as independent, which is only right when each tomogram holds one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import InputError
from ..jobs import Job, Progress, stop_requested


@dataclass(frozen=True)
class Metric:
    """A per-dendrite column of the dataset table and how to present it."""

    column: str
    label: str
    unit: str = ""


#: What is compared: the dataset table's own columns (those of the report's dendrite table).
METRICS = (
    Metric("lih_volume_fraction", "LiH fraction of the metal"),
    Metric("sei_trusted_median_nm", "SEI thickness (trusted surface)", "nm"),
    Metric("extended_share_li", "extended-SEI share on Li"),
    Metric("extended_share_lih", "extended-SEI share on LiH"),
)


@dataclass(frozen=True)
class CompareConfig:
    """How the intervals and tests are drawn (``seed`` makes them reproducible)."""

    n_bootstrap: int = 10_000
    n_permutations: int = 10_000
    confidence: float = 0.95
    seed: int = 0
    unit: Literal["tomogram", "dendrite"] = "tomogram"

    def __post_init__(self) -> None:
        if self.n_bootstrap < 100 or self.n_permutations < 100:
            raise InputError("use at least 100 bootstrap resamples and permutations")
        if not 0.5 < self.confidence < 1:
            raise InputError(f"the confidence level must lie in (0.5, 1), not {self.confidence}")
        if self.unit not in ("tomogram", "dendrite"):
            raise InputError(f"resample by tomogram or by dendrite, not {self.unit!r}")


@dataclass(frozen=True)
class GroupSummary:
    """One metric in one condition."""

    metric: str
    condition: str
    n_dendrites: int
    n_tomograms: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    median: float | None


@dataclass(frozen=True)
class Difference:
    """Mean of ``b`` minus mean of ``a`` for one metric, its interval and two-sided p-values."""

    metric: str
    a: str
    b: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_permutation: float | None
    p_mann_whitney: float | None

    @property
    def excludes_zero(self) -> bool:
        return self.ci_low is not None and (self.ci_low > 0 or self.ci_high < 0)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Everything ``compare`` found, with the values it was computed from (for the plots)."""

    conditions: tuple[str, ...]
    summaries: tuple[GroupSummary, ...]
    differences: tuple[Difference, ...]
    values: dict  # metric -> condition -> (values, tomogram of each value)
    config: CompareConfig
    source: str = ""

    def summary(self, metric: str, condition: str) -> GroupSummary:
        return next(s for s in self.summaries if s.metric == metric and s.condition == condition)

    def difference(self, metric: str, a: str, b: str) -> Difference:
        return next(d for d in self.differences if d.metric == metric and (d.a, d.b) == (a, b))

    def headline(self) -> list[str]:
        """One line per metric: each condition's mean and interval."""
        lines = []
        for m in METRICS:
            parts = []
            for c in self.conditions:
                s = self.summary(m.column, c)
                interval = f"[{_fmt(s.ci_low)}, {_fmt(s.ci_high)}]"
                parts.append(f"{c or '(none)'} {_fmt(s.mean)} {interval} n={s.n_dendrites}")
            lines.append(f"{m.label}: " + "; ".join(parts))
        return lines


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def load_values(rows: Sequence[dict[str, str]]) -> tuple[tuple[str, ...], dict]:
    """Conditions (in order of appearance) and, per metric and condition, the finite values of
    measured dendrites with the tomogram each comes from."""
    rows = [r for r in rows if r.get("status") in ("done", "skipped") and r.get("id")]
    conditions = tuple(dict.fromkeys(r.get("condition", "") for r in rows))
    values: dict = {}
    for m in METRICS:
        values[m.column] = {}
        for c in conditions:
            v, t = [], []
            for r in rows:
                if r.get("condition", "") != c:
                    continue
                x = _number(r.get(m.column))
                if x is not None:
                    v.append(x)
                    t.append(r["tomogram"])
            values[m.column][c] = (np.asarray(v, float), np.asarray(t, dtype=object))
    return conditions, values


def _number(text: str | None) -> float | None:
    try:
        x = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return x if x is not None and np.isfinite(x) else None


def compare(
    dataset: str | os.PathLike | Sequence[dict[str, str]],
    config: CompareConfig = CompareConfig(),
    *,
    stop: threading.Event | None = None,
) -> Job[Comparison | None]:
    """Compare the conditions of a dataset table (a path or its rows); None when stopped."""
    from .batch import read_dataset

    source = ""
    if isinstance(dataset, (str, os.PathLike)):
        table = read_dataset(dataset)
        rows, source = table.rows, str(table.path)
    else:
        rows = dataset
    conditions, values = load_values(rows)
    if not conditions:
        raise InputError("the dataset table has no measured dendrite")
    rng = np.random.default_rng(config.seed)
    summaries, differences = [], []
    for k, m in enumerate(METRICS):
        if stop_requested(stop):
            return None
        yield Progress(k, len(METRICS), m.label)
        per = values[m.column]
        for c in conditions:
            summaries.append(_summarise(m.column, c, *per[c], config, rng))
        for a, b in combinations(conditions, 2):
            differences.append(_differ(m.column, a, b, per[a], per[b], config, rng))
    yield Progress(len(METRICS), len(METRICS), "done")
    return Comparison(conditions, tuple(summaries), tuple(differences), values, config, source)


def _clusters(values: np.ndarray, tomograms: np.ndarray, unit: str) -> list[np.ndarray]:
    """The values grouped into the units that are resampled."""
    if unit == "dendrite":
        return [values[i:i + 1] for i in range(values.size)]
    return [values[tomograms == t] for t in dict.fromkeys(tomograms.tolist())]


def _boot_means(clusters: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n`` cluster-bootstrap resamples (units drawn with replacement, then pooled)."""
    sums = np.array([c.sum() for c in clusters])
    counts = np.array([c.size for c in clusters])
    draw = rng.integers(0, len(clusters), size=(n, len(clusters)))
    return sums[draw].sum(axis=1) / counts[draw].sum(axis=1)


def _summarise(metric, condition, values, tomograms, config, rng) -> GroupSummary:
    n_tomo = len(set(tomograms.tolist()))
    if values.size == 0:
        return GroupSummary(metric, condition, 0, n_tomo, None, None, None, None)
    means = _boot_means(_clusters(values, tomograms, config.unit), config.n_bootstrap, rng)
    lo, hi = _interval(means, config.confidence)
    return GroupSummary(metric, condition, int(values.size), n_tomo, float(values.mean()), lo,
                        hi, float(np.median(values)))


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def _differ(metric, a, b, va, vb, config, rng) -> Difference:
    from scipy.stats import mannwhitneyu

    (xa, ta), (xb, tb) = va, vb
    if xa.size == 0 or xb.size == 0:
        return Difference(metric, a, b, None, None, None, None, None)
    ca, cb = _clusters(xa, ta, config.unit), _clusters(xb, tb, config.unit)
    diff = float(xb.mean() - xa.mean())
    boot = (_boot_means(cb, config.n_bootstrap, rng) - _boot_means(ca, config.n_bootstrap, rng))
    lo, hi = _interval(boot, config.confidence)
    p_perm = _permutation_p(ca, cb, diff, config.n_permutations, rng)
    ua = np.array([c.mean() for c in ca])
    ub = np.array([c.mean() for c in cb])
    p_mw = None
    if np.ptp(np.concatenate([ua, ub])) > 0:
        p_mw = float(mannwhitneyu(ub, ua, alternative="two-sided").pvalue)
    elif ua.size and ub.size:
        p_mw = 1.0
    return Difference(metric, a, b, diff, lo, hi, p_perm, p_mw)


def _permutation_p(ca, cb, observed, n, rng) -> float:
    """Two-sided p of the difference of means when whole units swap conditions at random."""
    units = [*ca, *cb]
    sums = np.array([c.sum() for c in units])
    counts = np.array([c.size for c in units])
    k = len(ca)
    orders = rng.permuted(np.tile(np.arange(len(units)), (n, 1)), axis=1)
    a, b = orders[:, :k], orders[:, k:]
    d = sums[b].sum(axis=1) / counts[b].sum(axis=1) - sums[a].sum(axis=1) / counts[a].sum(axis=1)
    extreme = int(np.count_nonzero(np.abs(d) >= abs(observed) - 1e-12))
    return (extreme + 1) / (n + 1)


# --- files -------------------------------------------------------------------------------------


def summary_csv(result: Comparison) -> str:
    """Per metric and condition: counts, mean, interval, median."""
    buf = io.StringIO()
    fields = list(GroupSummary.__dataclass_fields__)
    w = csv.DictWriter(buf, fields, lineterminator="\n")
    w.writeheader()
    for s in result.summaries:
        w.writerow({k: "" if v is None else v for k, v in asdict(s).items()})
    return buf.getvalue()


def differences_csv(result: Comparison) -> str:
    """Per metric and pair of conditions: difference of means, interval and p-values."""
    buf = io.StringIO()
    fields = [*Difference.__dataclass_fields__, "ci_excludes_zero"]
    w = csv.DictWriter(buf, fields, lineterminator="\n")
    w.writeheader()
    for d in result.differences:
        row = {k: "" if v is None else v for k, v in asdict(d).items()}
        w.writerow({**row, "ci_excludes_zero": d.excludes_zero})
    return buf.getvalue()


def comparison_figure(result: Comparison, columns: int = len(METRICS)):
    """One panel per metric (``columns`` to a row): every dendrite as a dot, each condition's
    mean and interval."""
    from matplotlib.figure import Figure

    rows = -(-len(METRICS) // columns)
    fig = Figure(figsize=(3.2 * columns, 3.0 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    rng = np.random.default_rng(0)  # horizontal jitter of the dots only
    for ax, m in zip(axes, METRICS):
        for i, c in enumerate(result.conditions):
            v, _ = result.values[m.column][c]
            ax.scatter(i + rng.uniform(-0.15, 0.15, v.size), v, s=10, alpha=0.5, color="0.5",
                       linewidths=0)
            s = result.summary(m.column, c)
            if s.mean is not None:
                ax.errorbar([i + 0.3], [s.mean], yerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]],
                            fmt="o", color="C3", capsize=3)
        ax.set_xticks(range(len(result.conditions)), [c or "(none)" for c in result.conditions])
        ax.set_xlim(-0.6, len(result.conditions) - 0.3)
        ax.set_title(m.label, fontsize=9)
        if m.unit:
            ax.set_ylabel(m.unit)
    level = round(result.config.confidence * 100)
    fig.suptitle(f"dendrites (grey); mean, {level}% bootstrap interval (red)\n"
                 f"resampling {result.config.unit}s", fontsize=9)
    return fig


def write_comparison(result: Comparison, out_dir: str | os.PathLike) -> list[Path]:
    """Write summary.csv, differences.csv, comparison.json and the figure as PNG and SVG."""
    from ..io import atomic_path, atomic_write_bytes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "summary.csv", out / "differences.csv", out / "comparison.json"]
    atomic_write_bytes(paths[0], summary_csv(result).encode())
    atomic_write_bytes(paths[1], differences_csv(result).encode())
    data = {
        "source": result.source,
        "config": asdict(result.config),
        "conditions": list(result.conditions),
        "metrics": [asdict(m) for m in METRICS],
        "summaries": [asdict(s) for s in result.summaries],
        "differences": [{**asdict(d), "ci_excludes_zero": d.excludes_zero}
                        for d in result.differences],
    }
    atomic_write_bytes(paths[2], (json.dumps(data, indent=1) + "\n").encode())
    fig = comparison_figure(result)
    for suffix in ("png", "svg"):
        path = out / f"comparison.{suffix}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix, dpi=150)
        paths.append(path)
    return paths
