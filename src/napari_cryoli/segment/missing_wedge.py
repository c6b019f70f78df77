"""Grey levels for the network with the missing wedge restored (``TrainConfig.restore_wedge``).

In a field of several dendrites along the tilt axis each dendrite's back-projection streaks fall
on its neighbours, so a LiH-free dendrite can read as dark as another one's LiH, and a model
fine-tuned on one tomogram calls it LiH (docs/segmentation.md, "Restoring the missing wedge").
Here the tomogram is calibrated as usual (vacuum 0, Li 1), its missing wedge is restored at
coarse scale (``tomo.restoration``), and Li is read again on the restored volume at the metal
cores that the calibration calls Li: the restoration changes the levels, not which voxels are
Li. Dendrites lying across the tilt axis are left as they are, since the restoration cannot
bring back their extent in z; the model then reads the calibrated tomogram.

The restored tomogram is a lazy view (``RestoredLevels``): sections are restored as the
prediction reads them, so memory stays that of the calibrated tomogram's sections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..settings import setting
from ..tomo.geometry import tilt_series_angles
from ..tomo.restoration import RestorationSettings
from .calibration import (
    LIH_TO_LI_CONTRAST,
    Calibration,
    analysis_copy,
    core_values,
    metal_cores,
)
from .resample import SectionsOnDemand

#: A core footprint whose edges run this little in one direction (structure-tensor coherence)
#: gives no direction to the tilt axis.
MIN_COHERENCE = 0.2
#: At least this many core cells called Li are needed to read Li on the restored volume.
MIN_CALLED_CELLS = 20


@dataclass(frozen=True)
class WedgeSettings:
    """The tilt series a model's tomograms were reconstructed from, and how to restore them."""

    tilt_range_deg: float = setting(60.0, "highest tilt angle of the series (±, degrees)",
                                    minimum=1.0, maximum=90.0)
    tilt_step_deg: float = setting(1.0, "tilt step (degrees)", minimum=0.1, maximum=10.0)
    working_nm: float = RestorationSettings().working_nm
    #: Dendrites further from the tilt axis than this (``axis_angle_deg``) are not restored:
    #: half of the 45-degree cell of the transfer benchmark (chosen a priori). A field whose
    #: footprint has no direction is restored.
    max_axis_angle_deg: float = 22.5

    @property
    def angles_deg(self) -> np.ndarray:
        return tilt_series_angles(self.tilt_range_deg, self.tilt_step_deg)

    def to_dict(self) -> dict:
        return {"tilt_range_deg": self.tilt_range_deg, "tilt_step_deg": self.tilt_step_deg,
                "working_nm": self.working_nm, "max_axis_angle_deg": self.max_axis_angle_deg}

    @classmethod
    def from_dict(cls, d: dict) -> WedgeSettings:
        return cls(**{k: float(d[k]) for k in cls().to_dict() if k in d})


@dataclass(frozen=True)
class WedgeRecord:
    """What was done to one tomogram: ``restored`` or not, the footprint-weighted angle of its
    metal to the tilt axis (None: no direction), and the restored Li level in the calibration's
    Li units (1.0 when not restored)."""

    restored: bool
    axis_angle_deg: float | None
    li_level: float

    def to_dict(self) -> dict:
        return {"restored": self.restored, "axis_angle_deg": self.axis_angle_deg,
                "li_level": round(self.li_level, 4)}

    def describe(self) -> str:
        if self.restored:
            return f"missing wedge restored (Li re-read at {self.li_level:.2f} of the calibrated Li)"
        angle = "" if self.axis_angle_deg is None else f" at {self.axis_angle_deg:.0f}°"
        return f"missing wedge not restored (dendrites{angle} to the tilt axis, or no metal cores)"


