"""Average Background Subtraction Filter (ABSF; Kilaas, J. Microsc. 190, 45-51, 1998).

Noise spreads evenly over the Fourier amplitude while a lattice concentrates in a few reflections.
The background amplitude under the reflections is estimated by smoothing the amplitude spectrum
with a ``kernel`` x ``kernel`` average, repeatedly, each time replacing the amplitudes that stand
more than ``peak_factor`` times above the current estimate (the reflections) by the estimate, so
that reflections are shaved off it while the noise keeps its mean (replacing every amplitude above
the average would bias the background low and let half the noise through). Subtracting that
background from every amplitude (negative results set to zero) and keeping the phases leaves the
lattice and removes most of the noise. The zero frequency (mean intensity) is kept. The difference
image, raw minus filtered, shows what was removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .spectrum import check_image


@dataclass(frozen=True, eq=False)
class FilterResult:
    filtered: np.ndarray  # float32, same shape as the image
    difference: np.ndarray  # image - filtered
    background: np.ndarray  # background amplitude estimate (rfft layout)


def absf(image: np.ndarray, *, kernel: int = 5, iterations: int = 10, peak_factor: float = 2.0,
         workers: int = -1) -> FilterResult:
    """ABSF-filtered image and difference image (see the module docstring)."""
    from scipy import fft, ndimage

    a = check_image(image)
    if kernel < 3 or iterations < 1:
        raise InputError("the ABSF needs a kernel of at least 3 pixels and one iteration")
    f = fft.rfft2(a, workers=workers)
    amp = np.abs(f).astype(np.float32)
    # smooth in centred rows so the kernel does not wrap across ky = 0 differently from others
    centred = np.fft.fftshift(amp, axes=0)
    background = ndimage.uniform_filter(centred, kernel, mode="nearest")
    for _ in range(iterations):
        shaved = np.where(centred > peak_factor * background, background, centred)
        background = ndimage.uniform_filter(shaved, kernel, mode="nearest")
    background = np.fft.ifftshift(background, axes=0)
    gain = np.clip(1.0 - background / np.maximum(amp, 1e-30), 0.0, 1.0)
    gain[0, 0] = 1.0
    filtered = fft.irfft2(f * gain, s=a.shape, workers=workers).astype(np.float32)
    return FilterResult(filtered, (a - filtered).astype(np.float32), background)


def wiener(image: np.ndarray, size: int = 5) -> np.ndarray:
    """Local adaptive Wiener filter (scipy.signal.wiener): the usual real-space comparison."""
    from scipy import signal

    return signal.wiener(check_image(image).astype(np.float64), size).astype(np.float32)


def gaussian(image: np.ndarray, sigma_px: float = 1.0) -> np.ndarray:
    """Gaussian low-pass, the simplest comparison."""
    from scipy import ndimage

    return ndimage.gaussian_filter(check_image(image), sigma_px)


def snr_against(truth: np.ndarray, estimate: np.ndarray) -> float:
    """SNR of an estimate of a known image, from their correlation: rho^2 / (1 - rho^2).

    Invariant to gain and offset, so filters that scale the image are compared fairly
    (Frank & Al-Ali's spectral signal-to-noise definition applied in real space).
    """
    t = truth.astype(np.float64).ravel()
    e = estimate.astype(np.float64).ravel()
    rho = float(np.corrcoef(t, e)[0, 1])
    return rho**2 / max(1 - rho**2, 1e-12)
