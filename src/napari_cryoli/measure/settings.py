"""What a measurement needs besides the labels: its settings, with their defaults, help and ranges.

Kept apart from ``report`` (which re-exports it) so that the command line can build its options
from it without importing the measurement code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from ..settings import setting


@dataclass(frozen=True)
class MeasureSettings:
    """What the measurement needs besides the labels."""

    extended_threshold_nm: float = setting(
        20.0, "SEI thicker than this (nm) at a point counts as extended (porous) SEI there",
        minimum=1.0, maximum=500.0,
    )
    trusted_max_normal_tilt_deg: float = setting(
        60.0, "points whose face a tilt within this angle (degrees) about y sees edge-on give "
        "the trusted values: the tilt range (faces beyond it lie in the missing wedge)",
        minimum=0.0, maximum=90.0,
    )
    max_thickness_nm: float = setting(
        250.0, "rays through more SEI than this (nm) are left unmeasured", minimum=1.0
    )
    min_dendrite_volume_nm3: float = setting(
        1000.0, "solid pieces smaller than this (nm³) are specks, not dendrites: their volume "
        "still counts, their surface is not measured (a sphere of 12.4 nm diameter)", minimum=0.0
    )
    min_particle_volume_nm3: float = setting(
        65.0, "Cu pieces smaller than this (nm³) are specks, not particles (a sphere of 5 nm "
        "diameter)", minimum=0.0
    )
    histogram_bin_nm: float = setting(
        1.0, "width (nm) of the bins of the stored thickness histograms", minimum=0.01, json=None
    )

    def __post_init__(self) -> None:
        for name in ("extended_threshold_nm", "max_thickness_nm", "histogram_bin_nm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(
                    f"{name.replace('_', ' ')} must be a positive number, got {value}"
                )
        if not 0 <= self.trusted_max_normal_tilt_deg <= 90:
            raise InputError(
                f"the trusted normal tilt must lie in 0..90 degrees, got "
                f"{self.trusted_max_normal_tilt_deg}"
            )
        if not self.min_dendrite_volume_nm3 >= 0:
            raise InputError("the smallest dendrite volume cannot be negative")
        if not self.min_particle_volume_nm3 >= 0:
            raise InputError("the smallest Cu particle volume cannot be negative")
