"""Apodised power spectra of micrographs, in reciprocal Ångström.

The image (or a rectangular region of it) minus its mean is multiplied by a separable Hann window,
which keeps the edges of the field from smearing every reflection into streaks, and zero-padded to
a square of fast FFT size. A real image has a point-symmetric spectrum, so only the half-plane of
``rfft2`` is computed and searched (Friedel's law); :meth:`PowerSpectrum.full` rebuilds the whole
centred spectrum for display.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

#: Smallest region (pixels per side) whose spectrum is worth computing.
MIN_SIDE = 16

Region = tuple[int, int, int, int]  # y0, x0, y1, x1 (pixels, end exclusive)


@dataclass(frozen=True, eq=False)
class PowerSpectrum:
    """Half-plane power spectrum: rows are ky from -n/2 to n/2 - 1 (centred), columns kx >= 0."""

    half: np.ndarray  # (n, n // 2 + 1) float32
    pixel_size_A: float
    n: int  # side of the (square, padded) transform
    region: Region  # the part of the image transformed

    @property
    def step(self) -> float:
        """Frequency step between neighbouring spectrum pixels, 1/Å."""
        return 1.0 / (self.n * self.pixel_size_A)

    @property
    def nyquist(self) -> float:
        return 0.5 / self.pixel_size_A

    def to_frequency(self, row: np.ndarray | float, col: np.ndarray | float):
        """(gy, gx) in 1/Å of half-plane pixel (row, col); row n/2 is ky = 0."""
        return (np.asarray(row) - self.n // 2) * self.step, np.asarray(col) * self.step

    def to_pixel(self, gy, gx):
        """Half-plane (row, col) of a frequency, after mapping it onto kx >= 0."""
        gy, gx = np.asarray(gy, float), np.asarray(gx, float)
        flip = gx < 0
        gy, gx = np.where(flip, -gy, gy), np.where(flip, -gx, gx)
        return gy / self.step + self.n // 2, gx / self.step

    def full(self) -> np.ndarray:
        """The whole centred spectrum (n, n), the zero frequency at (n/2, n/2)."""
        n, h = self.n, self.half
        out = np.empty((n, n), np.float32)
        out[:, n // 2:] = h[:, : n - n // 2]
        # P(-ky, -kx) = P(ky, kx): left half from the mirrored half-plane.
        rows = (n - np.arange(n)) % n  # index of -ky in the centred rows
        out[:, : n // 2] = h[rows][:, n // 2:0:-1]
        return out

    def log(self) -> np.ndarray:
        """log(1 + P / median P): the usual display of a power spectrum."""
        full = self.full()
        return np.log1p(full / max(float(np.median(full)), 1e-30)).astype(np.float32)

    def radius_px(self, d_A: float) -> float:
        """Radius in spectrum pixels of the ring at spacing ``d_A``."""
        return 1.0 / (d_A * self.step)


def check_image(image: np.ndarray) -> np.ndarray:
    """A 2D real image as float32, or an InputError saying what is wrong."""
    a = np.asarray(image)
    if a.ndim != 2:
        raise InputError(f"a micrograph must be a 2D image, not an array of shape {a.shape}")
    if np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.number):
        raise InputError(f"a micrograph must hold real numbers, not {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise InputError("the micrograph contains NaN or infinite values")
    return a


def check_region(region: Region | None, shape: tuple[int, int]) -> Region:
    """The region clipped to the image; an InputError when it is empty or tiny."""
    if region is None:
        return (0, 0, shape[0], shape[1])
    y0, x0, y1, x1 = (round(v) for v in region)
    y0, y1 = sorted((y0, y1))
    x0, x1 = sorted((x0, x1))
    y0, x0 = max(y0, 0), max(x0, 0)
    y1, x1 = min(y1, shape[0]), min(x1, shape[1])
    if y1 - y0 < MIN_SIDE or x1 - x0 < MIN_SIDE:
        raise InputError(
            f"the region {region} leaves {max(y1 - y0, 0)} x {max(x1 - x0, 0)} pixels of the "
            f"{shape[0]} x {shape[1]} image; it needs at least {MIN_SIDE} x {MIN_SIDE}"
        )
    return (y0, x0, y1, x1)


def hann(n: int) -> np.ndarray:
    """Periodic-free (symmetric) Hann window of length n, float32."""
    return np.hanning(n).astype(np.float32) if n > 1 else np.ones(1, np.float32)


def power_spectrum(
    image: np.ndarray,
    pixel_size_A: float,
    region: Region | None = None,
    *,
    pad_to: int | None = None,
    workers: int = -1,
) -> PowerSpectrum:
    """Hann-apodised power spectrum |F|^2 of ``image`` (or ``region``), half-plane, centred rows."""
    from scipy import fft

    if not (pixel_size_A > 0 and np.isfinite(pixel_size_A)):
        raise InputError(f"the pixel size must be a positive number of Å, not {pixel_size_A}")
    a = check_image(image)
    region = check_region(region, a.shape)
    y0, x0, y1, x1 = region
    crop = a[y0:y1, x0:x1]
    n = pad_to or fft.next_fast_len(max(crop.shape), real=True)
    n += n % 2  # even: ky = 0 sits on row n/2
    # (-1)^y on the rows centres ky in the output (fftshift along y for free)
    wy = hann(y1 - y0) * np.where(np.arange(y1 - y0) % 2, -1.0, 1.0).astype(np.float32)
    windowed = (crop - float(crop.mean(dtype=np.float64))) * wy[:, None]
    windowed *= hann(x1 - x0)[None, :]
    f = fft.rfft2(windowed, s=(n, n), workers=workers)
    p = np.square(f.real)
    p += np.square(f.imag)
    return PowerSpectrum(p.astype(np.float32, copy=False), float(pixel_size_A), n, region)


def window_spectra(windows: np.ndarray, workers: int = -1) -> np.ndarray:
    """Hann-apodised half-plane power spectra of a stack of square windows (k, w, w), rows centred."""
    from scipy import fft

    w = windows.shape[-1]
    win = hann(w)
    a = windows - windows.mean(axis=(-2, -1), keepdims=True, dtype=np.float32)
    a = a * (win[:, None] * win[None, :])
    f = fft.rfft2(a.astype(np.float32, copy=False), axes=(-2, -1), workers=workers)
    p = f.real**2 + f.imag**2
    return np.fft.fftshift(p, axes=-2).astype(np.float32, copy=False)
