"""Weighted (R-weighted) back-projection of an aligned tilt series, as IMOD's ``tilt`` does it.

Each projection row is ramp-filtered (the band-limited Ram-Lak kernel, which gives the right
absolute intensity), optionally low-passed with IMOD's RADIAL cutoff and Gaussian falloff and
optionally turned into IMOD's SIRT-like filter, weighted by the angular interval it stands for,
and back-projected with linear interpolation. Slices perpendicular to the tilt axis share one
sparse back-projection matrix, so a chunk of slices is one sparse-dense product (see
``geometry``). The result is in the units of the input per voxel length: projections that are
line integrals in voxel lengths reconstruct to the values of the original volume.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..devices import resolve_device
from ..errors import InputError
from ..jobs import Job, Progress, stop_requested
from ..settings import setting
from . import geometry

#: Slices perpendicular to the tilt axis back-projected per step (one progress record each).
SLICES_PER_STEP = 32

# IMOD's empirical constants for the SIRT-like filter (tilt, FakeSIRTiterations).
_FAKE_SIRT_ALPHA = 0.00195
_FAKE_SIRT_MATCH_ADD = 0.3


@dataclass(frozen=True)
class WBPSettings:
    """How to reconstruct; names and defaults follow IMOD's ``tilt``.

    ``thickness``: voxels along z (default: the width of the tilt series).
    ``radial_cutoff``: frequency (cycles/pixel, at most 0.5) where the ramp stops rising;
    0.5 means no low-pass. ``radial_falloff``: sigma (cycles/pixel) of the Gaussian that
    takes the filter down beyond the cutoff; 0 cuts sharply. ``sirt_like_iterations``: make
    the filter mimic that many SIRT iterations (IMOD's FakeSIRTiterations; 0 = plain WBP).
    ``device``: ``"auto"`` (a CUDA GPU when present), ``"cpu"`` or ``"cuda"``.
    """

    thickness: int | None = setting(None, "voxels along z (default: the image width)",
                                    minimum=0, maximum=8192)
    radial_cutoff: float = setting(0.35, "IMOD RADIAL cutoff, cycles/pixel; 0.5 = no low-pass",
                                   minimum=0.01, maximum=0.5, step=0.01)
    radial_falloff: float = setting(0.035, "IMOD RADIAL falloff (Gaussian sigma), cycles/pixel",
                                    minimum=0.0, maximum=0.5, step=0.005)
    sirt_like_iterations: int = setting(
        0, "filter like N SIRT iterations, as IMOD's FakeSIRTiterations", minimum=0, maximum=100
    )
    device: str = setting("auto", "where to compute", choices=("auto", "cpu", "cuda"))

    def __post_init__(self) -> None:
        if self.thickness is not None and int(self.thickness) < 1:
            raise InputError(f"the thickness must be at least 1 voxel, not {self.thickness}")
        if not 0.0 < self.radial_cutoff <= 0.5:
            raise InputError(
                f"the radial cutoff must lie in (0, 0.5] cycles/pixel, not {self.radial_cutoff}"
            )
        if not 0.0 <= self.radial_falloff <= 0.5:
            raise InputError(
                f"the radial falloff must lie in [0, 0.5] cycles/pixel, not {self.radial_falloff}"
            )
        if int(self.sirt_like_iterations) < 0:
            raise InputError("the number of SIRT-like iterations cannot be negative")


#: Plain filtered back-projection (no low-pass): the textbook result, for comparisons.
UNFILTERED = WBPSettings(radial_cutoff=0.5, radial_falloff=0.0)


@dataclass(frozen=True)
class Reconstruction:
    """A reconstructed volume (z, y, x), float32; ``stopped`` if cut short (then incomplete)."""

    volume: np.ndarray
    stopped: bool


def ramp(n_padded: int) -> np.ndarray:
    """Ram-Lak ramp (≈ |f| in cycles/pixel) for rows of ``n_padded`` pixels, rfft layout.

    Built from the band-limited spatial kernel (Kak & Slaney), whose small non-zero value at
    zero frequency keeps the mean of the reconstruction right.
    """
    n = np.arange(n_padded)
    n = np.minimum(n, n_padded - n)
    kernel = np.zeros(n_padded)
    kernel[0] = 0.25
    odd = n % 2 == 1
    kernel[odd] = -1.0 / (np.pi * n[odd]) ** 2
    return np.fft.rfft(kernel).real


def radial_filter(n_padded: int, settings: WBPSettings = WBPSettings()) -> np.ndarray:
    """The weighting function applied to each row's spectrum (rfft layout), before view weights.

    Ramp up to ``radial_cutoff``; beyond it, the value at the cutoff times a Gaussian of sigma
    ``radial_falloff`` (IMOD's RADIAL with FalloffIsTrueSigma). With ``sirt_like_iterations``
    k > 0 the ramp is multiplied by 1 - (1 - α/f)^k' as in IMOD (α = 0.00195 cycles/pixel,
    k' = k + 0.3, tempered above 15 iterations), which damps low frequencies less than
    the ramp does and suppresses noise like k iterations of SIRT.
    """
    f = np.arange(n_padded // 2 + 1) / n_padded
    weight = ramp(n_padded)
    k = int(settings.sirt_like_iterations)
    if k > 0:
        k_eff = float(k)
        if k > 15:
            k_eff = 15 + 0.8 * (k - 15)
        if k > 30:
            k_eff = 27 + 0.6 * (k - 30)
        high = f >= _FAKE_SIRT_ALPHA
        weight[high] *= 1.0 - (1.0 - _FAKE_SIRT_ALPHA / f[high]) ** (k_eff + _FAKE_SIRT_MATCH_ADD)
    cutoff = settings.radial_cutoff
    if cutoff < 0.5:
        i_cut = round(cutoff * n_padded)
        beyond = np.arange(weight.size) > i_cut
        if settings.radial_falloff > 0:
            arg = (f[beyond] - f[i_cut]) / settings.radial_falloff
            weight[beyond] = weight[i_cut] * np.exp(-0.5 * arg**2)
        else:
            weight[beyond] = 0.0
    return weight


def reconstruct(
    tilts: np.ndarray,
    angles_deg: Sequence[float],
    settings: WBPSettings = WBPSettings(),
    stop: threading.Event | None = None,
) -> Job[Reconstruction]:
    """Reconstruct an aligned tilt series (view, y, x) into a volume (thickness, y, x).

    A job: yields a :class:`Progress` record per chunk of y slices and returns a
    :class:`Reconstruction` (stopped early, the remaining slices zero, when ``stop`` is set).
    """
    import torch

    data = np.asarray(tilts)
    if data.ndim != 3:
        raise InputError(f"a tilt series must be a 3D stack (view, y, x), not {data.ndim}D")
    n_views, ny, nx = data.shape
    if min(data.shape) < 1:
        raise InputError("the tilt series is empty")
    angles = geometry.as_angles(angles_deg, n_views)
    thickness = nx if settings.thickness is None else int(settings.thickness)
    dev = torch.device(resolve_device(settings.device))

    margin = geometry.backprojection_margin(nx, thickness, nx, angles)
    n_padded = _padded_length(nx, margin)
    spectrum_weight = torch.from_numpy(radial_filter(n_padded, settings).astype(np.float32))
    view_weight = torch.from_numpy(geometry.angle_weights(angles).astype(np.float32))
    # Extended row = filtered row with `margin` pixels of its circular padding on each side.
    extend = torch.from_numpy(np.mod(np.arange(-margin, nx + margin), n_padded)).to(dev)
    filt = (spectrum_weight[None, :] * view_weight[:, None]).to(dev)[:, None, :]

    volume = np.zeros((thickness, ny, nx), dtype=np.float32)
    blocks = geometry.backprojection_blocks(nx, thickness, n_views)
    chunks = [(y0, min(ny, y0 + SLICES_PER_STEP)) for y0 in range(0, ny, SLICES_PER_STEP)]
    total = len(blocks) * len(chunks)
    done = 0
    yield Progress(0, total, "preparing")
    for z0, z1 in blocks:
        bp = geometry.to_torch_csr(
            geometry.backprojection_matrix(nx, (z0, z1), thickness, nx, margin, angles), dev
        )
        for y0, y1 in chunks:
            if stop_requested(stop):
                return Reconstruction(volume, stopped=True)
            # A copy: the rows of a read-only memory-mapped file cannot back a torch tensor.
            rows = torch.from_numpy(np.array(data[:, y0:y1, :], dtype=np.float32))
            if not bool(torch.isfinite(rows).all()):
                raise InputError(
                    f"the tilt series holds values that are not finite (NaN or infinity) in "
                    f"rows {y0}-{y1 - 1}"
                )
            filtered = _filter_rows(rows.to(dev), filt, n_padded)[..., extend]
            # (view, y, u) -> (view * u, y): one column per slice
            columns = filtered.permute(0, 2, 1).reshape(-1, y1 - y0)
            block = (bp @ columns).reshape(z1 - z0, nx, y1 - y0).permute(0, 2, 1)
            volume[z0:z1, y0:y1, :] = block.cpu().numpy()
            done += 1
            yield Progress(done, total, f"slices {y0}-{y1 - 1} of {ny}")
    return Reconstruction(volume, stopped=False)


#: Tilt-axis angles (degrees counterclockwise from the images' y axis) that :func:`axis_on_y` turns.
AXIS_ANGLES = (0, 90, -90, 180)


def axis_on_y(tilts: np.ndarray, axis_angle_deg: int) -> np.ndarray:
    """Turn a tilt series (view, y, x) so its tilt axis, at ``axis_angle_deg`` from y, lies on y.

    Exact for the quarter turns of :data:`AXIS_ANGLES` (a view, not a copy).
    """
    if axis_angle_deg not in AXIS_ANGLES:
        raise InputError(f"the tilt axis angle must be one of {AXIS_ANGLES}, not {axis_angle_deg}")
    return np.rot90(tilts, axis_angle_deg // 90, axes=(1, 2))


def reconstruct_volume(
    tilts: np.ndarray, angles_deg: Sequence[float], settings: WBPSettings = WBPSettings()
) -> np.ndarray:
    """:func:`reconstruct` run to the end: the volume alone."""
    from ..jobs import run_job

    return run_job(reconstruct(tilts, angles_deg, settings)).volume


def _padded_length(n: int, margin: int) -> int:
    """FFT length: a power of two, at least twice the row (no wrap-around of the ramp, as in
    skimage's iradon) and with room for the margins."""
    need = max(64, 2 * n, n + 2 * margin + 2)
    return 1 << (need - 1).bit_length()


def _filter_rows(rows, filt, n_padded: int):
    """Pad rows with a taper from their end back to their start, filter, return padded rows."""
    import torch

    n = rows.shape[-1]
    start = rows[..., :3].mean(dim=-1, keepdim=True)
    end = rows[..., -3:].mean(dim=-1, keepdim=True)
    t = torch.arange(1, n_padded - n + 1, device=rows.device, dtype=rows.dtype)
    t = t / (n_padded - n + 1)
    taper = end + (start - end) * t
    padded = torch.cat((rows, taper), dim=-1)
    spectrum = torch.fft.rfft(padded, dim=-1) * filt
    return torch.fft.irfft(spectrum, n=n_padded, dim=-1)
