"""Voxel noise of a tomogram on the calibrated scale, and noise added to match a model's.

A network fine-tuned on one tomogram has seen that tomogram's noise only, and the calibration's
fit of the metal cores moves with the noise. On development phantoms (docs/segmentation.md,
"Noise matching") the transfer model lost Li on tomograms whose voxel noise was two thirds of its
training tomogram's (mean Dice 0.72-0.81, Li Dice 0.57-0.74); white noise up to the training
level, the noisier copy calibrated again, brought them to 0.91-0.93. The
model records the least voxel noise it was trained on (``Calibration.voxel_noise``, per voxel of
its working size); a tomogram clearly cleaner than that is given the difference as white noise on
its own grid, is calibrated again, and the network reads that. The noise is drawn per z-section
from a fixed seed, so a prediction repeats exactly and overlapping tiles see the same values.
"""

from __future__ import annotations

import numpy as np

from .resample import SectionsOnDemand

#: Noise is added only to a tomogram whose voxel noise is below this share of the model's:
#: tomograms within it segmented alike with and without (development seeds).
MATCH_BELOW = 0.8
#: Evenly spaced z-sections the voxel noise is read from.
NOISE_SECTIONS = 8
#: Seed of the added noise (with the section index).
NOISE_SEED = 20261206


def voxel_noise(volume, li_unit: float, sections: int = NOISE_SECTIONS) -> float:
    """Voxel-scale noise of ``volume`` (z, y, x, array-like) in Li units.

    The robust spread (median absolute deviation) of differences between x-neighbours in
    ``sections`` evenly spaced z-sections, divided by √2 and by ``li_unit`` (the grey-level
    difference from vacuum to Li): flat regions, most of a tomogram, show only noise there, and
    the few edges do not move a median.
    """
    nz = volume.shape[0]
    zs = np.unique(np.linspace(0, nz - 1, min(sections, nz)).round().astype(int))
    diffs = np.concatenate([np.diff(np.asarray(volume[z : z + 1], np.float32), axis=2).ravel()
                            for z in zs])
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    return 1.4826 * mad / np.sqrt(2.0) / abs(li_unit)


def per_working_voxel(noise: float, voxel_size_nm, working_nm) -> float:
    """``noise`` per voxel of ``voxel_size_nm`` as white noise of the same density reads per
    voxel of ``working_nm``: binning to bigger voxels averages it down by the square root of the
    volume ratio. Read on the tomogram's own grid and converted, it is not fooled by the
    correlation that interpolation to finer working voxels puts between neighbours."""
    if working_nm is None or voxel_size_nm is None:
        return noise
    v = np.prod(np.broadcast_to(np.asarray(voxel_size_nm, float), (3,)))
    w = np.prod(np.broadcast_to(np.asarray(working_nm, float), (3,)))
    return float(noise * np.sqrt(v / w))


def noise_to_add(model_noise: float | None, noise: float) -> float:
    """White noise (Li units) that brings ``noise`` to ``model_noise``; 0 unless it is clearly
    below (``MATCH_BELOW``) or the model recorded none."""
    if not model_noise or noise >= MATCH_BELOW * model_noise:
        return 0.0
    return float(np.sqrt(model_noise**2 - noise**2))


class NoiseAdded(SectionsOnDemand):
    """``volume`` with white noise of ``sigma`` grey levels added, each section's drawn from
    ``seed`` and its index. Pages of a memory-mapped volume are released once read."""

    def __init__(self, volume, sigma: float, seed: int = NOISE_SEED) -> None:
        self.volume, self.sigma, self.seed = volume, float(sigma), seed
        self.shape = tuple(volume.shape)

    def sections(self, z0: int, z1: int) -> np.ndarray:
        from .prediction import release_pages

        out = np.array(self.volume[z0:z1], np.float32)
        release_pages(self.volume, z0, z1)
        for i, z in enumerate(range(z0, z1)):
            rng = np.random.default_rng((self.seed, z))
            out[i] += rng.normal(0.0, self.sigma, out.shape[1:]).astype(np.float32)
        return out