class RestoredLevels(SectionsOnDemand):
    """``image`` in Li units of ``calibration``, restored by ``restoration`` where given, over
    ``li_level``: vacuum 0, Li 1 (float32), computed a few sections at a time."""

    #: Sections computed at once (bounds the temporaries to a few sections).
    CHUNK = 4

    def __init__(self, image: np.ndarray, calibration: Calibration, restoration=None,
                 li_level: float = 1.0) -> None:
        self.image, self.calibration = image, calibration
        self.restoration, self.li_level = restoration, float(li_level)
        self.shape = tuple(int(n) for n in image.shape)  # type: ignore[assignment]

    def sections(self, z0: int, z1: int) -> np.ndarray:
        from .prediction import release_pages

        out = np.empty((max(0, z1 - z0), *self.shape[1:]), np.float32)
        for c0 in range(z0, z1, self.CHUNK):
            c1 = min(z1, c0 + self.CHUNK)
            part = self.calibration.in_li_units(self.image[c0:c1], np.float32)
            release_pages(self.image, c0, c1)
            if self.restoration is not None:
                part = self.restoration.sections(part, c0)
            out[c0 - z0 : c1 - z0] = part
        out /= np.float32(self.li_level)
        return out


def with_wedge_restored(image: np.ndarray, voxel_size_nm, calibration
                        ) -> tuple[np.ndarray, object, WedgeRecord | None]:
    """What the network reads of ``image`` and how to map it: unchanged where ``calibration``
    asks for no restoration (``Calibration.wedge``), else ``restore_levels``."""
    if not isinstance(calibration, Calibration) or calibration.wedge is None:
        return image, calibration, None
    return restore_levels(image, voxel_size_nm, calibration, calibration.wedge)


def restore_levels(image: np.ndarray, voxel_size_nm, calibration: Calibration,
                   settings: WedgeSettings) -> tuple[RestoredLevels, Calibration, WedgeRecord]:
    """``image`` restored and re-anchored (a lazy view, vacuum 0, Li 1), the fixed calibration
    the network applies to it, and what was done."""
    from ..tomo.restoration import restore_missing_wedge

    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    calibrated = RestoredLevels(image, calibration)
    copy, factors = analysis_copy(calibrated, h)
    hc = h * np.asarray(factors)
    cores, sigma = metal_cores(copy, hc)
    angle = axis_angle_deg(cores, hc) if cores is not None else None
    fixed = Calibration(0.0, 1.0, "the calibration, missing wedge restored",
                        calibration.lih_share, calibration.noise, per_image=False)
    unrestored = (calibrated, replace(fixed, source="the calibration"),
                  WedgeRecord(False, angle, 1.0))
    if cores is None or (angle is not None and angle > settings.max_axis_angle_deg):
        return unrestored
    restoration = restore_missing_wedge(
        calibrated, h, settings.angles_deg, RestorationSettings(working_nm=settings.working_nm))
    before = core_values(copy, cores, sigma)
    after = core_values(analysis_copy(RestoredLevels(image, calibration, restoration), h)[0],
                        cores, sigma)
    called = (before > 0.5) & (before < math.sqrt(LIH_TO_LI_CONTRAST))
    level = float(np.median(after[called])) if called.sum() >= MIN_CALLED_CELLS else math.nan
    if not level > 0:
        return unrestored
    noise = None if calibration.noise is None else round(calibration.noise / level, 4)
    return (RestoredLevels(image, calibration, restoration, level), replace(fixed, noise=noise),
            WedgeRecord(True, angle, level))


def axis_angle_deg(cores: np.ndarray, voxel_size_nm) -> float | None:
    """Angle (degrees, 0-90) of the metal cores' footprint, seen along z, to the tilt axis: the
    direction its edges run in (structure tensor), so that dendrites whose cores touch read as
    the dendrites do, not as the blob they make together; None where the edges run every way
    (coherence below ``MIN_COHERENCE``)."""
    from scipy import ndimage as ndi

    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    footprint = ndi.gaussian_filter(cores.any(axis=0).astype(np.float32), 1.0, mode="nearest")
    gy, gx = (g / step for g, step in zip(np.gradient(footprint), h[1:]))
    yy, xx, xy = float((gy * gy).sum()), float((gx * gx).sum()), float((gy * gx).sum())
    spread, directions = np.linalg.eigh(np.array([[yy, xy], [xy, xx]]))  # ascending
    if spread.sum() <= 0 or (spread[1] - spread[0]) / spread.sum() < MIN_COHERENCE:
        return None
    dy, dx = directions[:, 0]  # edges run across the strongest gradient
    return round(float(np.degrees(np.arctan2(abs(dx), abs(dy)))), 1)
