"""The Train panel's session without a viewer: history, notes, status text, plot throttling."""

from __future__ import annotations

import numpy as np
import torch

from napari_cryoli.jobs import Progress
from napari_cryoli.segment import Normalisation, SegmentationModel
from napari_cryoli.segment.session import TrainingSession, history_figure
from napari_cryoli.segment.training import TrainProgress, TrainResult


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def step(n: int, loss: float, dice: dict | None = None, preview=None) -> TrainProgress:
    return TrainProgress(n, 10, step=n, loss=loss, val_dice=dice or {}, elapsed_s=2.0 * n,
                         preview=preview)


def test_notes_on_the_start_come_first_and_a_wrong_start_warns():
    session = TrainingSession(clock=Clock())
    update = session.update(Progress(0, 1000, "x", {"start": "fine-tuning the pre-trained model"}))
    assert update.status == "Fine-tuning the pre-trained model." and update.warning is None
    check = {"note": "the starting model labels the strokes poorly", "wrong": True}
    update = session.update(Progress(0, 1, "", {"start_check": check}))
    assert update.status == ("Fine-tuning the pre-trained model.\n"
                             "The starting model labels the strokes poorly.")
    assert update.warning == "The starting model labels the strokes poorly."
    assert not update.redraw and session.steps == []
    update = session.update(step(1, 0.5))
    assert update.status.splitlines() == [*session.start_note.splitlines(),
                                          "step 1  loss 0.500  2 s"]


def test_history_and_redraws_at_most_once_a_second_and_at_validation():
    clock = Clock()
    session = TrainingSession(clock=clock, plot_interval_s=1.0)
    preview = np.zeros((4, 4), np.uint8)
    first = session.update(step(1, 0.9, preview=preview))
    assert first.redraw and first.preview is preview  # the first step draws at once
    clock.now += 0.5
    assert not session.update(step(2, 0.8)).redraw
    clock.now += 0.2
    validated = session.update(step(3, 0.7, {"Li": 0.6, "LiH": 0.4}))
    assert validated.redraw and "validation Dice: Li 0.60, LiH 0.40" in validated.status
    clock.now += 0.9
    assert not session.update(step(4, 0.6)).redraw
    clock.now += 0.2
    assert session.update(step(5, 0.5)).redraw
    assert session.steps == [1, 2, 3, 4, 5] and session.losses == [0.9, 0.8, 0.7, 0.6, 0.5]
    assert session.val == [(3, {"Li": 0.6, "LiH": 0.4})]
    session.reset()
    assert session.steps == session.losses == session.val == [] and session.start_note == ""


def test_draw_puts_loss_and_dice_per_class_on_the_figure():
    session = TrainingSession(clock=Clock())
    for n in range(1, 5):
        session.update(step(n, 1.0 / n, {"Li": 0.1 * n, "Cu": 0.2} if n % 2 == 0 else None))
    figure = history_figure()
    session.draw(figure, color=lambda name: (1.0, 0.0, 0.0, 1.0) if name == "Li" else None)
    ax_loss, ax_dice = figure.axes
    np.testing.assert_allclose(ax_loss.lines[0].get_ydata(), [1.0, 0.5, 1 / 3, 0.25])
    lines = {line.get_label(): line for line in ax_dice.lines}
    assert sorted(lines) == ["Cu", "Li"]
    np.testing.assert_allclose(lines["Li"].get_xdata(), [2, 4])
    np.testing.assert_allclose(lines["Li"].get_ydata(), [0.2, 0.4])
    assert lines["Li"].get_color() == (1.0, 0.0, 0.0, 1.0)
    assert ax_dice.get_ylim() == (0.0, 1.0)


def test_finished_text():
    torch.manual_seed(0)
    model = SegmentationModel.create(base_channels=4, depth=2, patch_size=16,
                                     normalisation=Normalisation(1.5, 2.0), device="cpu")
    session = TrainingSession(clock=Clock())
    session.update(Progress(0, 1, "", {"start": "random weights"}))
    result = TrainResult(model, stopped=True, history={}, best_val_dice={"Li": 0.81},
                         summary={"steps": 12})
    text = session.finished_text(result, "trained 10:00").splitlines()
    assert text[:3] == ["Random weights.",
                        "Stopped after 12 steps: 'trained 10:00' is ready for Predict.",
                        "best validation Dice Li 0.81"]
    assert text[3].startswith("Grey levels: percentiles of the whole volume")
