"""ABSF against the noise-free truth of synthetic micrographs."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.errors import InputError
from napari_cryoli.hrtem.absf import absf, gaussian, snr_against, wiener
from napari_cryoli.hrtem.reflections import find_reflections
from napari_cryoli.hrtem.simulate import Grain, MicrographSpec, simulate_micrograph
from napari_cryoli.hrtem.spectrum import power_spectrum


def test_absf_raises_snr_and_keeps_the_lattice():
    spec = MicrographSpec(grains=(Grain("LiH", (0, 1, 1), 30.0),), shape=(256, 256), seed=21)
    m = simulate_micrograph(spec)
    result = absf(m.image)
    raw = snr_against(m.noise_free, m.image)
    filtered = snr_against(m.noise_free, result.filtered)
    assert filtered > 3 * raw
    assert filtered > snr_against(m.noise_free, wiener(m.image))
    assert snr_against(m.noise_free, gaussian(m.image)) > raw
    assert result.filtered.mean() == pytest.approx(m.image.mean(), rel=1e-4)
    np.testing.assert_allclose(result.difference, m.image - result.filtered, atol=1e-3)
    before = find_reflections(power_spectrum(m.image, m.pixel_size_A)).reflections
    after = find_reflections(power_spectrum(result.filtered, m.pixel_size_A)).reflections
    assert len(after) >= len(before)
    strongest = max(before, key=lambda r: r.snr)
    twin = min(after, key=lambda r: abs(r.gy - strongest.gy) + abs(r.gx - strongest.gx))
    assert twin.d_A == pytest.approx(strongest.d_A, rel=1e-3) and twin.snr > strongest.snr


def test_absf_refuses_bad_settings():
    with pytest.raises(InputError, match="kernel"):
        absf(np.zeros((32, 32), np.float32), kernel=1)
