"""Layer thickness from a line profile across a synthetic amorphous layer of known thickness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_cryoli.errors import InputError
from napari_cryoli.hrtem.profile import layer_thickness, line_profile
from napari_cryoli.hrtem.simulate import Grain, MicrographSpec, simulate_micrograph


@pytest.mark.parametrize(("thickness", "angle", "seed"), [(10.0, 0.0, 1), (6.0, 35.0, 2)])
def test_thickness_across_an_amorphous_layer(thickness, angle, seed):
    spec = MicrographSpec(layout="layer", grains=(Grain("LiH", (0, 1, 1), 40.0),),
                          shape=(640, 640), layer_nm=thickness, boundary_deg=angle, seed=seed)
    m = simulate_micrograph(spec)
    c = np.array([319.5, 319.5])
    # the layer grows along the boundary's normal, (-cos, -sin) in (y, x) per simulate
    normal = np.array([-math.cos(math.radians(angle)), -math.sin(math.radians(angle))])
    start, end = c - 180 * normal, c + 450 * normal
    start = np.clip(start, 0, 639)
    end = np.clip(end, 0, 639)
    profile = line_profile(m.image, m.pixel_size_A, start, end, width_nm=5.0)
    result = layer_thickness(profile)
    assert result.thickness_nm == pytest.approx(thickness, abs=0.4)
    assert "derivative" in result.rule


def test_profile_errors():
    image = np.ones((50, 50), np.float32)
    with pytest.raises(InputError, match="shorter than 3"):
        line_profile(image, 0.41, (10, 10), (10, 11))
    with pytest.raises(InputError, match="too short"):
        layer_thickness(line_profile(image, 0.41, (10, 5), (10, 45), width_nm=0.5))
    flat = line_profile(np.ones((50, 300), np.float32), 0.41, (25, 5), (25, 290), width_nm=0.5)
    with pytest.raises(InputError, match="edge"):
        layer_thickness(flat)
