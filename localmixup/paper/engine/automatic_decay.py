"""The automatic decay rate of a Local Mixup run, computed from its training split alone.

The paper names "a deterministic method to select our hyper-parameter" as future work;
:func:`localmixup.decay.auto_decay` is one. Here it is applied to a run's training images exactly
as the mixing sees them (subset, padding and normalisation of the run), once per process and split.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import torch.nn.functional as F

from localmixup.decay import RULES, auto_decay
from localmixup.paper.data import DeviceLoader, load_arrays, spec, subset
from localmixup.paper.engine.config import TrainConfig
from localmixup.validation import check_choice


@lru_cache(maxsize=16)
def _rate(dataset: str, train_size: int | None, pad: int, rule: str) -> float:
    s = spec(dataset)
    arrays = load_arrays(dataset)
    x, y = subset(arrays.x_train, arrays.y_train, train_size)
    if pad:
        x = F.pad(x, (pad,) * 4)  # black pixels, as prepare pads
    images = DeviceLoader(x, y, 1, mean=s.mean, std=s.std).normalise(x)
    return auto_decay(images, y if rule == "nearest_other_class" else None, rule=rule)


def automatic_decay(config: TrainConfig, rule: str = "nearest_other_class") -> float:
    """The decay rate that rule ``rule`` of :func:`localmixup.decay.auto_decay` gives on the training
    split of ``config`` (its ``train_size`` subset, ``pad`` and normalisation; the run's seed plays
    no part). Costs about 10 CPU-seconds on all of Fashion-MNIST, once per process."""
    return _rate(config.dataset, config.train_size, config.pad, check_choice("rule", rule, RULES))


def with_automatic_decay(config: TrainConfig, rule: str = "nearest_other_class") -> TrainConfig:
    """``config`` (a ``local`` run) with the decay rate of :func:`~.automatic_decay` and ``decay_rule`` set."""
    return dataclasses.replace(config, decay=automatic_decay(config, rule), decay_rule=rule)
