"""Local phase map: a sliding-window FFT across the micrograph, one phase per window.

Windows of ``window_nm`` (rounded to an even, FFT-friendly number of pixels) overlap by half; each
window's spectrum is searched for reflections and identified like a whole image; where a window's
match is ambiguous (LiH / LiF), the phase found on the whole image is taken. Each pixel takes
the label of the window whose centre is nearest, so the map has the step's resolution (half a
window). Ids: the table's labels (Li 2, LiH 3, Cu 4, ...), 1 amorphous (no reflection), 255
reflections no phase explains. The detection threshold is stricter than for a whole image, as a
map makes thousands of tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..jobs import Job, Progress, stop_requested
from ..settings import setting
from .phases import AMORPHOUS, UNKNOWN, PhaseTable, Tolerances, default_table, identify
from .reflections import D_RANGE_A, detect, find_reflections
from .spectrum import check_image, power_spectrum, window_spectra

MIN_WINDOW_PX = 32
#: Reflections of a window used (the strongest): a window rarely resolves more.
WINDOW_PAIR_REFLECTIONS = 6


@dataclass(frozen=True)
class PhaseMapSettings:
    window_nm: float = setting(5.0, "phase-map window side in nm", minimum=1.0, maximum=100.0)
    overlap: float = 0.5  # fraction of a window shared by neighbours
    false_alarm: float = 1e-3  # per window
    d_range_A: tuple[float, float] = D_RANGE_A


@dataclass(frozen=True, eq=False)
class PhaseMap:
    labels: np.ndarray  # uint8, image shape
    grid: np.ndarray  # uint8 (rows, cols): one id per window
    centres_y: np.ndarray  # window centres (pixels)
    centres_x: np.ndarray
    window_px: int
    step_px: int
    counts: dict[int, int]  # windows per id
    stopped: bool = False


def window_size_px(window_nm: float, pixel_size_A: float) -> int:
    """The even, 2-3-5-smooth number of pixels nearest above window_nm."""
    from scipy.fft import next_fast_len

    n = max(round(window_nm * 10.0 / pixel_size_A), MIN_WINDOW_PX)
    while n % 2 or next_fast_len(n) != n:
        n += 1
    return n


def _starts(length: int, window: int, step: int) -> np.ndarray:
    starts = list(range(0, length - window + 1, step))
    if starts[-1] != length - window:
        starts.append(length - window)
    return np.array(starts)


def phase_map(
    image: np.ndarray,
    pixel_size_A: float,
    table: PhaseTable | None = None,
    settings: PhaseMapSettings = PhaseMapSettings(),
    stop: threading.Event | None = None,
) -> Job[PhaseMap]:
    """Job: the local phase map of ``image`` (yields one progress record per row of windows)."""
    table = table or default_table()
    a = check_image(image)
    w = window_size_px(settings.window_nm, pixel_size_A)
    if w > min(a.shape):
        raise InputError(
            f"a {settings.window_nm:g} nm window is {w} pixels, more than the image "
            f"({a.shape[0]} x {a.shape[1]}); choose a smaller window"
        )
    step = max(round(w * (1 - settings.overlap)), 1)
    ys, xs = _starts(a.shape[0], w, step), _starts(a.shape[1], w, step)
    grid = np.zeros((len(ys), len(xs)), np.uint8)
    tol = Tolerances(step=1.0 / (w * pixel_size_A))
    from numpy.lib.stride_tricks import sliding_window_view

    # the whole image measures spacings more finely than a window: where a window cannot tell
    # two phases apart (LiH / LiF), the one the whole image shows is taken
    spectrum = power_spectrum(a, pixel_size_A)
    whole = find_reflections(spectrum, d_range_A=settings.d_range_A)
    preferred = tuple(m.phase for m in identify(whole.reflections, table,
                                                Tolerances(step=spectrum.step)).phases)
    yield Progress(0, len(ys), "whole image")
    stopped = False
    cache: dict[tuple, int] = {}
    for i, y0 in enumerate(ys):
        if stop_requested(stop):
            stopped = True
            break
        strip = sliding_window_view(a[y0: y0 + w], (w, w))[0]  # (x positions, w, w)
        half = window_spectra(np.ascontiguousarray(strip[xs]))
        found = detect(half, w, pixel_size_A, d_range_A=settings.d_range_A,
                       false_alarm=settings.false_alarm, max_peaks=12)
        for j, det in enumerate(found):
            grid[i, j] = _label(det.reflections, table, tol, cache, preferred)
        yield Progress(i + 1, len(ys), f"row {i + 1} of {len(ys)}")
    cy, cx = ys + w / 2, xs + w / 2
    rows = np.abs(np.arange(a.shape[0])[:, None] + 0.5 - cy[None, :]).argmin(axis=1)
    cols = np.abs(np.arange(a.shape[1])[:, None] + 0.5 - cx[None, :]).argmin(axis=1)
    labels = grid[rows][:, cols]
    ids, n = np.unique(grid, return_counts=True)
    return PhaseMap(labels, grid, cy, cx, w, step,
                    {int(k): int(v) for k, v in zip(ids, n)}, stopped)


def _label(reflections, table: PhaseTable, tol: Tolerances, cache: dict,
           preferred: tuple[str, ...] = ()) -> int:
    """Phase-map id of one window. Windows of one grain show the same reflections to a fraction
    of a spectrum pixel: windows whose reflections round to the same spectrum pixels share one
    identification. A match ambiguous with a ``preferred`` phase (found on the whole image)
    takes that phase."""
    if not reflections:
        return AMORPHOUS
    reflections = sorted(reflections, key=lambda r: -r.snr)[:WINDOW_PAIR_REFLECTIONS]
    key = tuple(sorted((round(r.gy / tol.step), round(r.gx / tol.step))
                       for r in reflections))
    if key not in cache:
        ident = identify(reflections, table, tol, max_phases=1,
                         max_pair_reflections=WINDOW_PAIR_REFLECTIONS)
        label = ident.label(table)
        if ident.phases and ident.phases[0].phase not in preferred:
            swap = [p for p in ident.phases[0].ambiguous_with if p in preferred]
            if swap:
                label = table.by_name(swap[0]).label
        cache[key] = label
    return cache[key]


def map_ontology(table: PhaseTable):
    """Names and colours of the phase-map ids, as the project's Ontology."""
    from ..classes import _CUSTOM_PALETTE, DEFAULT_ONTOLOGY, LabelClass, Ontology

    known = {c.name: c.color for c in DEFAULT_ONTOLOGY}
    classes = [LabelClass(AMORPHOUS, "amorphous", (0.55, 0.55, 0.60, 1.0))]
    extra = 0
    for p in table.phases:
        color = known.get(p.name)
        if color is None:
            color = _CUSTOM_PALETTE[extra % len(_CUSTOM_PALETTE)]
            extra += 1
        classes.append(LabelClass(p.label, p.name, color))
    classes.append(LabelClass(UNKNOWN, "unknown lattice", (1.0, 1.0, 1.0, 1.0)))
    return Ontology(tuple(classes))
