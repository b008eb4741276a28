"""Several runs of one recipe trained at once, as one stacked model.

At the paper's small batches a GPU spends its time launching kernels, not computing. R runs
that share an architecture and a training recipe (and differ only in their seed, method,
locality graph, decay or alpha) are trained here as one model: their parameters and BatchNorm
buffers are stacked along a new leading dimension and the forward pass is vectorised over it
with :func:`torch.func.vmap` (convolutions become grouped convolutions), so one step launches
the kernels of one run for all R runs. Each run keeps everything of its own: initial weights,
data order, augmentation and mixing draws come from its own seed, as for a run trained alone.

In float32 a stacked run and the same run trained alone drift apart after some steps: the
grouped kernels round differently, and a pre-activation that rounds to the other side of a
ReLU's kink changes a gradient by a finite amount, which training then amplifies. In float64
the stacked step gives each run's gradient to 1e-12 (tested). A sweep therefore keeps the
records of stacked runs apart from those of runs trained alone
(:func:`~localmixup.paper.sweep.plan.record_path`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence

import torch
from torch.func import functional_call, stack_module_state, vmap

from localmixup.mixing import MixedBatch
from localmixup.paper.training.config import TrainConfig
from localmixup.checks import check_integer

#: The settings in which the runs of one stack may differ; every other setting is shared.
STACKABLE = ("seed", "method", "graph", "decay", "alpha", "pairing")


def stack_key(config: TrainConfig) -> str:
    """What runs trained in one stack must share: every setting but those of :data:`~.STACKABLE`."""
    d = config.to_dict()
    for name in STACKABLE:
        d.pop(name)
    return json.dumps(d, sort_keys=True)


def stackable(config: TrainConfig) -> bool:
    """Whether ``config`` may be trained in a stack (every method but AdaMixup, whose mixing is part of
    the differentiated graph)."""
    return config.method != "adamixup"


def check_stackable(configs: Sequence[TrainConfig]) -> None:
    """Raise ``ValueError`` unless ``configs`` (at least one) may be trained as one stack."""
    if not configs:
        raise ValueError("configs must hold at least one run to stack")
    if not all(map(stackable, configs)):
        raise ValueError("method='adamixup' cannot be stacked (its mixing is part of the differentiated graph); "
                         "stack baseline, mixup and local runs")
    first = json.loads(stack_key(configs[0]))
    for c in configs[1:]:
        other = json.loads(stack_key(c))
        if other != first:
            differ = sorted(k for k in first if first[k] != other[k])
            raise ValueError(f"runs of one stack may differ only in {', '.join(STACKABLE)}; "
                             f"these also differ in {', '.join(differ)}")


def stacks(configs: Sequence[TrainConfig], size: int) -> list[list[TrainConfig]]:
    """Group runs into stacks of at most ``size`` runs sharing a recipe (order kept within a recipe);
    with ``size`` 1, and for AdaMixup, every run alone (a group of one, trained unstacked)."""
    size = check_integer("stack", size, low=1)
    groups: dict[str, list[TrainConfig]] = {}
    out: list[list[TrainConfig]] = []
    for c in configs:
        if size == 1 or not stackable(c):
            out.append([c])
        else:
            groups.setdefault(stack_key(c), []).append(c)
    for group in groups.values():
        out.extend(group[i:i + size] for i in range(0, len(group), size))
    return out


class StackedModels:
    """R models of one architecture evaluated as one: parameters and buffers stacked (R, ...).

    Calling it on inputs (R, B, ...) gives logits (R, B, C), run r seeing only its own batch;
    with ``shared=True`` the input (B, ...) is seen by every run. BatchNorm statistics and
    running buffers stay per run. ``parameters()`` are the stacked leaves to optimise.
    """

    def __init__(self, models: Sequence[torch.nn.Module]) -> None:
        self.params, self.buffers = stack_module_state(list(models))
        self.template = copy.deepcopy(models[0]).to("meta")
        self.runs = len(models)

    def _forward(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor, *, shared: bool = False) -> torch.Tensor:
        return vmap(self._forward, in_dims=(0, 0, None if shared else 0))(self.params, self.buffers, x)

    def train(self, mode: bool = True) -> None:
        self.template.train(mode)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def state(self) -> list[torch.Tensor]:
        """Every tensor a training step modifies (parameters and buffers)."""
        return [*self.params.values(), *self.buffers.values()]


def stack_batches(batches: Sequence[MixedBatch]) -> MixedBatch:
    """One stacked :class:`~.MixedBatch` (leading dimension R, ``lam`` (R,)) from R runs' batches."""
    x = torch.stack([b.x for b in batches])
    lam = torch.stack([torch.as_tensor(b.lam, dtype=torch.float32, device=x.device) for b in batches])
    return MixedBatch(x, torch.stack([b.y_a for b in batches]), torch.stack([b.y_b for b in batches]), lam,
                      torch.stack([b.weight for b in batches]))
