"""The shipped pre-trained model, its class rearrangement, and the pre-training run itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cryoli.classes import DEFAULT_ONTOLOGY
from napari_cryoli.errors import InputError
from napari_cryoli.jobs import run_job
from napari_cryoli.segment import Normalisation, SegmentationModel, TrainConfig, starting_model
from napari_cryoli.segment.pretrain import (
    BENCHMARK_SEEDS,
    SEED_BASE,
    PretrainConfig,
    pretrain,
    select_checkpoint,
    step_checkpoint,
    varied_spec,
)
from napari_cryoli.segment.pretrained import pretrained_path, with_classes


def _model(ontology=DEFAULT_ONTOLOGY) -> SegmentationModel:
    torch.manual_seed(0)
    return SegmentationModel.create(ontology=ontology, base_channels=4, depth=2, patch_size=16,
                                    normalisation=Normalisation(0.0, 1.0), device="cpu")


def test_the_pretrained_model_ships_and_is_where_training_starts():
    assert pretrained_path() is not None, "segment/weights/phantom_pretrained.pt is missing"
    model, note = starting_model(DEFAULT_ONTOLOGY, TrainConfig(device="cpu"))
    assert model is not None, note
    assert model.ontology.to_dict() == DEFAULT_ONTOLOGY.to_dict()
    assert "pretrained_on" in model.summary and model.summary["steps"] > 0
    assert model.voxel_size_nm == (2.0, 2.0, 2.0)  # works at 2 nm; other voxels are resampled
    assert model.compatibility_warnings(None, 2.0) == []
    assert "resampled to the model's voxels" in model.compatibility_warnings(None, 9.0)[0]


def test_another_network_shape_starts_from_random_weights():
    model, note = starting_model(DEFAULT_ONTOLOGY, TrainConfig(base_channels=4, depth=2))
    assert model is None and "random weights" in note


def test_a_users_class_gets_a_fresh_output_that_claims_nothing():
    base = _model()
    ontology = DEFAULT_ONTOLOGY.with_class("carbon support")
    model = with_classes(base, ontology)
    assert model is not None and model.ontology.to_dict() == ontology.to_dict()
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        old, new = base.network(x), model.network(x)
    torch.testing.assert_close(new[:, : len(DEFAULT_ONTOLOGY)], old)  # known classes unchanged
    assert (new.argmax(1) < len(DEFAULT_ONTOLOGY)).all()
    assert model.summary["classes_added"] == ["carbon support"]


def test_too_few_shared_classes_means_no_pretrained_model():
    items = DEFAULT_ONTOLOGY.to_dict()
    renamed = [{**c, "name": f"other {c['id']}"} for c in items[1:]]
    ontology = type(DEFAULT_ONTOLOGY).from_dict(items[:1] + renamed)
    assert with_classes(_model(), ontology) is None


def test_phantom_draws_are_varied_and_never_the_benchmarks():
    specs = [varied_spec(s, (1.5, 3.0)) for s in range(SEED_BASE, SEED_BASE + 40)]
    sizes = [s.voxel_size_nm for s in specs]
    assert 1.5 <= min(sizes) and max(sizes) <= 3.0 and max(sizes) - min(sizes) > 1.0
    assert len({s.axis_angle_deg for s in specs}) > 30 and any(s.inverted for s in specs)
    for seed in BENCHMARK_SEEDS:
        with pytest.raises(InputError):
            varied_spec(seed, (1.5, 3.0))


def test_a_negative_warm_up_is_refused():
    with pytest.raises(InputError, match="warm-up"):
        PretrainConfig(hours=1.0, warmup=-1)


def test_pretraining_runs_and_checkpoints(tmp_path):
    out = tmp_path / "pre.pt"
    config = PretrainConfig(hours=None, max_steps=2, pool_size=1, n_validation=1, eval_every=2,
                            base_channels=4, depth=2, patch_size=24, batch_size=1, device="cpu",
                            max_voxels=400_000)
    model = run_job(pretrain(config, checkpoint_path=out))
    assert model.summary["steps"] == 2 and model.summary["validation"]
    assert model.voxel_size_nm == (2.0, 2.0, 2.0)
    assert model.normalisation.to_dict()["kind"] == "calibration"
    saved = SegmentationModel.load(out, device="cpu")
    assert saved.summary["steps"] == 2
    assert np.isfinite([p.detach().numpy().sum() for p in saved.network.parameters()]).all()

    more = PretrainConfig(hours=None, max_steps=1, pool_size=1, n_validation=1, eval_every=1,
                          seed=1, device="cpu", init=out, max_voxels=400_000, workers=1)
    continued = run_job(pretrain(more))
    assert continued.summary["steps"] == 1 and continued.summary["total_steps"] == 3
    assert continued.summary["earlier"]["steps"] == 2
    assert continued.network.arch == saved.network.arch


def test_selection_picks_the_checkpoint_that_segments_the_phantoms(tmp_path):
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate

    phantom = run_job(simulate(PhantomSpec(shape=(88, 24, 128), aging="7d", seed=5)))
    model = _model()
    paths = [step_checkpoint(tmp_path / "run.pt", step) for step in (500, 1000)]
    assert paths[0].name == "run-step000500.pt"
    with torch.no_grad():
        model.network.head.bias[DEFAULT_ONTOLOGY.ids.index(2)] += 5.0  # Li everywhere
    model.save(paths[0])
    with torch.no_grad():
        model.network.head.bias[DEFAULT_ONTOLOGY.ids.index(2)] -= 5.0
        model.network.head.bias[0] += 5.0  # background everywhere: no Li, LiH or SEI at all
    model.save(paths[1])
    best, scores = select_checkpoint(paths, [phantom])
    assert best == paths[0] and scores[str(paths[0])] > scores[str(paths[1])] == 0.0


def test_pretrain_command_reports_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    from napari_cryoli.segment.pretrain import main

    missing = tmp_path / "nope.pt"
    assert main(["--select", str(missing), "--out", str(tmp_path / "o.pt")]) == 2
    assert main(["--init", str(missing), "--max-steps", "1", "--out", str(tmp_path / "o.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"pretrain: model file {missing} does not exist"] * 2


def test_one_rule_chooses_where_training_starts():
    from napari_cryoli.segment.pretrained import choose_start

    config = TrainConfig(device="cpu")
    mine = _model()
    given = choose_start(mine, True, DEFAULT_ONTOLOGY, config, (2.0, 2.0, 2.0))
    assert given.model is mine and not given.pretrained
    assert given.notes == tuple(mine.compatibility_warnings(None, (2.0, 2.0, 2.0)))
    scratch = choose_start(None, False, DEFAULT_ONTOLOGY, config, (2.0, 2.0, 2.0))
    assert scratch.model is None and scratch.notes == () and not scratch.pretrained
    hi = starting_model(DEFAULT_ONTOLOGY, config)[0].summary["voxel_size_range_nm"][1]
    far = choose_start(None, True, DEFAULT_ONTOLOGY, config, (3 * hi,) * 3)
    assert far.pretrained and far.notes[0].startswith("fine-tuning the model pre-trained")
    assert "resampled to the model's voxels" in far.notes[1]
    other = choose_start(None, True, DEFAULT_ONTOLOGY, TrainConfig(device="cpu", depth=2), (2.0,) * 3)
    assert other.model is None and other.notes[0].startswith("starting from random weights")



def test_a_model_without_a_working_voxel_asks_for_data_in_its_range():
    ranged = _model()
    ranged.voxel_size_nm = None
    ranged.summary = {"voxel_size_range_nm": [1.5, 2.5]}
    assert ranged.compatibility_warnings(None, (2.0,) * 3) == []
    (note,) = ranged.compatibility_warnings(None, (8.0,) * 3)
    assert note.startswith("The model was pre-trained at voxel sizes of 1.5 to 2.5 nm")