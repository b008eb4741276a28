"""The optimiser of the image runs: SGD with momentum and weight decay, and its learning-rate schedule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from localmixup.paper.training.config import TrainConfig


def lr_at(config: "TrainConfig", epoch: int) -> float:
    """Learning rate during epoch ``epoch`` (0-based): ``"step"`` multiplies ``config.lr`` by ``gamma``
    every ``step_size`` epochs, ``"multistep"`` at each epoch of ``milestones``."""
    if config.schedule == "step":
        return config.lr * config.gamma ** (epoch // config.step_size)
    return config.lr * config.gamma ** sum(epoch >= m for m in config.milestones)


class SGD:
    """SGD with momentum and L2 weight decay, the update of ``torch.optim.SGD`` (dampening 0,
    no Nesterov): ``g += wd p; buf = momentum buf + g; p -= lr buf``.

    The learning rate lives in a device tensor (``set_lr``), so a CUDA graph that captured
    :meth:`~.step` follows the schedule without re-capture; torch's SGD keeps it a Python float.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr = torch.tensor(float(lr), device=self.params[0].device)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.buffers = [torch.zeros_like(p) for p in self.params]

    def set_lr(self, lr: float) -> None:
        self.lr.fill_(lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if self.weight_decay:
            grads = torch._foreach_add(grads, self.params, alpha=self.weight_decay)
        if self.momentum:
            torch._foreach_mul_(self.buffers, self.momentum)
            torch._foreach_add_(self.buffers, grads)
            grads = self.buffers
        torch._foreach_sub_(self.params, torch._foreach_mul(grads, self.lr))

    def reset(self) -> None:
        """Zero the momentum (after the warm-up steps of a CUDA-graph capture)."""
        for b in self.buffers:
            b.zero_()
