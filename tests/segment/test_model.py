"""Checkpoints: round trip, refusal of pickles and strangers, compatibility warnings, devices."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from napari_cryoli.classes import DEFAULT_ONTOLOGY
from napari_cryoli.errors import CheckpointError, InputError
from napari_cryoli.segment import Normalisation, SegmentationModel, resolve_device
from napari_cryoli.segment.model import FORMAT, FORMAT_VERSION


def small_model(**kw) -> SegmentationModel:
    torch.manual_seed(0)
    return SegmentationModel.create(base_channels=4, depth=2, patch_size=16,
                                    normalisation=Normalisation(1.5, 2.0), device="cpu", **kw)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoint_round_trip(tmp_path):
    model = small_model(voxel_size_nm=(1.2, 1.0, 1.0), ontology=DEFAULT_ONTOLOGY.with_class("ice"))
    model.summary = {"steps": 7}
    with torch.no_grad():
        for m in model.network.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_()
    path = tmp_path / "sub" / "model.pt"
    model.save(path)
    loaded = SegmentationModel.load(path, device="cpu")
    assert loaded.metadata() == model.metadata()
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(model.network(x), loaded.network(x))
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left


def test_pickled_objects_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": 1, "metadata_json": "{}",
                "state_dict": {}, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="pickled"):
        SegmentationModel.load(path)
    assert "must never run" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a model at all", "not a napari-cryoli model"),
        (pickle.dumps([1, 2, 3]), "not a napari-cryoli model"),
    ],
)
def test_strangers_are_refused(tmp_path, content, message):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        SegmentationModel.load(path)


def test_newer_format_and_missing_file_are_refused(tmp_path):
    path = tmp_path / "new.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION + 1, "metadata_json": "{}",
                "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="newer"):
        SegmentationModel.load(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        SegmentationModel.load(tmp_path / "absent.pt")


def test_damaged_checkpoint_is_refused(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["state_dict"].pop("head.bias")
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="damaged"):
        SegmentationModel.load(tmp_path / "m.pt")


def test_compatibility_warnings():
    model = small_model(voxel_size_nm=(1.0, 1.0, 1.0))
    assert model.compatibility_warnings(DEFAULT_ONTOLOGY, (1.05, 1.0, 1.0)) == []
    (w,) = model.compatibility_warnings(DEFAULT_ONTOLOGY.with_class("ice"), None)
    assert "trained for classes" in w
    (w,) = model.compatibility_warnings(None, 2.0)
    assert "voxel size" in w


def test_normalisation_is_robust_and_per_image():
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 2.0, (20, 20, 20)).astype(np.float32)
    a[0, 0, :5] = 1e6  # a few hot pixels do not move the statistics
    n = Normalisation.of(a)
    assert abs(n.center - 5.0) < 0.1 and abs(n.scale - 2 * 1.645 * 2.0) < 0.3
    b = a * 3 + 100  # another reconstruction's grey levels
    np.testing.assert_allclose(n.for_image(b).apply(b[1:]), n.apply(a[1:]), atol=1e-3)


def test_auto_device_uses_cuda_when_present():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("auto", cuda_available=True) == "cuda"
    assert resolve_device("auto", cuda_available=False) == "cpu"
    with pytest.raises(InputError, match="CUDA"):
        resolve_device("cuda", cuda_available=False)
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu")
