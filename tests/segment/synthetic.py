"""Small phantom-like volumes with known truth, for the segmentation tests.

A rod of Li with a LiH core, wrapped in an SEI shell, a small Cu sphere beside it, in a noisy
background: the same classes and contrast order as a dendrite tomogram, small enough to train on
in seconds.
"""

from __future__ import annotations

import numpy as np

from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI

INTENSITY = {BACKGROUND: 0.0, LI: 1.0, LIH: 1.8, CU: 3.0, SEI: -0.8}


def rod_volume(shape=(32, 48, 48), noise=0.3, seed=0, shift=(0.0, 0.0)):
    """(image float32, truth uint8 with ids 1..5) of a rod along x with a LiH core."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape, dtype=np.float32)
    cz, cy = shape[0] / 2 + shift[0], shape[1] / 2 + shift[1]
    r = np.hypot(z - cz, y - cy)
    truth = np.full(shape, BACKGROUND, np.uint8)
    truth[r < 10] = SEI
    truth[r < 7] = LI
    truth[(r < 4) & (x > shape[2] * 0.3)] = LIH
    cu = (z - 6) ** 2 + (y - 6) ** 2 + (x - shape[2] / 2) ** 2 < 3.5**2
    truth[cu] = CU
    image = np.vectorize(INTENSITY.get, otypes=[np.float32])(truth)
    image += rng.normal(0, noise, shape).astype(np.float32)
    return image.astype(np.float32), truth


def sparse_strokes(truth: np.ndarray, sections=(10, 22), every=3) -> np.ndarray:
    """Labels painted on a few z-sections and one y-section: every ``every``-th voxel there."""
    labels = np.zeros_like(truth)
    for z in sections:
        labels[z, ::every, ::every] = truth[z, ::every, ::every]
    y = truth.shape[1] // 2
    labels[::every, y, ::every] = truth[::every, y, ::every]
    cu = truth == 4
    labels[cu] = 4  # a few dozen Cu voxels, as a user paints the particle
    return labels
