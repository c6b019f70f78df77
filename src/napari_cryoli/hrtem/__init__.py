"""HRTEM micrographs: power spectra in 1/Å, reflections, phase identification from pairs of
reflections at one zone axis, local phase maps, the ABSF filter and layer thickness from a line
profile. Pure numpy/scipy; no napari or Qt."""

from .absf import FilterResult, absf
from .io import Micrograph, read_micrograph
from .lattice import LatticeAnalysis, analyse, report, write_report
from .phasemap import PhaseMap, PhaseMapSettings, phase_map
from .phases import Identification, PhaseMatch, PhaseTable, default_table, identify, load_table
from .profile import LayerThickness, Profile, layer_thickness, line_profile
from .reflections import Reflection, find_reflections, refine_at
from .spectrum import PowerSpectrum, power_spectrum

__all__ = [
    "FilterResult", "Identification", "LatticeAnalysis", "LayerThickness", "Micrograph",
    "PhaseMap", "PhaseMapSettings", "PhaseMatch", "PhaseTable", "PowerSpectrum", "Profile",
    "Reflection", "absf", "analyse", "default_table", "find_reflections", "identify",
    "layer_thickness", "line_profile", "load_table", "phase_map", "power_spectrum",
    "read_micrograph", "refine_at", "report", "write_report",
]
