"""The network pre-trained on simulated dendrite tomograms, shipped with the package.

``pretrained_model(ontology)`` is where training starts by default: a user's few strokes then
fine-tune a network that already knows what Li, LiH, Cu, SEI and background look like in a
reconstruction with a missing wedge, instead of learning it from scratch in a few hundred steps.
It was trained on phantoms only (see ``pretrain``): what it knows about real tomograms is only
what the simulator gets right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from ..classes import DEFAULT_ONTOLOGY, Ontology
from .model import SegmentationModel

if TYPE_CHECKING:
    from pathlib import Path

    from .training import TrainConfig

#: The shipped checkpoint, relative to this package.
WEIGHTS = "weights/phantom_pretrained.pt"


def pretrained_path() -> Path | None:
    """Where the shipped checkpoint is, or None when this installation lacks it."""
    from pathlib import Path

    path = Path(str(resources.files(__package__).joinpath(WEIGHTS)))
    return path if path.is_file() else None


def pretrained_model(
    ontology: Ontology = DEFAULT_ONTOLOGY, *, device: str = "auto"
) -> SegmentationModel | None:
    """The pre-trained model with one output per class of ``ontology``, ready to fine-tune.

    Classes the network was trained for (same id and name) keep their outputs; other classes
    (a user's "carbon support", ids 6+) get fresh outputs that fine-tuning learns. None when the
    weights are not installed or fewer than two classes of ``ontology`` are known to them.
    """
    path = pretrained_path()
    if path is None:
        return None
    return with_classes(SegmentationModel.load(path, device=device), ontology)


def starting_model(
    ontology: Ontology, config: TrainConfig
) -> tuple[SegmentationModel | None, str]:
    """The pre-trained model to fine-tune for ``ontology`` with ``config``'s network shape, and
    a sentence saying what training starts from (None: random weights)."""
    model = pretrained_model(ontology, device=config.device)
    if model is None:
        return None, "starting from random weights: no pre-trained model for these classes"
    arch = model.architecture
    mine = (arch.base_channels, arch.depth, tuple(arch.smoothing_sigmas))
    if mine != (config.base_channels, config.depth, tuple(config.smoothing_sigmas)):
        return None, (
            f"starting from random weights: the pre-trained model has {arch.base_channels} "
            f"channels and {arch.depth} levels, not {config.base_channels} and {config.depth}"
        )
    return model, "fine-tuning the model pre-trained on simulated tomograms"


@dataclass(frozen=True)
class Start:
    """Where training starts: the model to fine-tune (None: random weights) and what to say."""

    model: SegmentationModel | None
    notes: tuple[str, ...]  # which start, then what does not fit it (e.g. its voxel size)
    pretrained: bool  # whether it is the pre-trained model


def choose_start(
    given: SegmentationModel | None,
    pretrained: bool,
    ontology: Ontology,
    config: TrainConfig,
    voxel_size_nm: Sequence[float],
) -> Start:
    """The one rule for where training starts, for the command line and the Train widget:
    ``given`` (a model the user chose to fine-tune), else the pre-trained model when
    ``pretrained`` and it fits ``config`` (:func:`starting_model`), else random weights."""
    notes: list[str] = []
    model = given
    if model is None and pretrained:
        model, note = starting_model(ontology, config)
        notes.append(note)
    if model is not None:
        notes += model.compatibility_warnings(None, voxel_size_nm)
    return Start(model, tuple(notes), given is None and model is not None)


def with_classes(model: SegmentationModel, ontology: Ontology) -> SegmentationModel | None:
    """``model`` with its output head rearranged for ``ontology`` (shared classes by id and name).

    Fresh outputs start with small random weights and a bias below every known class's, so they
    claim no voxel before fine-tuning teaches them; None when fewer than two classes are shared.
    """
    import copy

    import torch

    from .network import UNet3d

    known = {(c.id, c.name.lower()): i for i, c in enumerate(model.ontology)}
    rows = [known.get((c.id, c.name.lower())) for c in ontology]
    if sum(r is not None for r in rows) < 2:
        return None
    if ontology.to_dict() == model.ontology.to_dict():
        return model
    arch = model.architecture
    net = UNet3d(type(arch)(len(ontology), arch.base_channels, arch.depth, arch.smoothing_sigmas))
    state = {k: v for k, v in model.network.state_dict().items() if not k.startswith("head.")}
    net.load_state_dict(state, strict=False)
    old_w, old_b = model.network.head.weight.detach(), model.network.head.bias.detach()
    with torch.no_grad():
        fresh_w = net.head.weight * 0.1
        for i, r in enumerate(rows):
            if r is None:
                net.head.weight[i] = fresh_w[i]
                net.head.bias[i] = old_b.min() - 1.0
            else:
                net.head.weight[i] = old_w[r]
                net.head.bias[i] = old_b[r]
    added = [c.name for c, r in zip(ontology, rows) if r is None]
    dropped = sorted(set(model.ontology.names) - {c.name for c, r in zip(ontology, rows) if r is not None})
    summary = copy.deepcopy(model.summary)
    summary.update({"classes_added": added, "classes_dropped": dropped})
    return SegmentationModel(net.to(model.device).eval(), ontology=ontology,
                             normalisation=model.normalisation, voxel_size_nm=model.voxel_size_nm,
                             patch_size=model.patch_size, summary=summary)

