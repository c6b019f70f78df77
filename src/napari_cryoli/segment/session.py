"""A training run as the Train panel shows it, without Qt: the loss and validation-Dice history,
the notes on the starting model, the status text and when to redraw the plot.

The panel feeds each :class:`~napari_cryoli.jobs.Progress` record to :meth:`TrainingSession.update`
and shows what it answers; tests do the same with a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..jobs import Progress

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .training import TrainResult

#: The plot is redrawn at most this often (and at every validation).
PLOT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class TrainUpdate:
    """What a progress record changes in the view (None: leave it as it is)."""

    status: str | None = None
    warning: str | None = None
    preview: np.ndarray | None = None
    redraw: bool = False


def sentence(note: str) -> str:
    """A note as a sentence: capital first letter, full stop."""
    return note[:1].upper() + note[1:] + "."


def dice_text(dice: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in dice.items())


class TrainingSession:
    """The history of one training run (reset for the next) and the texts shown about it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 plot_interval_s: float = PLOT_INTERVAL_S) -> None:
        self.clock = clock
        self.plot_interval_s = plot_interval_s
        self.reset()

    def reset(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.val: list[tuple[int, dict[str, float]]] = []  # (step, Dice per class name)
        self.start_note = ""
        self._last_plot = -np.inf

    def update(self, p: Progress) -> TrainUpdate:
        """Take one progress record of the training job."""
        status = warning = None
        if "start" in p.metrics:
            self.start_note = status = sentence(p.metrics["start"])
        if "intensity_note" in p.metrics:
            warning = sentence(p.metrics["intensity_note"])
            self.start_note = status = "\n".join(filter(None, [self.start_note, warning]))
        if "start_check" in p.metrics:
            check = p.metrics["start_check"]
            self.start_note = status = "\n".join(filter(None, [self.start_note,
                                                               sentence(check["note"])]))
            if check["wrong"]:
                warning = sentence(check["note"])
        step = getattr(p, "step", None)
        if step is None:
            return TrainUpdate(status, warning)
        self.steps.append(step)
        self.losses.append(p.loss)
        if p.val_dice:
            self.val.append((step, dict(p.val_dice)))
        text = f"step {step}  loss {p.loss:.3f}  {p.elapsed_s:.0f} s"
        if p.val_dice:
            text += f"\nvalidation Dice: {dice_text(p.val_dice)}"
        redraw = bool(p.val_dice) or self.clock() - self._last_plot >= self.plot_interval_s
        if redraw:
            self._last_plot = self.clock()
        return TrainUpdate("\n".join(filter(None, [self.start_note, text])), warning, p.preview,
                           redraw)

    def finished_text(self, result: TrainResult, model_name: str) -> str:
        """The status once the run has ended and its model is stored as ``model_name``."""
        from .calibration import describe_intensity

        best = result.best_val_dice
        what = "Stopped" if result.stopped else "Trained"
        return "\n".join(filter(None, [
            self.start_note,
            (f"{what} after {result.summary.get('steps', 0)} steps: '{model_name}' is ready "
             "for Predict."),
            f"best validation Dice {dice_text(best)}" if best else "",
            f"Grey levels: {describe_intensity(result.model.normalisation.to_dict())}",
        ]))

    def draw(self, figure: Figure, color: Callable[[str], Any] = lambda name: None) -> None:
        """Draw the history into a :func:`history_figure` (``color``: a class name's colour)."""
        ax_loss, ax_dice = figure.axes
        ax_loss.clear()
        ax_loss.plot(self.steps, self.losses, color="0.4", lw=0.8, label="loss")
        ax_loss.set_xlabel("step")
        ax_loss.set_ylabel("training loss")
        ax_dice.clear()
        ax_dice.yaxis.tick_right()  # clear() forgets that this is the twin on the right
        ax_dice.yaxis.set_label_position("right")
        ax_dice.set_ylim(0, 1)
        ax_dice.set_ylabel("validation Dice")
        if self.val:
            steps = [s for s, _ in self.val]
            for name in sorted({n for _, d in self.val for n in d}):
                ax_dice.plot(steps, [d.get(name, np.nan) for _, d in self.val], marker=".",
                             lw=1, label=name, color=color(name))
            ax_dice.legend(loc="lower right", fontsize=7, ncols=3)


def history_figure() -> Figure:
    """An empty figure for :meth:`TrainingSession.draw`: loss on the left, Dice on the right."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 2.6), layout="constrained")
    ax_loss = fig.add_subplot()
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_dice = ax_loss.twinx()
    ax_dice.set_ylabel("validation Dice")
    ax_dice.set_ylim(0, 1)
    return fig
