"""HRTEM micrographs: power spectra in 1/Å, reflections, phase identification from pairs of
reflections at one zone axis, local phase maps, the ABSF filter and layer thickness from a line
profile. Pure numpy/scipy; no napari or Qt."""

from importlib import import_module

#: Where each public name lives; imported on first use, so that the command line (which
#: only registers the subcommands) and napari start without scipy's and the table's cost.
_HOME = {
    "FilterResult": "absf",
    "absf": "absf",
    "Micrograph": "io",
    "read_micrograph": "io",
    "LatticeAnalysis": "lattice",
    "analyse": "lattice",
    "report": "lattice",
    "write_report": "lattice",
    "PhaseMap": "phasemap",
    "PhaseMapSettings": "phasemap",
    "phase_map": "phasemap",
    "Identification": "phases",
    "PhaseMatch": "phases",
    "PhaseTable": "phases",
    "default_table": "phases",
    "identify": "phases",
    "load_table": "phases",
    "LayerThickness": "profile",
    "Profile": "profile",
    "layer_thickness": "profile",
    "line_profile": "profile",
    "Reflection": "reflections",
    "find_reflections": "reflections",
    "refine_at": "reflections",
    "PowerSpectrum": "spectrum",
    "power_spectrum": "spectrum",
}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FilterResult", "Identification", "LatticeAnalysis", "LayerThickness", "Micrograph",
    "PhaseMap", "PhaseMapSettings", "PhaseMatch", "PhaseTable", "PowerSpectrum", "Profile",
    "Reflection", "absf", "analyse", "default_table", "find_reflections", "identify",
    "layer_thickness", "line_profile", "load_table", "phase_map", "power_spectrum",
    "read_micrograph", "refine_at", "report", "write_report",
]
