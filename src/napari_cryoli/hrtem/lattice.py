"""Lattice analysis of one micrograph or region: spectrum, reflections, phases, and the report."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from .phases import Identification, PhaseTable, Tolerances, default_table, identify
from .reflections import (
    D_RANGE_A,
    FALSE_ALARM,
    Detection,
    Reflection,
    angle_table,
    find_reflections,
)
from .spectrum import PowerSpectrum, Region, power_spectrum


@dataclass(frozen=True, eq=False)
class LatticeAnalysis:
    spectrum: PowerSpectrum
    detection: Detection
    identification: Identification
    table: PhaseTable


def analyse(
    image: np.ndarray,
    pixel_size_A: float,
    region: Region | None = None,
    table: PhaseTable | None = None,
    *,
    d_range_A: tuple[float, float] = D_RANGE_A,
    false_alarm: float = FALSE_ALARM,
    extra: tuple[Reflection, ...] = (),
) -> LatticeAnalysis:
    """Spectrum of ``image`` (or ``region``), its reflections (found, plus ``extra`` picked
    ones) and the phases that explain them."""
    from .reflections import merge_friedel

    table = table or default_table()
    spectrum = power_spectrum(image, pixel_size_A, region)
    detection = find_reflections(spectrum, d_range_A=d_range_A, false_alarm=false_alarm)
    reflections = detection.reflections
    if extra:
        reflections = tuple(merge_friedel((*reflections, *extra), tol=1.5 * spectrum.step))
    ident = identify(reflections, table, Tolerances(step=spectrum.step))
    return LatticeAnalysis(spectrum, detection, ident, table)


def report(analysis: LatticeAnalysis, notes: tuple[str, ...] = ()) -> dict:
    """The JSON report (the CLI's ``lattice --out``)."""
    ident = analysis.identification
    refl = []
    for i, r in enumerate(ident.reflections):
        assigned = ident.assigned[i] if ident.assigned else None
        refl.append({
            "d_A": round(r.d_A, 4),
            "azimuth_deg": round(r.azimuth_deg, 2),
            "g_per_A": [round(r.gy, 5), round(r.gx, 5)],
            "intensity": float(f"{r.intensity:.4g}"),
            "snr": round(r.snr, 2),
            "phase": assigned[0] if assigned else None,
            "hkl": list(assigned[1]) if assigned else None,
            "candidates": [
                {"phase": c.phase, "hkl": list(c.hkl), "d_A": round(c.d_A, 4),
                 "deviation_pct": round(100 * c.deviation, 2)}
                for c in ident.candidates[i]
            ],
        })
    phases = [
        {"phase": m.phase, "zone_axis": list(m.zone_axis), "score": round(m.score, 4),
         "scale": round(m.scale, 4), "reflections": list(m.indices),
         "ambiguous_with": list(m.ambiguous_with)}
        for m in ident.phases
    ]
    angles = angle_table(ident.reflections)
    return {
        "pixel_size_A": analysis.spectrum.pixel_size_A,
        "region": list(analysis.spectrum.region),
        "reflections": refl,
        "angles_deg": [[round(float(v), 2) for v in row] for row in angles],
        "phases": phases,
        "amorphous": ident.amorphous,
        "detection_threshold": round(analysis.detection.threshold, 3),
        "phase_table": [p.name for p in analysis.table.phases],
        "notes": list(notes),
    }


def write_report(data: dict, path: str | os.PathLike) -> None:
    """Write the report as JSON, atomically."""
    from ..io import atomic_write_bytes

    def plain(v):
        if isinstance(v, np.generic):
            return v.item()
        raise TypeError(f"{type(v).__name__} in the report")

    text = json.dumps(data, indent=1, default=plain)
    atomic_write_bytes(path, (text + "\n").encode())
