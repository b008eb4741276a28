"""Which runs the AdaMixup chapter renders in each profile: (Mixup, Local Mixup, AdaMixup) x seeds on
its error and curve datasets, and the recorded measurement of the step costs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from localmixup.paper.sweep.plan import ImagePlan, folder_tag, make_configs, parse_overrides, record_paths, unavailable_datasets

#: The methods the chapter compares, in the order of its tables.
ADAMIXUP_METHODS = ("mixup", "local", "adamixup")

ADAMIXUP_PROFILES = {
    "quick": dict(seeds=[0, 1, 2], error_dataset="fashion_mnist", curve_dataset="fashion_mnist", cost_steps=2),
    "cpu": dict(seeds=list(range(5)), error_dataset="fashion_mnist", curve_dataset="fashion_mnist", cost_steps=20),
    "paper": dict(seeds=list(range(5)), error_dataset="cifar10", curve_dataset="mnist", cost_steps=20),
}


def adamixup_plan(profile: str, seeds: Sequence[int] | None = None, error_dataset: str | None = None,
                  curve_dataset: str | None = None, cost_steps: int | None = None, cost_rounds: int | None = None,
                  overrides: Mapping[str, Any] | str | None = None) -> ImagePlan:
    """The AdaMixup chapter: (Mixup, Local Mixup, AdaMixup) x seeds on the error and the curve
    datasets, and the recorded cost measurement (``extra["cost_path"]``, of the configurations
    ``extra["cost_configs"]``); with ``overrides`` (:func:`~localmixup.paper.sweep.plan.parse_overrides`)
    every run and the cost measurement take those settings, and their records a folder of their own."""
    from localmixup.paper.data import dataset_status
    from localmixup.paper.protocols import profile_config
    from localmixup.paper.record_files import results_dir

    overrides = parse_overrides(overrides)
    sizes = ADAMIXUP_PROFILES[profile]
    seeds = list(seeds) if seeds is not None else sizes["seeds"]
    error_dataset = error_dataset or sizes["error_dataset"]
    curve_dataset = curve_dataset or sizes["curve_dataset"]
    cost_steps = cost_steps or sizes["cost_steps"]
    cost_rounds = cost_rounds or 3
    wanted = list(dict.fromkeys([error_dataset, curve_dataset]))
    unavailable = unavailable_datasets(list(dict.fromkeys(["cifar10", *wanted])), wanted, profile)
    if profile != "paper" and "cifar10" in unavailable and dataset_status("cifar10") is None:
        unavailable["cifar10"] = f"not trained in the {profile} profile (ResNet-18 on 50,000 images needs a GPU)"
    trained = [d for d in wanted if d not in unavailable]
    configs = make_configs(trained, list(ADAMIXUP_METHODS), seeds, profile, **overrides) if trained else []
    # the paper's size claim is about CIFAR-10: measured there when it can run, else on the first dataset available
    cost_dataset = next(d for d in (error_dataset, curve_dataset, "fashion_mnist") if not dataset_status(d))
    cost_configs = [profile_config(profile, cost_dataset, m, **overrides) for m in ADAMIXUP_METHODS]
    cost_path = results_dir("adamixup", folder_tag(cost_configs[0]), f"cost-{cost_dataset}-steps{cost_steps}-rounds{cost_rounds}.json")
    extra = {"error_dataset": error_dataset, "curve_dataset": curve_dataset, "cost_dataset": cost_dataset,
             "cost_steps": cost_steps, "cost_rounds": cost_rounds, "cost_path": cost_path, "cost_configs": cost_configs,
             "overrides": overrides}
    return ImagePlan(profile, seeds, trained, unavailable, configs, extra, [*record_paths(configs), cost_path])
