"""SEI thickness on a micrograph from a line drawn across the amorphous layer.

The profile is the image averaged across a band ``width_nm`` wide along the line
(``skimage.measure.profile_line``), which averages out lattice fringes and noise. Edge rule: the
profile is smoothed with a Gaussian of ``smooth_nm``; the layer's two edges are the two strongest
extrema of its derivative (the steepest points of the two intensity steps, i.e. their 50 % points
for symmetric blur) at least ``min_separation_nm`` apart and more than two ``smooth_nm`` from the
line's ends; the thickness is the distance between them along the line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .spectrum import check_image

EDGE_RULE = ("edges at the two strongest extrema of the derivative of the band-averaged, "
             "Gaussian-smoothed intensity profile (steepest point of each step), away from the "
             "line's ends")


@dataclass(frozen=True, eq=False)
class Profile:
    distance_nm: np.ndarray
    values: np.ndarray
    width_nm: float


@dataclass(frozen=True)
class LayerThickness:
    thickness_nm: float
    edges_nm: tuple[float, float]  # positions along the line, from its start
    rule: str = EDGE_RULE


def line_profile(image: np.ndarray, pixel_size_A: float, start_yx, end_yx,
                 width_nm: float = 5.0) -> Profile:
    """Band-averaged profile from ``start_yx`` to ``end_yx`` (pixels)."""
    from skimage.measure import profile_line

    a = check_image(image)
    length = float(np.hypot(end_yx[0] - start_yx[0], end_yx[1] - start_yx[1]))
    if length < 3:
        raise InputError("the line is shorter than 3 pixels; draw it across the layer")
    width_px = max(round(width_nm * 10.0 / pixel_size_A), 1)
    values = profile_line(a, tuple(start_yx), tuple(end_yx), linewidth=width_px, order=1,
                          mode="reflect", reduce_func=np.mean)
    distance = np.linspace(0.0, length, len(values)) * pixel_size_A / 10.0
    return Profile(distance, np.asarray(values, np.float64), width_nm)


def layer_thickness(profile: Profile, smooth_nm: float = 0.5,
                    min_separation_nm: float = 1.0) -> LayerThickness:
    """Thickness of the layer between the profile's two strongest steps (see the edge rule)."""
    from scipy import ndimage

    x, v = profile.distance_nm, profile.values
    if len(x) < 5:
        raise InputError("the profile is too short to find two edges")
    dx = float(x[1] - x[0])
    smooth = ndimage.gaussian_filter1d(v, max(smooth_nm / dx, 0.5), mode="nearest")
    slope = np.abs(np.gradient(smooth, dx))
    # the smoothing is unreliable within 2 sigma of the line's ends: no edge there
    margin = max(int(np.ceil(2 * smooth_nm / dx)), 1)
    inner = np.arange(margin, len(slope) - margin)
    if len(inner) == 0:
        raise InputError("the line is too short for the smoothing; extend it across the layer")
    peaks = inner[(slope[inner] >= slope[inner - 1]) & (slope[inner] > slope[inner + 1])]
    peaks = peaks[np.argsort(slope[peaks])[::-1]]
    if len(peaks) == 0:
        raise InputError("the profile has no edge; draw the line across the layer")
    first = peaks[0]
    second = next((p for p in peaks[1:] if abs(x[p] - x[first]) >= min_separation_nm), None)
    if second is None:
        raise InputError("the profile shows one edge only; extend the line across both sides "
                         "of the layer")

    def refined(p: int) -> float:
        lo, mid, hi = slope[p - 1], slope[p], slope[p + 1]
        den = lo - 2 * mid + hi
        return float(x[p] + (0.5 * (lo - hi) / den * dx if den < 0 else 0.0))

    e0, e1 = sorted((refined(first), refined(second)))
    return LayerThickness(e1 - e0, (e0, e1))
