"""Reflections in a power spectrum: found automatically or picked, refined, Friedel-merged.

Detection compares each spectrum pixel with the background expected at its radius. The background
is the ring average of log P (plus Euler's constant, which undoes the bias of the log for
exponentially distributed noise power), so isotropic rings from amorphous material or ice count as
background, not as reflections. The ratio P / background is averaged over 3 x 3 pixels (the width
of a Hann-apodised peak); for pure noise that average is close to a Gamma variable of mean 1 whose
shape is measured from the spectrum itself. A local maximum is a reflection when the average exceeds
the level that noise alone would reach anywhere in the searched band with probability
``false_alarm``: the threshold adapts to the image size, the window and the padding. Positions are
refined to a fraction of a pixel by a parabola through the log of the averaged ratio. A peak close
to a reflection fifty times stronger is that reflection's streak (a grain edge's shape transform),
not a reflection, and is dropped.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .spectrum import PowerSpectrum

#: Spacings searched by default (Å): LiH, Li, Cu, Li2O, LiF, Cu2O reflections all lie inside.
D_RANGE_A = (1.1, 4.0)

#: Chance that noise alone produces one reflection somewhere in the band (per spectrum).
FALSE_ALARM = 0.01

EULER_GAMMA = 0.5772156649015329

#: A peak within STREAK_REACH x |g| of a reflection STREAK_RATIO times stronger is its streak.
STREAK_RATIO = 50.0
STREAK_REACH = 0.05

#: The 3 x 3 average of a Hann-apodised spectrum has correlated terms, so its tail is heavier than
#: the Gamma law its variance implies: the Gamma shape is reduced by this factor for the threshold.
#: Calibrated on noise and amorphous images of 128-512 pixels (not the validation seeds); it gives
#: 1-2 % false alarms at 128 pixels and fewer on larger images for FALSE_ALARM = 1 %.
TAIL_SHAPE = 0.7


@dataclass(frozen=True)
class Reflection:
    """One reflection (a Friedel pair +g/-g), g in 1/Å with gx >= 0 (azimuth in [0, 180))."""

    gy: float
    gx: float
    intensity: float  # power above background summed over 3 x 3 pixels
    snr: float  # mean power over background at the peak, minus 1

    @property
    def g(self) -> float:
        return math.hypot(self.gy, self.gx)

    @property
    def d_A(self) -> float:
        return 1.0 / self.g

    @property
    def azimuth_deg(self) -> float:
        """Direction of g counterclockwise from +x as seen on screen (y pointing down), 0-180°."""
        return math.degrees(math.atan2(-self.gy, self.gx)) % 180.0


@dataclass(frozen=True)
class Detection:
    """What the search saw: the reflections and the threshold they had to pass."""

    reflections: tuple[Reflection, ...]
    threshold: float  # mean-ratio level a peak had to exceed
    shape_k: float  # Gamma shape of the averaged noise ratio


def background_ratio(half: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(P / background, radius in pixels) for a stack of half-plane spectra (k, n, n/2 + 1)."""
    k = half.shape[0]
    radius, ring = _rings(n, half.shape[-1])
    n_rings = n + 1
    logp = np.log(np.maximum(half, np.finfo(np.float32).tiny))
    index = (ring[None] + n_rings * np.arange(k)[:, None, None]).ravel()
    sums = np.bincount(index, weights=logp.ravel(), minlength=k * n_rings)
    counts = np.bincount(ring.ravel(), minlength=n_rings)
    mean_log = sums.reshape(k, n_rings) / np.maximum(counts, 1)
    background = np.exp(mean_log + EULER_GAMMA).astype(np.float32)
    # a floor 60 dB under the strongest pixel: noise-free images have no noise to compare with
    floor = np.maximum(half.reshape(k, -1).max(1) * 1e-6, np.finfo(np.float32).tiny)
    background = np.maximum(background, floor[:, None])
    return half / background[:, ring], radius


