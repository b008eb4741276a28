"""One training step: the eager step, and the same step captured in a CUDA graph.

On CUDA the forward pass runs under bf16 autocast; on a CPU in float32 (bf16 autocast makes
LeNet-5's step about 3x slower on this project's CPU, measured). The loss is always computed in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from itertools import chain

import torch
import torch.nn.functional as F

from localmixup.loss import mixup_loss
from localmixup.mixing import LocalMixup, MixedBatch
from localmixup.paper.training.optim import SGD

#: The loss of a mixed batch: a scalar, or one loss per run (R,) for a stack of runs.
LossOf = Callable[[MixedBatch], torch.Tensor]


def device_autocast(device: torch.device) -> AbstractContextManager:
    """bf16 autocast on CUDA; a no-op context elsewhere (the CPU trains in float32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _one_hot(y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # scatter never checks the label range on the host, so it does not synchronise the GPU
    return out.zero_().scatter_(-1, y[..., None], 1.0)


def unmixed(x: torch.Tensor, y: torch.Tensor) -> MixedBatch:
    """A batch trained as it is (the baseline) in the form of a mixed batch: every sample its own partner."""
    return MixedBatch(x, y, y, torch.ones((), device=x.device), torch.ones(x.shape[0], device=x.device))


def model_loss(model: Callable[[torch.Tensor], torch.Tensor], batch: MixedBatch) -> torch.Tensor:
    """Eq. (2) loss of ``model`` on a mixed batch (one loss per run, (R,), for a stacked model and batch),
    the forward under bf16 autocast on CUDA; no host check."""
    with device_autocast(batch.x.device):
        logits = model(batch.x)
    return mixup_loss(logits, batch, validate=False)


def optimiser_step(loss_of: LossOf, optimizer: SGD, batch: MixedBatch | None) -> torch.Tensor:
    """One update on ``batch``: the gradient of ``loss_of(batch)`` (summed, if it holds one loss per
    run), then ``optimizer.step()``; returns the detached loss (not synchronised)."""
    optimizer.zero_grad()
    loss = loss_of(batch)
    loss.sum().backward()
    optimizer.step()
    return loss.detach()


def eager_step(model: torch.nn.Module, optimizer: SGD, x: torch.Tensor, y: torch.Tensor,
               mixer: LocalMixup | None) -> torch.Tensor:
    """One eager training step on the batch ``(x, y)``, mixed by ``mixer`` (None: plain cross-entropy);
    returns the loss (a detached scalar tensor, not synchronised)."""
    if mixer is not None:
        return optimiser_step(lambda b: model_loss(model, b), optimizer, mixer(x, y))

    def cross_entropy(_: None) -> torch.Tensor:
        with device_autocast(x.device):
            logits = model(x)
        return F.cross_entropy(logits.float(), y)

    return optimiser_step(cross_entropy, optimizer, None)


class CapturedStep:
    """One training step (forward, Eq. (2) loss, backward, SGD update) captured in a CUDA graph.

    Calling it copies a mixed batch into static buffers and replays the graph: one launch per
    step instead of hundreds. Targets enter as one-hot rows (the loss's soft-target branch,
    which needs no host check), lambda as a device tensor. The warm-up iterations needed before
    capture are undone (``state``, typically parameters and BatchNorm buffers, and momentum
    restored), so the run starts from exactly the initial weights.

    Args:
        loss_of: the loss of a :class:`~.MixedBatch` (a scalar, or one loss per run for a stack
            of runs; their sum is differentiated).
        optimizer: the :class:`~.SGD` over the trained parameters.
        state: every tensor the step modifies, restored after the warm-up; the static buffers
            take the dtype of the first one.
        x_shape: shape of one batch of inputs (B, ...).
        num_classes: columns of the one-hot targets.
        device: where the graph runs.
        runs: None for one run; R for R stacked runs, whose batches enter as (R, B, ...) inputs,
            (R,) lambdas and (R, B) weights.
        channels_last: keep the static input channels-last (one run only).
        capture: False runs the same steps (warm-up and restore included) eagerly from the static
            buffers, on any device: what the graph replays, checkable on a CPU.
    """

    def __init__(self, loss_of: LossOf, optimizer: SGD, state: Iterable[torch.Tensor], x_shape: tuple[int, ...],
                 num_classes: int, device: torch.device, *, runs: int | None = None, channels_last: bool = True,
                 capture: bool = True) -> None:
        self.loss_of, self.optimizer = loss_of, optimizer
        state = list(state)
        dtype = state[0].dtype
        lead = () if runs is None else (runs,)
        b = x_shape[0]
        self.x = torch.zeros(*lead, *x_shape, device=device, dtype=dtype)
        if channels_last and runs is None:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y_a = torch.zeros(*lead, b, num_classes, device=device, dtype=dtype)
        self.y_b = torch.zeros(*lead, b, num_classes, device=device, dtype=dtype)
        self.lam = torch.ones(lead, device=device, dtype=dtype)
        self.weight = torch.ones(*lead, b, device=device, dtype=dtype)
        saved = [t.detach().clone() for t in state]
        self.graph = None
        if capture:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._step()
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.loss = self._step()
        else:
            for _ in range(3):
                self._step()
        with torch.no_grad():
            for t, s in zip(state, saved):
                t.copy_(s)
        optimizer.reset()

    @classmethod
    def for_model(cls, model: torch.nn.Module, optimizer: SGD, x_shape: tuple[int, ...], num_classes: int,
                  device: torch.device, *, capture: bool = True) -> "CapturedStep":
        """The captured step of one run of ``model`` (its parameters and buffers are the state)."""
        return cls(lambda b: model_loss(model, b), optimizer, chain(model.parameters(), model.buffers()), x_shape,
                   num_classes, device, capture=capture)

    def _step(self) -> torch.Tensor:
        return optimiser_step(self.loss_of, self.optimizer, MixedBatch(self.x, self.y_a, self.y_b, self.lam, self.weight))

    def __call__(self, batch: MixedBatch) -> torch.Tensor:
        self.x.copy_(batch.x)
        _one_hot(batch.y_a, self.y_a)
        _one_hot(batch.y_b, self.y_b)
        if isinstance(batch.lam, torch.Tensor):
            self.lam.copy_(batch.lam)
        else:
            self.lam.fill_(batch.lam)
        self.weight.copy_(batch.weight)
        if self.graph is None:
            self.loss = self._step()
        else:
            self.graph.replay()
        return self.loss
