"""The automatic decay rate of a Local Mixup run, computed from its training split alone.

The paper names "a deterministic method to select our hyper-parameter" as future work;
:func:`localmixup.decay.auto_decay` is one. Here it is applied to a run's training images exactly
as the mixing sees them (subset, padding and normalisation of the run), once per process and split.
"""

from __future__ import annotations

from functools import lru_cache

from localmixup.decay import RULES, auto_decay
from localmixup.paper.data import DeviceLoader, spec
from localmixup.paper.training.config import TrainConfig
from localmixup.paper.training.prepare import train_split
from localmixup.checks import check_choice


@lru_cache(maxsize=64)
def _rate(dataset: str, train_size: int | None, subset_seed: int | None, pad: int, rule: str) -> float:
    x, y = train_split(TrainConfig(dataset=dataset, method="baseline", batch_size=2, train_size=train_size,
                                   subset_seed=subset_seed, pad=pad))
    s = spec(dataset)
    images = DeviceLoader(x, y, 1, mean=s.mean, std=s.std).normalise(x)
    return auto_decay(images, y if rule == "nearest_other_class" else None, rule=rule)


def automatic_decay(config: TrainConfig, rule: str = "nearest_other_class") -> float:
    """The decay rate that rule ``rule`` of :func:`localmixup.decay.auto_decay` gives on the training
    split of ``config`` (its ``train_size`` subset, drawn from ``subset_seed`` if set, ``pad`` and
    normalisation; nothing else of the run plays a part). Costs about 10 CPU-seconds on all of
    Fashion-MNIST, once per process and split."""
    return _rate(config.dataset, config.train_size, config.subset_seed, config.pad, check_choice("rule", rule, RULES))
