"""Small simulated tomograms (fresh, 24 h, 7 d) and the shipped model for the dataset tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_cryoli.jobs import run_job
from napari_cryoli.tomo.phantom import PhantomSpec, simulate, write_phantom

#: A phantom small enough to predict in a second or two (4 nm voxels, thin dendrites).
TINY = {"shape": (32, 64, 64), "voxel_size_nm": 4.0, "diameter_nm": (40.0, 60.0),
        "tilt_step_deg": 3.0}


def write_series(root: Path, agings, seeds, **spec) -> dict[str, list[Path]]:
    """Simulate ``agings`` x ``seeds`` phantoms into ``root/<aging>_<seed>/``."""
    out: dict[str, list[Path]] = {}
    for aging in agings:
        for seed in seeds:
            phantom = run_job(simulate(PhantomSpec(aging=aging, seed=seed, **spec)))
            paths = write_phantom(phantom, root / f"{aging}_{seed}")
            out.setdefault(aging, []).append(paths["tomogram"])
    return out


@pytest.fixture(scope="session")
def tiny_series(tmp_path_factory) -> list[Path]:
    """Three tiny tomograms: fresh, 24 h and 7 d (seed 0)."""
    root = tmp_path_factory.mktemp("series")
    found = write_series(root, ("fresh", "24h", "7d"), (0,), **TINY)
    return [found[a][0] for a in ("fresh", "24h", "7d")]


@pytest.fixture(scope="session")
def model_path() -> Path:
    from napari_cryoli.segment.pretrained import pretrained_path

    path = pretrained_path()
    if path is None:
        pytest.skip("the shipped model is not installed")
    return path


@pytest.fixture(scope="session")
def client():
    """A real local dask.distributed cluster of two single-threaded worker processes."""
    from napari_cryoli.dataset.batch import open_client

    with open_client(workers=2) as c:
        yield c
