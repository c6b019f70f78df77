"""The one optimisation loop of fine-tuning and pre-training (segment/loop.py)."""

import copy
import threading

import torch

from napari_cryoli.segment.loop import StepLoop, learning_rate


def _loop(**kw) -> StepLoop:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    return StepLoop(net, torch.optim.SGD(net.parameters(), lr=0.1), 0.1, **kw)


def _batch():
    x = torch.randn(8, 3)
    return x, x.sum(1, keepdim=True)


def _mse(out, x, t):
    return ((out - t) ** 2).mean()


def test_runs_the_steps_asked_and_learns():
    loop = _loop(budget_s=None, max_steps=60, warmup=5)
    losses = list(loop.run(_batch, _mse))
    assert len(losses) == loop.step == 60 and not loop.stopped
    assert loop.fraction() == 1.0
    assert sum(losses[-5:]) < 0.2 * sum(losses[:5])


def test_a_stop_ends_the_run_and_says_so():
    stop = threading.Event()
    loop = _loop(budget_s=3600.0, max_steps=None, stop=stop)
    for _ in loop.run(_batch, _mse):
        if loop.step == 3:
            stop.set()
    assert loop.step == 3 and loop.stopped


def test_the_averaged_copy_trails_the_network():
    loop = _loop(budget_s=None, max_steps=20)
    loop.ema_net, loop.ema = copy.deepcopy(loop.net), 0.9
    start = loop.ema_net.weight.detach().clone()
    list(loop.run(_batch, _mse))
    moved = (loop.ema_net.weight - start).abs().sum()
    assert 0 < moved < (loop.net.weight - start).abs().sum()


def test_learning_rate_warms_up_then_decays():
    assert learning_rate(1.0, 0, 0.0, warmup=10) == 0.1
    assert learning_rate(1.0, 50, 0.0, warmup=10) == 1.0
    assert abs(learning_rate(1.0, 50, 1.0, warmup=10) - 0.05) < 1e-12


def test_no_warm_up_starts_at_the_full_rate():
    assert learning_rate(1.0, 0, 0.0, warmup=0) == 1.0
