"""Figures of a measurement (matplotlib ``Figure`` objects: no pyplot, no Qt).

Each builder takes a report (a :class:`Report` or the dict of a saved ``REPORT.json``) and returns
a figure the GUI embeds in a canvas or a script saves with ``fig.savefig("x.svg")``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..classes import DEFAULT_ONTOLOGY, LI, LIH
from .report import Report
from .sei import SurfaceThickness

_COLOR = {"Li": DEFAULT_ONTOLOGY.by_id(LI).color, "LiH": DEFAULT_ONTOLOGY.by_id(LIH).color}


def _as_dict(report: Report | Mapping) -> Mapping:
    return report.to_dict() if isinstance(report, Report) else report


def _histograms(source: Report | Mapping | SurfaceThickness, bin_nm: float = 1.0):
    """Bin edges and area per bin on Li and on LiH, from a report or from surface points."""
    if isinstance(source, SurfaceThickness):
        ok = source.measured
        top = float(source.thickness_nm[ok].max()) if ok.any() else 0.0
        edges = np.arange(0.0, max(top, bin_nm) + bin_nm, bin_nm)
        areas = {}
        for name, pid in (("Li", LI), ("LiH", LIH)):
            sel = ok & (source.phase == pid)
            areas[name], _ = np.histogram(
                source.thickness_nm[sel], bins=edges, weights=source.area_nm2[sel]
            )
        return edges, areas, None
    d = _as_dict(source)
    h = d["sei_thickness_nm"]["histogram"]
    edges = np.asarray(h["bin_edges_nm"], dtype=float)
    areas = {name: np.asarray(h[f"on_{name}_area_nm2"], dtype=float) for name in ("Li", "LiH")}
    return edges, areas, d["sei_thickness_nm"].get("extended_threshold_nm")


def thickness_histograms(
    source: Report | Mapping | SurfaceThickness, extended_threshold_nm: float | None = None
) -> Figure:
    """SEI thickness on Li and on LiH: share of each phase's covered surface per thickness."""
    edges, areas, threshold = _histograms(source)
    threshold = extended_threshold_nm if extended_threshold_nm is not None else threshold
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    drawn = False
    for name, area in areas.items():
        total = area.sum()
        if total <= 0:
            continue
        share = area / total / np.diff(edges)
        cumulative = np.concatenate([[0.0], np.cumsum(area)]) / total
        median = float(np.interp(0.5, cumulative, edges))  # uniform within each bin
        ax.stairs(
            share,
            edges,
            color=_COLOR[name],
            linewidth=1.8,
            label=f"on {name} (median {median:.1f} nm)",
        )
        drawn = True
    if threshold is not None:
        ax.axvline(
            threshold,
            color="0.4",
            linestyle="--",
            linewidth=1,
            label=f"extended above {threshold:g} nm",
        )
    ax.set_xlabel("SEI thickness (nm)")
    ax.set_ylabel("share of surface per nm")
    ax.set_title("SEI thickness on Li vs on LiH")
    if drawn:
        ax.legend(frameon=False)
    else:
        ax.text(
            0.5, 0.5, "no SEI thickness measured", ha="center", va="center", transform=ax.transAxes
        )
    ax.set_xlim(left=0)
    return fig


def lih_fraction_per_dendrite(report: Report | Mapping) -> Figure:
    """LiH volume fraction of each dendrite, with the whole segmentation's as a line."""
    d = _as_dict(report)
    rows = [r for r in d["dendrites"] if r.get("lih_volume_fraction") is not None]
    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    if rows:
        ids = [str(r["id"]) for r in rows]
        ax.bar(ids, [r["lih_volume_fraction"] for r in rows], color=_COLOR["LiH"])
        ax.set_xlabel("dendrite")
    else:
        ax.text(
            0.5,
            0.5,
            "no dendrites with Li or LiH",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    overall = d.get("lih_volume_fraction")
    if overall is not None:
        ax.axhline(
            overall,
            color="0.3",
            linestyle="--",
            linewidth=1,
            label=f"all dendrites: {overall:.2f}",
        )
        ax.legend(frameon=False)
    ax.set_ylim(0, 1)
    ax.set_ylabel("LiH volume fraction")
    ax.set_title("LiH volume fraction per dendrite")
    return fig


def compare_conditions(reports: Mapping[str, Report | Mapping]) -> Figure:
    """Conditions side by side (e.g. fresh, 24h, 7d): LiH fraction, SEI thickness on Li vs on
    LiH (trusted values: median, bars from the 25th to the 75th percentile) and the share of each
    phase's surface under extended SEI."""
    names = list(reports)
    data = [_as_dict(reports[n]) for n in names]
    fig = Figure(figsize=(11.0, 3.8), layout="constrained")
    ax_f, ax_t, ax_e = fig.subplots(1, 3)
    x = np.arange(len(names))

    overall = [_num(d.get("lih_volume_fraction")) for d in data]
    ax_f.bar(x, overall, color=_COLOR["LiH"], alpha=0.6, label="all dendrites")
    for i, d in enumerate(data):
        per = [
            r["lih_volume_fraction"]
            for r in d["dendrites"]
            if r.get("lih_volume_fraction") is not None
        ]
        if per:
            jitter = np.linspace(-0.15, 0.15, len(per)) if len(per) > 1 else [0.0]
            ax_f.scatter(
                i + np.asarray(jitter),
                per,
                s=14,
                color="0.2",
                zorder=3,
                label="per dendrite" if i == 0 else None,
            )
    ax_f.set_ylim(0, 1)
    ax_f.set_ylabel("LiH volume fraction")
    ax_f.set_title("LiH in the dendrites")

    width = 0.38
    for k, name in enumerate(("Li", "LiH")):
        med, lo, hi = [], [], []
        for d in data:
            s = d["sei_thickness_nm"].get("trusted", d["sei_thickness_nm"])[f"on_{name}"]
            med.append(_num(s.get("median")))
            lo.append(_num(s.get("p25")))
            hi.append(_num(s.get("p75")))
        med, lo, hi = map(np.asarray, (med, lo, hi))
        err = np.vstack([np.nan_to_num(med - lo), np.nan_to_num(hi - med)])
        ax_t.bar(
            x + (k - 0.5) * width,
            med,
            width,
            yerr=err,
            capsize=3,
            color=_COLOR[name],
            label=f"on {name}",
        )
    ax_t.set_ylabel("SEI thickness (nm)")
    ax_t.set_title("SEI thickness (trusted normals)")
    ax_t.legend(frameon=False)

    for k, name in enumerate(("Li", "LiH")):
        share = [_num(d["sei_thickness_nm"].get("extended_share", {}).get(name)) for d in data]
        ax_e.bar(x + (k - 0.5) * width, share, width, color=_COLOR[name], label=f"on {name}")
    thresholds = {d["sei_thickness_nm"].get("extended_threshold_nm") for d in data}
    label = f" (> {thresholds.pop():g} nm)" if len(thresholds) == 1 else ""
    ax_e.set_ylim(0, 1)
    ax_e.set_ylabel("share of the surface")
    ax_e.set_title(f"Extended SEI{label}")
    ax_e.legend(frameon=False)

    for ax in (ax_f, ax_t, ax_e):
        ax.set_xticks(x, names)
    ax_f.legend(frameon=False)
    return fig


def _num(v) -> float:
    return float("nan") if v is None else float(v)
