"""Grey-level calibration on physical levels: vacuum at 0, Li metal at 1, dense positive.

A reconstruction's grey values are an unknown affine function of density: weighted
back-projection removes most of the mean, so the offset moves with how much of the field is
metal, and the gain with dose, filters and software. Percentile statistics of the whole volume
move with the field's content too: with more metal in view, Li slides to where LiH was. Two
anchors fix both unknowns whatever fills the field:

- **vacuum**, the least dense population that is a large part of the field (always present
  around dendrites on a grid): the lowest peak of the smoothed grey-level histogram, read with
  dense values positive;
- **Li metal**: the lighter of the two populations (Li, LiH) inside the metal cores, found as
  what survives an erosion of the dense
  voxels by a ball of ``CORE_RADIUS_NM`` (which removes the SEI shell with the metal next to it,
  the support film, fiducials and streaks) and a two-component fit of their smoothed grey levels.

The Li level is read the same way on the tomogram a model is trained on and on every tomogram it
is applied to, so that a bias of the reading cancels; the user's Li strokes, where there are
enough, are the check (``stroke_li``: where the painted Li sits on the calibrated scale, ideally 1)
and the fallback when no metal core is found. Polarity (dense dark as in IMOD, or inverted) comes
from the strokes (SEI and LiH are denser than Li) or else from thin dense layers: the compact SEI
every dendrite wears, the support film, fiducials and ice are a few nm thick and denser than what
lies on either side, so a band-pass of a few nm shows them as narrow extremes on the dense side,
while the back-projection's ringing and the edges of large objects give responses of both signs.
The band-pass's skewness therefore points to dense. Where it is too weak to say, the histogram
decides: dense material forms a long tail on one side of the bulk, vacuum a sharp edge on the
other (which fails on clean tomograms whose histogram peaks on the metal, and on fields filled
with metal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..classes import LI, LIH, SEI
from ..errors import InputError

if TYPE_CHECKING:
    from .missing_wedge import WedgeSettings

#: Voxel size (nm) of the binned copy the levels are read from: fine enough for 100-200 nm
#: dendrites and their 10 nm shells, coarse enough to be cheap and to average the noise.
ANALYSIS_VOXEL_NM = 4.0
#: The erosion that leaves metal cores: deeper than the compact SEI (and a few nm of metal
#: mixed with it at this resolution) and the film, shallower than any dendrite's radius.
CORE_RADIUS_NM = 18.0
#: Smoothing (nm) that finds the metal cores and averages their grey levels before the fit.
CORE_SMOOTHING_NM = 8.0
#: At most this many voxels in the binned copy.
MAX_ANALYSIS_VOXELS = 6_000_000
#: Where Li lands after calibration: dense negative as in IMOD's convention, on about the scale
#: percentile normalisation gave (Li -0.3 to -0.45), so a network trained on either reads it.
LI_VALUE = -0.35
#: Calibrated values (in Li units) are clipped here: Cu and gold are tens of Li units dense, and unbounded
#: inputs would let a fiducial dominate a tile.
CLIP = (-4.0, 12.0)
#: LiH's contrast against vacuum in units of Li's: 0.78 against 0.534 g/cm³ is 1.46; the point
#: spread, the back-projection's filter and the averaging bring it to 1.2-1.37 inside the metal
#: cores of the phantoms (seeds 8001-8003, kept for developing the calibration).
LIH_TO_LI_CONTRAST = 1.3
#: Dense voxels are those this many vacuum noise widths above vacuum: the first (highest) whose
#: cores hold ``MIN_CORE_SHARE`` of the cores the last (lowest) leaves.
SOLID_NOISE_WIDTHS = (4.0, 3.0, 2.0, 1.0)
#: A threshold that keeps less than this share of the lowest threshold's cores has cut into the
#: metal itself and kept its densest phase (LiH) only.
MIN_CORE_SHARE = 0.7
#: Largest spread of one phase in the core fit, as a fraction of the Li-LiH difference.
MAX_SPREAD = 0.5
#: A core fit with a LiH share below this calls nearly all the metal one population ...
ONE_POPULATION_SHARE = 0.2
#: ... which is LiH called Li when more than this share of the core values lies in this band
#: below its level (in units of it): the band where Li sits under LiH (1/1.46 to 1/1.15). A
#: Li-only core leaves 4-7 % there, one fitted on LiH 15-25 % (development seeds 8001-8015).
LIGHTER_SHARE = 0.12
LIGHTER_BAND = (0.6, 0.88)
#: Whatever the fit's LiH share, more than this share of the core values in that band means
#: Li was placed between Li and LiH: on development seeds 8001-8005 (perpendicular, 2 and 3
#: dendrites) the fits leaving 0.157-0.237 there read true Li at 0.73-0.83, all but one of the
#: others (0.156, Li 0.84) left under 0.14 and read 0.84-0.99. Out of sample the refit helped on
#: two tomograms and overshot on one (docs/segmentation.md, "Li placed between Li and LiH").
LI_TOO_HIGH_SHARE = 0.15
#: A core fit putting at least this share of the metal in the denser population took one broad
#: population for LiH, and Li then reads too dense. On 138 development tomograms
#: (``benchmarks.transfer_spread``: 2 dendrites 8003-8100, 3 dendrites 8001-8040) 10 fits read
#: 0.895-1.00 (mean Dice 0.56-0.68); the others at most 0.74 (mean Dice 0.72 and more).
ONE_POPULATION_DENSE_SHARE = 0.8
#: Painted Li voxels needed to read the Li level from the strokes.
MIN_STROKE_VOXELS = 50
#: Band-pass (nm, Gaussian minus Gaussian) whose skewness gives the polarity, read on a copy
#: binned to about ``POLARITY_VOXEL_NM``, at most ``MAX_POLARITY_VOXELS`` cells (a window, whole
#: in depth, where the field varies most). A magnitude under ``MIN_SHELL_SKEW`` leaves it to the histogram.
#: Chosen on development phantoms (docs/segmentation.md, "Polarity").
SHELL_BAND_NM = (2.0, 6.0)
POLARITY_VOXEL_NM = 2.0
MAX_POLARITY_VOXELS = 4_000_000
MIN_SHELL_SKEW = 0.5


@dataclass(frozen=True)
class Calibration:
    """Grey levels in Li units, ``(x - vacuum) / (li - vacuum)`` (vacuum 0, Li 1, LiH about 1.4),
    handed to the network as ``LI_VALUE`` times that (dense negative).

    ``vacuum`` and ``li`` are grey levels of the tomogram; ``li < vacuum`` is the usual dense-dark
    contrast, ``li > vacuum`` inverted. ``source`` says where the Li level came from ("metal
    cores"; "strokes" or "histogram" when no metal core was found); ``lih_share`` is the share of
    the core voxels in the denser population (a diagnostic, not a measurement), ``noise`` the
    standard deviation of vacuum in Li units, ``stroke_li`` the painted Li's median on this scale.
    ``voxel_noise`` (a model's calibration only) is the least voxel noise, in Li units per voxel
    of the network's grid, of the tomograms it was trained on (``segment.noise``). ``wedge``:
    each tomogram's missing wedge is restored before the network reads it (``missing_wedge``).
    """

    vacuum: float
    li: float
    source: str = "metal cores"
    lih_share: float | None = None
    noise: float | None = None
    per_image: bool = True
    stroke_li: float | None = None
    voxel_noise: float | None = None
    wedge: WedgeSettings | None = None

    def __post_init__(self) -> None:
        if not np.isfinite(self.vacuum) or not np.isfinite(self.li) or self.li == self.vacuum:
            raise InputError("a calibration needs distinct, finite vacuum and Li levels")

    @property
    def inverted(self) -> bool:
        """Dense material is brighter than vacuum (the opposite of IMOD's convention)."""
        return self.li > self.vacuum

    def apply(self, block: np.ndarray) -> np.ndarray:
        out = np.asarray(block, dtype=np.float32) - np.float32(self.vacuum)
        out *= np.float32(1.0 / (self.li - self.vacuum))
        np.clip(out, *CLIP, out=out)
        out *= np.float32(LI_VALUE)
        return out

    def in_li_units(self, values: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Grey levels on the physical scale: vacuum 0, Li 1."""
        out = np.array(values, dtype)
        out -= dtype(self.vacuum)
        out *= dtype(1.0 / (self.li - self.vacuum))
        return out

    def for_image(
        self, image: np.ndarray, voxel_size_nm: float | tuple[float, ...] = 2.0
    ) -> Calibration:
        """The calibration to apply to ``image``: its own when ``per_image``."""
        if not self.per_image:
            return self
        return replace(calibrate(image, voxel_size_nm), wedge=self.wedge)

    def describe(self) -> str:
        polarity = "inverted (dense bright)" if self.inverted else "dense dark"
        share = "" if self.lih_share is None else f", denser share of the metal {self.lih_share:.2f}"
        noise = "" if self.noise is None else f", vacuum noise {self.noise:.2f} Li units"
        check = "" if self.stroke_li is None else f", painted Li at {self.stroke_li:.2f}"
        trained = ("" if self.voxel_noise is None
                   else f", trained on voxel noise {self.voxel_noise:.2f} Li units")
        wedge = ("" if self.wedge is None else
                 f"; missing-wedge restoration on, tilt ±{self.wedge.tilt_range_deg:g}°")
        return (f"vacuum {self.vacuum:.4g}, Li {self.li:.4g} ({polarity}; Li level from "
                f"{self.source}{share}{noise}{check}{trained}){wedge}")

    def to_dict(self) -> dict:
        return {"kind": "calibration", "vacuum": self.vacuum, "li": self.li,
                "source": self.source, "lih_share": self.lih_share, "noise": self.noise,
                "inverted": self.inverted, "per_image": self.per_image,
                "stroke_li": self.stroke_li, "voxel_noise": self.voxel_noise,
                "wedge": None if self.wedge is None else self.wedge.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        def opt(key):
            return None if d.get(key) is None else float(d[key])

        from .missing_wedge import WedgeSettings

        wedge = WedgeSettings.from_dict(d["wedge"]) if d.get("wedge") else None
        return cls(float(d["vacuum"]), float(d["li"]), str(d.get("source", "metal cores")),
                   opt("lih_share"), opt("noise"), bool(d.get("per_image", True)), opt("stroke_li"),
                   opt("voxel_noise"), wedge)


def describe_intensity(d: dict | None) -> str:
    """One line on the grey-level mapping a checkpoint or a prediction records."""
    if not d:
        return "not recorded"
    if d.get("kind") == "calibration":
        matched = ""
        if d.get("noise_added") is not None:
            matched = (f"; voxel noise {d['tomogram_voxel_noise']:.2f} Li units against the "
                       f"model's {d['model_voxel_noise']:.2f}, "
                       + (f"white noise of {d['noise_added']:.2f} added" if d["noise_added"]
                          else "no noise added"))
        restoration = d.get("restoration")
        if restoration:
            from .missing_wedge import WedgeRecord

            matched += "; " + WedgeRecord(**restoration).describe()
        return Calibration.from_dict(d).describe() + matched
    return (f"percentiles of the whole volume (median {d['center']:.4g}, spread {d['scale']:.4g}; "
            "a model trained before calibration)")


def intensity_warning(d: dict | None) -> str | None:
    """A sentence for the user when a recorded calibration is doubtful, else None."""
    if not d or d.get("kind") != "calibration" or d.get("source") != "metal cores":
        return None
    share = d.get("lih_share")
    if share is not None and share >= ONE_POPULATION_DENSE_SHARE:
        return (f"the metal cores read as one population, taken as LiH (denser share {share:.2f}): "
                "Li may be read too dense and called LiH; check the Li/LiH call against a few "
                "painted strokes, or fine-tune on this tomogram")
    return None


def calibrate(
    image: np.ndarray,
    voxel_size_nm: float | tuple[float, ...],
    labels: np.ndarray | None = None,
) -> Calibration:
    """The vacuum and Li levels of ``image`` (z, y, x), from ``labels`` (strokes) where painted.

    Reads a binned, smoothed copy slab by slab, so a memory-mapped tomogram larger than RAM is
    calibrated in bounded memory. Raises ``InputError`` when the volume has no contrast.
    """
    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    smooth, factors = analysis_copy(image, h)
    hc = h * factors
    lo, hi = np.percentile(smooth, [0.5, 99.5])
    if not hi > lo:
        raise InputError("the image has no contrast to calibrate (it is uniform)")

    strokes = _stroke_levels(image, labels, smooth, factors) if labels is not None else {}
    sign = _polarity(smooth, strokes, lambda: shell_skew(image, h, (smooth, factors)))
    dense = sign * smooth
    vacuum, noise = _vacuum_level(dense)
    painted = sign * strokes[LI][0] if strokes.get(LI, (0, 0))[1] >= MIN_STROKE_VOXELS else None
    li, share = _core_level(dense, hc)
    source = "metal cores"
    if li is None and painted is not None:
        li, source = painted, "strokes"
    elif li is None:  # no dendrite-sized object: a rough scale from the dense tail
        li, source = vacuum + 0.25 * (np.percentile(dense, 99.5) - vacuum), "histogram"
    if not li > vacuum:
        raise InputError(
            "cannot calibrate: the Li level found is not denser than vacuum (vacuum "
            f"{sign * vacuum:.4g}, Li {sign * li:.4g}); check the strokes and the contrast, or "
            "use percentile grey levels"
        )
    scale = li - vacuum
    check = None if painted is None else round(float((painted - vacuum) / scale), 3)
    return Calibration(float(sign * vacuum), float(sign * li), source,
                       None if share is None else round(float(share), 3),
                       round(float(noise / scale), 4), stroke_li=check)


def analysis_copy(
    image: np.ndarray, voxel_size_nm: float | tuple[float, ...]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The copy the levels are read from: ``image`` binned to about ``ANALYSIS_VOXEL_NM`` and
    smoothed over half of it, with the bin factors."""
    from scipy import ndimage as ndi

    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    factors = _bin_factors(image.shape, h)
    sigma = ANALYSIS_VOXEL_NM / 2 / (h * factors)
    return ndi.gaussian_filter(bin_volume(image, factors), sigma, mode="nearest"), factors


def bin_volume(
    image: np.ndarray, factors: tuple[int, int, int], window: tuple[slice, slice] | None = None
) -> np.ndarray:
    """Block means of ``image`` (or of its y-x ``window``) over ``factors`` voxels (float32), read
    a slab at a time.

    Edge voxels that do not fill a block are dropped (at most ``factor - 1`` per axis). The
    pages of a memory-mapped image are released once read, so they do not stay resident.
    """
    from .prediction import release_pages

    fz, fy, fx = factors
    wy, wx = window or (slice(None), slice(None))
    y0, y1, _ = wy.indices(image.shape[1])
    x0, x1, _ = wx.indices(image.shape[2])
    nz, ny, nx = image.shape[0] // fz, (y1 - y0) // fy, (x1 - x0) // fx
    if min(nz, ny, nx) < 1:
        raise InputError(f"the volume {image.shape} is too small to bin by {factors}")
    out = np.empty((nz, ny, nx), np.float32)
    step = max(1, (32 << 20) // max(1, fz * image[0].nbytes))
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        slab = np.asarray(image[z0 * fz : z1 * fz, y0 : y0 + ny * fy, x0 : x0 + nx * fx],
                          dtype=np.float32)
        out[z0:z1] = slab.reshape(z1 - z0, fz, ny, fy, nx, fx).mean(axis=(1, 3, 5))
        release_pages(image, z0 * fz, z1 * fz)
    return out


def _bin_factors(shape: tuple[int, ...], h: np.ndarray) -> tuple[int, int, int]:
    f = np.maximum(1, np.round(ANALYSIS_VOXEL_NM / h)).astype(int)
    while np.prod(np.asarray(shape) // f) > MAX_ANALYSIS_VOXELS:
        f += 1
    f = np.minimum(f, np.maximum(1, np.asarray(shape) // 8))
    return tuple(int(v) for v in f)  # type: ignore[return-value]


def _stroke_levels(image, labels, smooth, factors) -> dict[int, tuple[float, int]]:
    """Median smoothed grey level and voxel count of each painted phase (Li, LiH, SEI)."""
    if labels.shape != image.shape:
        raise InputError(f"the labels (shape {labels.shape}) do not match the image "
                         f"(shape {image.shape})")
    f = np.asarray(factors)
    limit = np.asarray(smooth.shape) - 1
    coords: dict[int, list[np.ndarray]] = {LI: [], LIH: [], SEI: []}
    for z in range(labels.shape[0]):  # one pass, a section at a time
        section = np.asarray(labels[z])
        for cls, found in coords.items():
            yx = np.nonzero(section == cls)
            if yx[0].size:
                found.append(np.column_stack([np.full(yx[0].size, z), *yx]))
    out: dict[int, tuple[float, int]] = {}
    for cls, found in coords.items():
        if found:
            values = smooth[tuple((np.minimum(np.concatenate(found) // f, limit)).T)]
            out[cls] = (float(np.median(values)), len(values))
    return out


def shell_skew(image: np.ndarray, voxel_size_nm: float | tuple[float, ...],
               overview: tuple[np.ndarray, tuple[int, int, int]] | None = None) -> float:
    """Skewness of ``SHELL_BAND_NM``'s band-pass of ``image``: positive where thin dense layers
    are bright (inverted contrast), negative where dark (IMOD's convention).

    Read on a copy binned to about ``POLARITY_VOXEL_NM``; where that holds more than
    ``MAX_POLARITY_VOXELS`` cells, on a window of that many (whole in depth) centred where the
    field varies most (:func:`_busiest_window`, on ``overview``: :func:`analysis_copy`'s copy and
    bin factors, made here when not given): a dendrite off-centre in a wide field of vacuum would
    be missed by a central one.
    """
    from scipy import ndimage as ndi

    h = np.broadcast_to(np.asarray(voxel_size_nm, float), (3,))
    f = np.maximum(1, np.round(POLARITY_VOXEL_NM / h)).astype(int)
    cells = np.asarray(image.shape) // f
    keep = min(1.0, np.sqrt(MAX_POLARITY_VOXELS / max(1, np.prod(cells))))
    size = np.maximum(1, (cells[1:] * keep).astype(int)) * f[1:]
    window: tuple[slice, slice] = (slice(None), slice(None))
    if keep < 1:
        copy, factors = overview or analysis_copy(image, h)
        window = _busiest_window(copy, np.asarray(factors[1:]), size, image.shape[1:])
    v = bin_volume(image, tuple(int(x) for x in f), window)  # type: ignore[arg-type]
    hv = h * f
    fine, broad = (np.asarray(s) / hv for s in SHELL_BAND_NM)
    band = ndi.gaussian_filter(v, fine, mode="nearest")
    band -= ndi.gaussian_filter(v, broad, mode="nearest")
    edge = np.minimum(np.ceil(2 * broad).astype(int), np.asarray(band.shape) // 4)
    band = band[tuple(slice(e, n - e) for e, n in zip(edge, band.shape))].astype(np.float64)
    band -= band.mean()
    spread = float(np.sqrt(np.mean(band**2)))
    return float(np.mean(band**3) / spread**3) if spread > 0 else 0.0


def _busiest_window(copy: np.ndarray, factors: np.ndarray, size: np.ndarray,
                    shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The y-x window of ``size`` voxels (of a field of ``shape``) where the grey levels of
    ``copy``, binned by ``factors`` in y and x, vary most along z: dendrites, fiducials and ice
    (the film is everywhere)."""
    from scipy import ndimage as ndi

    varied = ndi.uniform_filter(copy.var(axis=0), np.maximum(1, size // factors), mode="nearest")
    centre = (np.array(np.unravel_index(np.argmax(varied), varied.shape)) + 0.5) * factors
    lo = np.clip((centre - size / 2).astype(int), 0, np.asarray(shape) - size)
    return tuple(slice(int(a), int(a + w)) for a, w in zip(lo, size))  # type: ignore[return-value]


def _polarity(smooth: np.ndarray, strokes: dict[int, tuple[float, int]],
              skew: Callable[[], float] = lambda: 0.0) -> float:
    """+1 when dense material has higher grey values, -1 when lower (IMOD's convention): from
    the strokes, else from the thin dense layers (``skew()``, :func:`shell_skew`), else from the
    histogram of ``smooth``."""
    if LI in strokes:
        denser = [strokes[c][0] for c in (LIH, SEI) if c in strokes]
        if denser:
            return 1.0 if np.median(denser) > strokes[LI][0] else -1.0
    layers = skew()
    if abs(layers) >= MIN_SHELL_SKEW:
        return float(np.sign(layers))
    # Measured from the histogram's peak (vacuum, or metal in a crowded field): dense material
    # reaches much farther from it than the back-projection's light ringing does.
    counts, edges = np.histogram(smooth, bins=256)
    peak = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    lo, hi = np.percentile(smooth, [0.1, 99.9])
    return 1.0 if hi - peak > peak - lo else -1.0


def _vacuum_level(dense: np.ndarray) -> tuple[float, float]:
    """The lowest large peak of the histogram of dense-positive values, and its noise width."""
    lo, hi = np.percentile(dense, [0.2, 99.8])
    counts, edges = np.histogram(dense, bins=256, range=(lo, hi))
    from scipy.ndimage import gaussian_filter1d

    smooth = gaussian_filter1d(counts.astype(float), 2.0)
    peaks = [i for i in range(1, len(smooth) - 1)
             if smooth[i] >= smooth[i - 1] and smooth[i] >= smooth[i + 1]
             and smooth[i] >= 0.2 * smooth.max()]
    i = peaks[0] if peaks else int(np.argmax(smooth))
    centres = 0.5 * (edges[:-1] + edges[1:])
    vacuum = float(centres[i])
    # Width from the half maximum on the light side: values lighter than vacuum also hold the
    # back-projection's ringing around dense objects, which a plain deviation would count.
    half = np.flatnonzero(smooth[: i + 1] < 0.5 * smooth[i])
    j = half[-1] if half.size else 0
    noise = (vacuum - float(centres[j])) / 1.1774 if j < i else float(edges[1] - edges[0])
    return vacuum, max(noise, 1e-12)


def _core_level(dense: np.ndarray, hc: np.ndarray) -> tuple[float | None, float | None]:
    """Li level from the cores of dendrite-sized dense objects, and the denser population's share."""
    cores, sigma = metal_cores(dense, hc)
    if cores is None:
        return None, None
    return _li_level(core_values(dense, cores, sigma), _vacuum_level(dense)[0])


def metal_cores(dense: np.ndarray, hc: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The metal cores of ``dense`` (an analysis copy, dense positive, voxels ``hc`` nm): dense
    voxels eroded by ``CORE_RADIUS_NM``, or None where fewer than 50 survive; and the smoothing
    (voxels) their values are averaged over (``core_values``)."""
    from scipy import ndimage as ndi

    # Found on a copy smoothed over the grain size: at the voxel level Li can sit within two
    # noise widths of vacuum, and a noisy mask would erode to nothing.
    sigma = CORE_SMOOTHING_NM / np.asarray(hc, float)
    blurred = ndi.gaussian_filter(dense, sigma, mode="nearest")
    vacuum, noise = _vacuum_level(blurred)
    # Deeper along z, where the missing wedge stretches the film and the shell.
    radius = np.maximum(1, np.round(CORE_RADIUS_NM * np.array([1.6, 1, 1]) / hc)).astype(int)
    zz, yy, xx = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    ball = (zz / radius[0]) ** 2 + (yy / radius[1]) ** 2 + (xx / radius[2]) ** 2 <= 1.0
    # The noise width is read on vacuum's light side, which also holds the back-projection's
    # ringing: where that ringing is strong (gold fiducials, streaks of thin crowded dendrites),
    # four widths reach into the metal and leave only the cores of LiH, so lower thresholds are
    # tried until the cores stop growing much.
    def cores_above(widths: float) -> np.ndarray:
        return ndi.binary_erosion(blurred > vacuum + widths * noise, structure=ball)

    lowest = cores_above(SOLID_NOISE_WIDTHS[-1])
    if lowest.sum() < 50:
        return None, sigma
    enough = max(50, MIN_CORE_SHARE * lowest.sum())
    cores = next((c for c in map(cores_above, SOLID_NOISE_WIDTHS[:-1]) if c.sum() >= enough),
                 lowest)
    return cores, sigma


def core_values(volume: np.ndarray, cores: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``volume``'s grey levels at the ``cores`` voxels, averaged over ``sigma`` within the cores
    only, so that the shell does not leak in."""
    from scipy import ndimage as ndi

    weight = ndi.gaussian_filter(cores.astype(np.float32), sigma)
    pooled = ndi.gaussian_filter(np.where(cores, volume, 0).astype(np.float32), sigma)
    return pooled[cores] / np.maximum(weight[cores], 1e-6)


def _li_level(values: np.ndarray, vacuum: float, ratio: float = LIH_TO_LI_CONTRAST,
              max_values: int = 20_000) -> tuple[float, float]:
    """Li level of core values holding Li, LiH at ``ratio`` times Li's contrast, and outliers.

    A mixture whose LiH component is tied to the Li one (Li and LiH differ by about the spread
    of each after averaging, too little to split them freely; tied, the Li level does not slide
    with the LiH share), plus a flat component for what is neither (shell or film left in the
    cores, Cu). The mixture's other parameters are fitted for each Li level on a grid, and the
    level of highest likelihood wins: a single fit from one start stops in a local optimum that
    merges the two phases. Returns the Li level and the LiH share of the metal.

    Where LiH's contrast is further from ``ratio`` than the tie allows, the best fit can be one
    broad population on LiH, called Li (LiH share near 0). A Li-only core (fresh) is one sharp
    peak; this one leaves a lighter population below it, so the fit is run again with Li
    required below the first level. A fit with a fair LiH share can leave one there too, having
    put Li between Li and LiH (dendrites across the tilt axis, thin crowded ones); it is run
    again the same way.
    """
    v = values.astype(np.float64) - vacuum
    if len(v) > max_values:
        v = np.random.default_rng(0).choice(v, max_values, replace=False)
    lo, hi = float(v.min()), float(v.max())
    flat = 1.0 / max(hi - lo, 1e-12)
    level, share = _best_level(v, float(np.percentile(v, 1)), float(np.percentile(v, 70)),
                               ratio, flat)
    lighter = float(np.mean((v > LIGHTER_BAND[0] * level) & (v < LIGHTER_BAND[1] * level)))
    if (share < ONE_POPULATION_SHARE and lighter > LIGHTER_SHARE) or lighter > LI_TOO_HIGH_SHARE:
        level, share = _best_level(v, float(np.percentile(v, 1)), LIGHTER_BAND[1] * level,
                                   ratio, flat)
    return vacuum + level, share


def _best_level(v: np.ndarray, lo: float, hi: float, ratio: float, flat: float
                ) -> tuple[float, float]:
    """The Li level in ``[lo, hi]`` of highest likelihood under the tied fit, and its LiH share."""
    grid = np.linspace(lo, hi, 41)
    best = (-np.inf, float(np.median(v)), 0.0)
    for _ in range(2):  # a coarse grid, then a finer one around its best
        for level in grid:
            loglik, share = _tied_fit(v, level, ratio, flat)
            if loglik > best[0]:
                best = (loglik, float(level), share)
        step = grid[1] - grid[0]
        grid = np.linspace(best[1] - step, best[1] + step, 21)
    return best[1], best[2]


def _tied_fit(v: np.ndarray, level: float, ratio: float, flat: float, iterations: int = 40
              ) -> tuple[float, float]:
    """Log-likelihood and LiH share of the tied mixture with Li at ``level`` (EM over the rest)."""
    share, outliers = 0.5, 0.05
    var = max(float(np.var(v)) / 4, 1e-12)
    d_li, d_lih = (v - level) ** 2, (v - ratio * level) ** 2
    for _ in range(iterations):
        norm = 1.0 / np.sqrt(2 * np.pi * var)
        p_li = (1 - outliers) * (1 - share) * norm * np.exp(-0.5 * d_li / var)
        p_lih = (1 - outliers) * share * norm * np.exp(-0.5 * d_lih / var)
        total = p_li + p_lih + outliers * flat
        r_li, r_lih = p_li / total, p_lih / total
        n_li, n_lih = r_li.sum(), r_lih.sum()
        share = float(n_lih / max(n_li + n_lih, 1e-12))
        outliers = float(min(max(1 - (n_li + n_lih) / len(v), 1e-4), 0.5))
        var = max(float((r_li @ d_li + r_lih @ d_lih) / max(n_li + n_lih, 1e-12)), 1e-12)
        # Each phase's spread stays below a fraction of their difference: otherwise one broad
        # population at the metal's mean explains both as well as two.
        var = min(var, (MAX_SPREAD * (ratio - 1) * abs(level)) ** 2)
    return float(np.log(total).sum()), share
