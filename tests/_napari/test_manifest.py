"""The npe2 manifest loads, validates and points at importable contributions."""

from __future__ import annotations

import subprocess
import sys

import npe2

PLUGIN = "napari-cryoli"


def test_manifest_is_found_and_valid():
    manifest = npe2.PluginManifest.from_distribution(PLUGIN)
    assert manifest.name == PLUGIN
    manifest.validate_imports()
    contributions = manifest.contributions
    patterns = set(contributions.readers[0].filename_patterns)
    assert {"*.mrc", "*.rec", "*.map", "*.st", "*.ali", "*.mrcs", "*.mrc.gz"} <= patterns
    assert {w.layer_types[0] for w in contributions.writers} == {"labels", "image"}
    assert [s.key for s in contributions.sample_data] == ["dendrite"]
    assert "Annotate" in {w.display_name for w in contributions.widgets}


def test_classifier_and_entry_point():
    from importlib.metadata import distribution

    dist = distribution(PLUGIN)
    assert "Framework :: napari" in dist.metadata.get_all("Classifier")
    eps = [ep for ep in dist.entry_points if ep.group == "napari.manifest"]
    assert eps and eps[0].value == "napari_cryoli:napari.yaml"


def test_reader_does_not_import_torch_or_qt(tmp_path):
    """Opening a file through the reader hook stays light: no torch, no Qt widgets."""
    code = f"""
import sys, numpy as np
from napari_cryoli.io.mrc import write_mrc
write_mrc({str(tmp_path / 'v.mrc')!r}, np.zeros((4, 5, 6), np.float32), voxel_size_nm=(1, 1, 1))
from napari_cryoli._napari.reader import get_reader
reader = get_reader({str(tmp_path / 'v.mrc')!r})
layer_data = reader({str(tmp_path / 'v.mrc')!r})
assert layer_data[0][0].shape == (4, 5, 6)
heavy = [m for m in ("torch", "qtpy", "PyQt6", "PyQt5", "PySide6") if m in sys.modules]
print(",".join(heavy))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
