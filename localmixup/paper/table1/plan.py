"""Which runs the Table-1 chapter renders in each profile: datasets x (baseline, Mixup, Local Mixup) x
seeds, and the Fashion-MNIST ablation of the exponential graph's decay rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from localmixup.paper.sweep.plan import ImagePlan, make_configs, parse_overrides, record_paths, unavailable_datasets
from localmixup.paper.table1.report import TABLE1_DATASETS

#: Sizes of each profile of the Table-1 chapter: seeds of the main runs, datasets, and the decay rates
#: and seeds of the ablation of the exponential graph's rate ("auto": localmixup.decay.auto_decay).
TABLE1_PROFILES = {
    "quick": dict(seeds=[0, 1, 2], datasets=["fashion_mnist"], decays=[5e-4, 0.05, 0.2], decay_seeds=[0]),
    "cpu": dict(seeds=list(range(10)), datasets=["fashion_mnist"], decays=[0.005, 0.02, 0.07, "auto"],
                decay_seeds=list(range(10))),
    "paper": dict(seeds=list(range(10)), datasets=list(TABLE1_DATASETS), decays=[0.0, 5e-4, 5e-3, 0.02, 0.05, 0.2],
                  decay_seeds=[0, 1, 2]),
}


def table1_plan(profile: str, seeds: Sequence[int] | None = None, datasets: Sequence[str] | None = None,
                decays: Sequence[float | str] | None = None, decay_seeds: Sequence[int] | None = None,
                overrides: Mapping[str, Any] | str | None = None) -> ImagePlan:
    """The Table-1 chapter: datasets x (baseline, Mixup, Local Mixup) x seeds, and the
    Fashion-MNIST ablation of the exponential graph's decay rate (``extra["ablation"]``); with
    ``overrides`` (:func:`~localmixup.paper.sweep.plan.parse_overrides`) every run trains with those
    settings replaced (e.g. seconds-long runs of the paper profile, to try its code path)."""
    overrides = parse_overrides(overrides)
    sizes = TABLE1_PROFILES[profile]
    seeds = list(seeds) if seeds is not None else sizes["seeds"]
    datasets = list(datasets) if datasets is not None else sizes["datasets"]
    decays = list(decays) if decays is not None else sizes["decays"]
    decay_seeds = list(decay_seeds) if decay_seeds is not None else sizes["decay_seeds"]
    unavailable = unavailable_datasets(TABLE1_DATASETS, datasets, profile)
    trained = [d for d in datasets if d not in unavailable]
    configs = make_configs(trained, ["baseline", "mixup", "local"], seeds, profile, **overrides) if trained else []
    ablation = (make_configs(["fashion_mnist"], ["local"], decay_seeds, profile, decays, **overrides)
                if "fashion_mnist" in trained else [])
    extra = {"ablation": ablation, "decays": decays, "decay_seeds": decay_seeds, "overrides": overrides}
    return ImagePlan(profile, seeds, trained, unavailable, configs, extra, record_paths(configs + ablation))
