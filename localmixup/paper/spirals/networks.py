"""The spirals MLPs: each run's initial network drawn from its seed, as a plain module or as the
layers of stacked runs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from localmixup.paper.training.seeding import run_streams
from localmixup.paper.training.stacked import StackedModels


def init_mlps(seeds: Sequence[int], sizes: Sequence[int], *, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None) -> list[torch.nn.Sequential]:
    """Run ``seeds[r]``'s initial MLP (Linear, ReLU, ..., Linear of widths ``sizes``), drawn from its ``init`` stream.

    Same law as ``torch.nn.Linear``: weight and bias uniform on [-1/sqrt(in), 1/sqrt(in)], layer
    by layer, weight (out, in) row by row, then bias.
    """
    shapes = list(zip(sizes[:-1], sizes[1:]))
    u = run_streams(list(seeds), "init", device).uniform(sum(i * o + o for i, o in shapes))
    models = []
    for row in u:
        layers, first = [], 0
        for i, o in shapes:
            draw = (2.0 * row[first : first + i * o + o] - 1.0) / math.sqrt(i)
            layers.append((draw[: i * o].view(o, i).to(dtype), draw[i * o :].to(dtype)))
            first += i * o + o
        models.append(mlp_module(layers))
    return models


def mlp_module(layers: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.nn.Sequential:
    """A plain ``nn.Sequential`` MLP (Linear, ReLU, ..., Linear) holding copies of (weight (out, in), bias (out,)) pairs."""
    modules: list[torch.nn.Module] = []
    for index, (weight, bias) in enumerate(layers):
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype, device=weight.device)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        modules.append(linear)
        if index < len(layers) - 1:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


def stacked_layers(models: StackedModels) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (weight (R, out, in), bias (R, out)) of each Linear layer of stacked MLPs (views of its parameters)."""
    weights = [v for k, v in models.params.items() if k.endswith("weight")]
    biases = [v for k, v in models.params.items() if k.endswith("bias")]
    return list(zip(weights, biases))