@functools.lru_cache(maxsize=4)
def _rings(n: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(radius in pixels, ring index) of every half-plane pixel; read-only, cached per size."""
    r = np.arange(n, dtype=np.float32)[:, None] - n // 2
    c = np.arange(cols, dtype=np.float32)[None, :]
    radius = np.sqrt(r**2 + c**2)
    ring = np.minimum(np.rint(radius).astype(np.int32), n)  # corners share the last ring
    radius.flags.writeable = False
    ring.flags.writeable = False
    return radius, ring


def _extend(a: np.ndarray, n: int, cols: int = 2) -> np.ndarray:
    """Add ``cols`` columns kx = -cols..-1 on the left by Friedel symmetry (stack of half-planes)."""
    mirror_rows = (n - np.arange(n)) % n
    left = a[:, mirror_rows][:, :, cols:0:-1]
    return np.concatenate([left, a], axis=-1)


def detect(
    half: np.ndarray,
    n: int,
    pixel_size_A: float,
    *,
    d_range_A: tuple[float, float] = D_RANGE_A,
    false_alarm: float = FALSE_ALARM,
    max_peaks: int = 40,
) -> list[Detection]:
    """Reflections in each half-plane spectrum of a stack (k, n, n/2 + 1), rows centred."""
    from scipy import ndimage, stats

    d_min, d_max = sorted(d_range_A)
    if d_min <= 0:
        raise InputError(f"the spacing range must be positive, not {d_range_A}")
    step = 1.0 / (n * pixel_size_A)
    ratio, radius = background_ratio(half, n)
    r_lo, r_hi = 1.0 / (d_max * step), min(1.0 / (d_min * step), n / 2 - 2)
    band = (radius >= r_lo) & (radius <= r_hi)
    band[: n // 2, 0] = False  # kx = 0, ky < 0 repeats ky > 0
    if not band.any():
        raise InputError(
            f"no spectrum pixel lies between {d_min:g} and {d_max:g} Å at {pixel_size_A:g} Å/pixel"
        )
    ext = _extend(ratio, n)
    mean_ext = ndimage.uniform_filter(ext, size=(1, 3, 3), mode="nearest")
    mean = mean_ext[:, :, 2:]
    padded = np.pad(mean_ext, ((0, 0), (2, 2), (0, 2)), mode="edge")  # for 5 x 5 neighbourhoods
    results = []
    n_band = int(band.sum())
    for i in range(half.shape[0]):
        m = mean[i]
        values = m[band]
        quiet = values[values < 4.0]  # Gamma tail above 4x the mean is negligible for k >= 3
        var = float(quiet.var()) if quiet.size > 10 else 1.0
        k_shape = 1.0 / max(var, 1e-6)
        a = TAIL_SHAPE * k_shape
        threshold = float(stats.gamma.isf(false_alarm / n_band, a=a, scale=1.0 / a))
        hits = np.nonzero(band & (m > threshold))
        hits = _local_maxima(padded[i], m, hits)
        order = np.argsort(m[hits])[::-1][:max_peaks]
        found = [
            _refine(half[i], ratio[i], mean_ext[i], int(hits[0][j]), int(hits[1][j]), n, step)
            for j in order
        ]
        merged = drop_streaks(merge_friedel(found, tol=1.5 * step))
        results.append(Detection(tuple(merged), threshold, k_shape))
    return results


def _local_maxima(padded: np.ndarray, mean: np.ndarray, hits) -> tuple[np.ndarray, np.ndarray]:
    """The candidates (rows, cols of ``mean``) that are the maximum of their 5 x 5 neighbourhood.

    ``padded`` is the mean ratio with the two Friedel columns on the left and two edge rows and
    columns added elsewhere, so candidate (r, c) has its neighbourhood at rows r..r+4, cols c..c+4.
    Only the few candidates above the threshold are looked at, not the whole spectrum.
    """
    rows, cols = hits
    if len(rows) == 0:
        return rows, cols
    dy, dx = np.mgrid[0:5, 0:5]
    neighbours = padded[rows[:, None] + dy.ravel()[None, :], cols[:, None] + dx.ravel()[None, :]]
    keep = mean[rows, cols] >= neighbours.max(axis=1)
    return rows[keep], cols[keep]


def _refine(power, ratio, ext, row, col, n, step) -> Reflection:
    """Sub-pixel position (log-parabola on the 3 x 3 mean ratio), intensity and snr of a peak.

    ``ext`` is the mean ratio with the two Friedel columns kx = -2, -1 on the left.
    """
    c = col + 2

    def offset(lo: float, mid: float, hi: float) -> float:
        lo, mid, hi = (math.log(max(v, 1e-12)) for v in (lo, mid, hi))
        den = lo - 2 * mid + hi
        return 0.0 if den >= 0 else float(np.clip(0.5 * (lo - hi) / den, -0.5, 0.5))

    r0, r1 = max(row - 1, 0), min(row + 1, n - 1)
    dy = offset(ext[r0, c], ext[row, c], ext[r1, c]) if 0 < row < n - 1 else 0.0
    dx = offset(ext[row, c - 1], ext[row, c], ext[row, c + 1]) if c + 1 < ext.shape[1] else 0.0
    rows = slice(max(row - 1, 0), row + 2)
    cols = slice(max(col - 1, 0), col + 2)
    p = power[rows, cols]
    background = p / np.maximum(ratio[rows, cols], 1e-30)
    intensity = float((p - background).sum())
    gy, gx = (row + dy - n // 2) * step, (col + dx) * step
    return Reflection(float(gy), float(gx), intensity, float(ext[row, c] - 1.0))


def find_reflections(
    spectrum: PowerSpectrum,
    *,
    d_range_A: tuple[float, float] = D_RANGE_A,
    false_alarm: float = FALSE_ALARM,
    max_peaks: int = 40,
) -> Detection:
    """Reflections of one spectrum, strongest first."""
    return detect(spectrum.half[None], spectrum.n, spectrum.pixel_size_A, d_range_A=d_range_A,
                  false_alarm=false_alarm, max_peaks=max_peaks)[0]


def refine_at(spectrum: PowerSpectrum, gy: float, gx: float, search_px: float = 3.0) -> Reflection:
    """The reflection nearest a picked point: the strongest pixel within ``search_px``, refined.

    A pick is the user's decision, so it is kept even when it would not pass the detection
    threshold; its ``snr`` says how strong it is.
    """
    return refine_picks(spectrum, [(gy, gx)], search_px)[0]


def refine_picks(spectrum: PowerSpectrum, points, search_px: float = 3.0) -> list[Reflection]:
    """:func:`refine_at` for many picks, (gy, gx) in 1/Å, computing the background once."""
    from scipy import ndimage

    n = spectrum.n
    ratio, _ = background_ratio(spectrum.half[None], n)
    mean_ext = ndimage.uniform_filter(_extend(ratio, n), size=(1, 3, 3), mode="nearest")[0]
    return [_refine_pick(spectrum, ratio[0], mean_ext, float(gy), float(gx), search_px)
            for gy, gx in points]


def _refine_pick(spectrum, ratio, mean_ext, gy, gx, search_px) -> Reflection:
    n = spectrum.n
    row, col = spectrum.to_pixel(gy, gx)
    mean = mean_ext[:, 2:]
    r = math.ceil(search_px)
    rr, cc = np.mgrid[-r: r + 1, -r: r + 1]
    rr, cc = rr + round(float(row)), cc + round(float(col))
    inside = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < mean.shape[1])
    inside &= (rr - row) ** 2 + (cc - col) ** 2 <= search_px**2 + 0.5
    if not inside.any():
        raise InputError("the picked point lies outside the spectrum")
    rr, cc = rr[inside], cc[inside]
    best = int(np.argmax(mean[rr, cc]))
    found = _refine(spectrum.half, ratio, mean_ext, int(rr[best]), int(cc[best]), n,
                    spectrum.step)
    return merge_friedel([found], tol=0.0)[0]


def merge_friedel(reflections: Iterable[Reflection], tol: float) -> list[Reflection]:
    """Put each reflection on the half-plane (gx > 0, or gx = 0 and gy > 0) and merge the ones
    closer than ``tol`` (1/Å), averaging positions weighted by intensity; strongest first."""
    canonical = []
    for r in reflections:
        flip = r.gx < 0 or (r.gx == 0 and r.gy < 0)
        canonical.append(Reflection(-r.gy, -r.gx, r.intensity, r.snr) if flip else r)
    canonical.sort(key=lambda r: -r.snr)
    merged: list[list[Reflection]] = []
    for r in canonical:
        for group in merged:
            head = group[0]
            # near the gx = 0 line a pair can land on opposite sides: compare with -g as well
            if min(math.hypot(r.gy - head.gy, r.gx - head.gx),
                   math.hypot(r.gy + head.gy, r.gx + head.gx)) <= tol:
                group.append(r)
                break
        else:
            merged.append([r])
    out = []
    for group in merged:
        head = group[0]
        w, gy, gx = 0.0, 0.0, 0.0
        for r in group:
            s = 1.0 if (r.gy - head.gy) ** 2 + (r.gx - head.gx) ** 2 <= tol**2 + 1e-30 else -1.0
            weight = max(r.intensity, 1e-30)
            w, gy, gx = w + weight, gy + s * weight * r.gy, gx + s * weight * r.gx
        out.append(Reflection(gy / w, gx / w, sum(r.intensity for r in group), head.snr))
    return out


def drop_streaks(reflections: Sequence[Reflection], ratio: float = STREAK_RATIO,
                 reach: float = STREAK_REACH) -> list[Reflection]:
    """Drop peaks within ``reach`` x |g| of a reflection ``ratio`` times stronger (in snr): the
    streak a grain's edge draws through each of its reflections (its shape transform) has local
    maxima that pass the noise threshold on large, strong images."""
    kept: list[Reflection] = []
    for r in sorted(reflections, key=lambda r: -r.snr):
        near = any(
            k.snr >= ratio * max(r.snr, 1e-9)
            and min(math.hypot(r.gy - k.gy, r.gx - k.gx),
                    math.hypot(r.gy + k.gy, r.gx + k.gx)) < reach * r.g
            for k in kept
        )
        if not near:
            kept.append(r)
    return kept


def angle_between(a: Reflection, b: Reflection) -> float:
    """Acute angle between two reflections' lattice planes, degrees (Friedel pairs: 0-90°)."""
    cos = abs(a.gy * b.gy + a.gx * b.gx) / (a.g * b.g)
    return math.degrees(math.acos(min(cos, 1.0)))


def angle_table(reflections: Sequence[Reflection]) -> np.ndarray:
    """Acute angles (degrees) between every pair of reflections."""
    n = len(reflections)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = angle_between(reflections[i], reflections[j])
    return out
