"""What the Measure panel shows of a report, without Qt: the summary lines and the table of
dendrites and Cu particles, each cell as text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .report import Report

#: The table's columns: (heading, field of :class:`TableRow`).
TABLE_COLUMNS = (
    ("object", "object"), ("id", "id"), ("volume (nm³)", "volume"), ("LiH fraction", "lih"),
    ("diameter (nm)", "diameter"), ("to tilt axis (°)", "tilt"), ("SEI on Li (nm)", "on_li"),
    ("SEI on LiH (nm)", "on_lih"),
)


@dataclass(frozen=True)
class TableRow:
    """One object of the report: a dendrite or a Cu particle (numbers in nm, nm³)."""

    object: str
    id: int
    volume: float | None
    lih: float | None
    diameter: float | None
    tilt: float | None  # in-plane angle to the tilt axis (degrees)
    on_li: float | None
    on_lih: float | None
    centroid_nm: tuple[float, ...] | None

    def cells(self) -> list[str]:
        """The row's cells as shown, in the order of :data:`TABLE_COLUMNS`."""
        return [cell_text(getattr(self, key), key) for _, key in TABLE_COLUMNS]


def table_rows(report: Report) -> list[TableRow]:
    """The dendrites, then the Cu particles, of a report."""
    rows = [TableRow("dendrite", d.id, d.volume_nm3, d.lih_volume_fraction, d.diameter_nm,
                     d.tilt_axis_angle_deg, d.sei_thickness_nm.on_li.median,
                     d.sei_thickness_nm.on_lih.median, d.centroid_nm)
            for d in report.dendrites]
    rows += [TableRow("Cu particle", p.id, p.volume_nm3, None, p.equivalent_diameter_nm, None,
                      None, None, p.centroid_nm)
             for p in report.cu_particles]
    return rows


def cell_text(value: Any, key: str) -> str:
    """A number as the table shows it: volumes whole, fractions to 0.001, lengths to 0.1 nm."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if key == "volume":
        return f"{value:,.0f}"
    if key == "lih":
        return f"{value:.3f}"
    if key == "tilt":
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_text(report: Report) -> str:
    """Counts, LiH fraction and SEI medians on two lines, then the report's notes."""
    sei = report.sei_thickness_nm
    return "\n".join([
        (f"{_count(len(report.dendrites), 'dendrite')}, "
         f"{_count(len(report.cu_particles), 'Cu particle')}; "
         f"LiH fraction {cell_text(report.lih_volume_fraction, 'lih')}"),
        (f"SEI median {cell_text(sei.median, 'x')} nm (on Li {cell_text(sei.on_li.median, 'x')},"
         f" on LiH {cell_text(sei.on_lih.median, 'x')})"),
        *report.notes,
    ])
