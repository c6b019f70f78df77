"""The one optimisation loop of fine-tuning and pre-training.

Both run AdamW steps on batches within a time budget and/or a step count, with a warm-up and a
cosine learning rate over the budget, an averaged (EMA) copy of the network, and a stop event.
What differs is passed in: where batches come from, the loss (fine-tuning adds the keep term),
and what the caller does between steps (validation, checkpoints, progress), which it does on
each value the loop yields.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..jobs import stop_requested


@dataclass
class StepLoop:
    """Optimiser steps until ``budget_s`` seconds or ``max_steps`` steps, whichever comes first.

    ``ema`` is the averaging's decay (0: no averaged copy); ``step``, ``stopped`` and
    ``fraction()`` tell the caller where the run is.
    """

    net: Any
    optimiser: Any
    lr: float
    budget_s: float | None
    max_steps: int | None
    warmup: int = 20
    ema_net: Any = None
    ema: float = 0.0
    stop: threading.Event | None = None
    started: float = field(default_factory=time.perf_counter)
    step: int = 0
    stopped: bool = False

    def fraction(self) -> float:
        """How much of the budget is spent (time or steps, the larger)."""
        f = 0.0
        if self.budget_s is not None:
            f = max(f, (time.perf_counter() - self.started) / self.budget_s)
        if self.max_steps is not None:
            f = max(f, self.step / self.max_steps)
        return f

    def run(self, batch: Callable[[], tuple[Any, Any]],
            loss_of: Callable[[Any, Any, Any], Any]) -> Iterator[float]:
        """Yield each step's loss; ``batch()`` gives (input, target), ``loss_of(logits, x, t)``."""
        while True:
            if stop_requested(self.stop):
                self.stopped = True
                return
            frac = self.fraction()
            if frac >= 1.0:
                return
            for group in self.optimiser.param_groups:
                group["lr"] = learning_rate(self.lr, self.step, frac, self.warmup)
            x, t = batch()
            loss = loss_of(self.net(x), x, t)
            self.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            self.optimiser.step()
            self.step += 1
            if self.ema_net is not None and self.ema:
                update_ema(self.ema_net, self.net, min(self.ema, (1 + self.step) / (10 + self.step)))
            yield float(loss.detach())


def learning_rate(base: float, step: int, fraction: float, warmup: int = 20) -> float:
    """Linear warm-up over the first ``warmup`` steps (none at 0), then cosine decay to 5 % over
    the budget."""
    ramp = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    return base * ramp * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(fraction, 1.0))))


def update_ema(ema_net, net, decay: float) -> None:
    """Average weights and batch-norm statistics alike: averaged weights with the live network's
    statistics do not match, which showed as a collapsed class at a high learning rate."""
    import torch

    with torch.no_grad():
        torch._foreach_lerp_(list(ema_net.parameters()), list(net.parameters()), 1.0 - decay)
        for eb, b in zip(ema_net.buffers(), net.buffers()):
            if eb.dtype.is_floating_point:
                eb.lerp_(b, 1.0 - decay)
            else:
                eb.copy_(b)


def state_copy(network) -> dict:
    """A detached copy of the network's weights and buffers."""
    return {k: v.detach().clone() for k, v in network.state_dict().items()}
