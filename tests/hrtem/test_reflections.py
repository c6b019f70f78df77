"""Spectra and reflections: exact fringes, Friedel pairs, picks, noise and amorphous images."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_cryoli.errors import InputError
from napari_cryoli.hrtem.reflections import (
    Reflection,
    angle_between,
    find_reflections,
    merge_friedel,
    refine_at,
)
from napari_cryoli.hrtem.simulate import MicrographSpec, simulate_micrograph
from napari_cryoli.hrtem.spectrum import power_spectrum

PX = 0.41


def fringes(shape, waves, px=PX, seed=0, dose=None):
    """Sum of cosines with spacing d (Å) and azimuth (degrees, counterclockwise on screen)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0: shape[0], 0: shape[1]] * px
    image = np.ones(shape)
    for d, az in waves:
        gx, gy = math.cos(math.radians(az)) / d, -math.sin(math.radians(az)) / d
        image += 0.1 * np.cos(2 * np.pi * (gx * x + gy * y) + rng.uniform(0, 6.3))
    if dose:
        image = rng.poisson(image * dose * px * px)
    return image.astype(np.float32)


@pytest.mark.parametrize("seed", range(3))
def test_spacing_and_azimuth_of_noisy_fringes(seed):
    rng = np.random.default_rng(100 + seed)
    waves = [(rng.uniform(1.3, 3.5), rng.uniform(0, 180)), (rng.uniform(1.3, 3.5), 0.0)]
    waves[1] = (waves[1][0], (waves[0][1] + rng.uniform(30, 90)) % 180)
    image = fringes((384, 320), waves, seed=seed, dose=45)
    found = find_reflections(power_spectrum(image, PX)).reflections
    assert len(found) == 2
    for d, az in waves:
        r = min(found, key=lambda r: abs(r.d_A - d))
        assert r.d_A == pytest.approx(d, rel=0.002)
        assert min(abs(r.azimuth_deg - az), 180 - abs(r.azimuth_deg - az)) < 0.5
    expected = abs(waves[0][1] - waves[1][1]) % 180
    expected = min(expected, 180 - expected)
    assert angle_between(*found) == pytest.approx(expected, abs=0.5)


def test_region_and_its_errors():
    image = np.ones((200, 300), np.float32)
    image[:, 150:] = fringes((200, 150), [(2.0, 30.0)])
    left = find_reflections(power_spectrum(image, PX, (0, 0, 200, 150))).reflections
    right = find_reflections(power_spectrum(image, PX, (0, 150, 200, 300))).reflections
    assert not left and len(right) == 1 and right[0].d_A == pytest.approx(2.0, rel=0.003)
    with pytest.raises(InputError, match="at least 16 x 16"):
        power_spectrum(image, PX, (0, 0, 10, 400))
    with pytest.raises(InputError, match="2D image"):
        power_spectrum(np.zeros((3, 20, 20)), PX)
    with pytest.raises(InputError, match="pixel size"):
        power_spectrum(image, 0.0)
    bad = image.copy()
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        power_spectrum(bad, PX)


def test_full_spectrum_is_point_symmetric_and_centred():
    spectrum = power_spectrum(fringes((128, 128), [(2.2, 20.0)]), PX)
    full = spectrum.full()
    n = spectrum.n
    peak = np.unravel_index(np.argmax(full), full.shape)
    mirror = (n - peak[0], n - peak[1])
    assert full[mirror] == pytest.approx(full[peak], rel=1e-5)
    assert spectrum.log().shape == (n, n)


def test_pick_refines_to_the_peak_and_merges_friedel_pairs():
    spectrum = power_spectrum(fringes((256, 256), [(2.36, 50.0)], dose=45), PX)
    auto = find_reflections(spectrum).reflections[0]
    # a click two pixels off, on the Friedel mate (-g)
    step = spectrum.step
    pick = refine_at(spectrum, -auto.gy + 2 * step, -auto.gx - step)
    assert pick.gx >= 0
    assert math.hypot(pick.gy - auto.gy, pick.gx - auto.gx) < 0.1 * step
    merged = merge_friedel([auto, Reflection(-auto.gy, -auto.gx, auto.intensity, auto.snr)],
                           tol=step)
    assert len(merged) == 1 and merged[0].d_A == pytest.approx(auto.d_A)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_amorphous_and_vacuum_give_no_reflection(seed):
    m = simulate_micrograph(MicrographSpec(layout="amorphous", shape=(256, 256), seed=seed))
    assert find_reflections(power_spectrum(m.image, m.pixel_size_A)).reflections == ()
    vacuum = np.random.default_rng(seed).poisson(7.6, (256, 256)).astype(np.float32)
    assert find_reflections(power_spectrum(vacuum, PX)).reflections == ()
