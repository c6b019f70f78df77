"""Local phase map on two grains side by side and on an amorphous layer."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_cryoli.errors import InputError
from napari_cryoli.hrtem.phasemap import PhaseMapSettings, map_ontology, phase_map, window_size_px
from napari_cryoli.hrtem.phases import AMORPHOUS, default_table
from napari_cryoli.hrtem.simulate import Grain, MicrographSpec, simulate_micrograph
from napari_cryoli.jobs import run_job


def test_two_grains_and_their_boundary():
    table = default_table()
    spec = MicrographSpec(layout="two", grains=(Grain("Li", (0, 0, 1), 15.0),
                                                Grain("LiH", (0, 1, 1), 60.0)),
                          shape=(384, 384), boundary_deg=90.0, seed=3)
    m = simulate_micrograph(spec)
    result = run_job(phase_map(m.image, m.pixel_size_A, table))
    assert result.labels.shape == m.image.shape and result.labels.dtype == np.uint8
    li, lih = table.by_name("Li").label, table.by_name("LiH").label
    # away from the boundary (one window either side), every pixel right
    half = result.window_px
    cols = np.arange(384)
    far = np.abs(cols - 191.5) > half
    assert np.mean(result.labels[:, far] == m.labels[:, far]) > 0.95
    assert {li, lih} <= set(result.counts)


def test_amorphous_windows_and_stop():
    m = simulate_micrograph(MicrographSpec(layout="amorphous", shape=(256, 256), seed=8))
    result = run_job(phase_map(m.image, m.pixel_size_A))
    assert set(result.counts) == {AMORPHOUS}
    stop = threading.Event()
    stop.set()
    assert run_job(phase_map(m.image, m.pixel_size_A, stop=stop)).stopped


def test_window_size_and_errors():
    assert window_size_px(5.0, 0.41) % 2 == 0 and window_size_px(5.0, 0.41) >= 122
    with pytest.raises(InputError, match="choose a smaller window"):
        run_job(phase_map(np.zeros((64, 64), np.float32), 0.41, settings=PhaseMapSettings(10)))
    names = map_ontology(default_table()).names
    assert names[:4] == ("amorphous", "Li", "LiH", "Cu") and names[-1] == "unknown lattice"
