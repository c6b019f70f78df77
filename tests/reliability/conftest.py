"""Good files every reliability test starts from (written once per session, never modified)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from napari_cryoli.io import write_angles, write_mrc

from .damaged import VOXEL_NM, grey_values, rod_labels

N_TILTS = 9


@dataclass(frozen=True)
class GoodFiles:
    """A label volume, its tomogram, a tilt series with its angles, and a small model."""

    labels: Path
    tomogram: Path
    tilt_series: Path
    angles: Path
    model: Path
    label_values: np.ndarray
    image_values: np.ndarray  # integer grey levels 0-120 as float32: exact in every MRC mode
    tilt_values: np.ndarray


@pytest.fixture(scope="session")
def good(tmp_path_factory) -> GoodFiles:
    folder = tmp_path_factory.mktemp("good")
    labels = rod_labels()
    image = np.round(60 + 20 * grey_values(labels)).clip(0, 120).astype(np.float32)
    rng = np.random.default_rng(5)
    tilts = rng.integers(0, 120, (N_TILTS, 16, 20)).astype(np.float32)
    paths = {
        "labels": folder / "labels.mrc",
        "tomogram": folder / "tomogram.mrc",
        "tilt_series": folder / "series.st",
        "angles": folder / "series.tlt",
        "model": folder / "model.pt",
    }
    write_mrc(paths["labels"], labels, voxel_size_nm=VOXEL_NM)
    write_mrc(paths["tomogram"], image, voxel_size_nm=VOXEL_NM)
    write_mrc(paths["tilt_series"], tilts, voxel_size_nm=VOXEL_NM, kind="stack")
    write_angles(paths["angles"], np.linspace(-60, 60, N_TILTS))
    tiny_model(voxel_size_nm=VOXEL_NM).save(paths["model"])
    return GoodFiles(**paths, label_values=labels, image_values=image, tilt_values=tilts)


def tiny_model(**kwargs):
    """An untrained 2-level U-Net with 4 channels: seconds to run on a small volume."""
    import torch

    from napari_cryoli.segment import Normalisation, SegmentationModel

    torch.manual_seed(0)
    return SegmentationModel.create(
        base_channels=4,
        depth=2,
        patch_size=16,
        normalisation=Normalisation(60.0, 20.0),
        device="cpu",
        **kwargs,
    )
