"""Exponential moving average of a network's weights, and batch-norm statistics to match it.

GAN generators are sampled from an EMA of their weights (Karras et al. 2018, Yazici et al. 2019):
``avg <- decay * avg + (1 - decay) * weights`` after every step. Batch-norm running statistics
collected by the raw network do not belong to the averaged weights, so before the averaged net is
used its statistics are recomputed ("standing statistics", Brock et al. 2019) from seeded draws.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn


class WeightAverage:
    """EMA of ``net``'s parameters (buffers are copied). ``update(step)`` after every optimiser step."""

    def __init__(self, net: nn.Module, decay: float, start: int = 0) -> None:
        self.decay = decay
        self.start = start
        self.average = copy.deepcopy(net).eval().requires_grad_(False)
        self.net = net

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = self.decay if step > self.start else 0.0  # copy the raw weights until averaging starts
        for avg, raw in zip(self.average.parameters(), self.net.parameters()):
            avg.lerp_(raw.detach(), 1.0 - decay)
        for avg_buffer, raw_buffer in zip(self.average.buffers(), self.net.buffers()):
            avg_buffer.copy_(raw_buffer)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.average.state_dict()


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


@torch.no_grad()
def recompute_batch_norm(net: nn.Module, forward: Callable[[int], None], batches: int = 50) -> None:
    """Replace ``net``'s batch-norm running statistics by their plain average over ``batches`` forward passes.

    ``forward(i)`` runs the i-th pass (seeded by the caller) through ``net``; ``net`` is left in eval mode.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes
    net.train()
    for i in range(batches):
        forward(i)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    net.eval()
