"""Which runs the AdaMixup chapter renders in each profile: (Mixup, Local Mixup, AdaMixup) x seeds on
its error and curve datasets, and the recorded measurement of the step costs."""

from __future__ import annotations

from collections.abc import Sequence

from localmixup.paper.sweep.plan import ImagePlan, make_configs, record_paths, unavailable_datasets

ADAMIXUP_PROFILES = {
    "quick": dict(seeds=[0, 1, 2], error_dataset="fashion_mnist", curve_dataset="fashion_mnist", cost_steps=2),
    "cpu": dict(seeds=list(range(5)), error_dataset="fashion_mnist", curve_dataset="fashion_mnist", cost_steps=20),
    "paper": dict(seeds=list(range(5)), error_dataset="cifar10", curve_dataset="mnist", cost_steps=20),
}


def adamixup_plan(profile: str, seeds: Sequence[int] | None = None, error_dataset: str | None = None,
                  curve_dataset: str | None = None, cost_steps: int | None = None, cost_rounds: int | None = None) -> ImagePlan:
    """The AdaMixup chapter: (Mixup, Local Mixup, AdaMixup) x seeds on the error and the curve
    datasets, and the recorded cost measurement (``extra["cost_path"]``)."""
    from localmixup.paper.data import dataset_status
    from localmixup.paper.record_files import results_dir
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
    configs = make_configs(trained, ["mixup", "local", "adamixup"], seeds, profile) if trained else []
    # the paper's size claim is about CIFAR-10: measured there when it can run, else on the first dataset available
    cost_dataset = next(d for d in (error_dataset, curve_dataset, "fashion_mnist") if not dataset_status(d))
    cost_path = results_dir("adamixup", profile, f"cost-{cost_dataset}-steps{cost_steps}-rounds{cost_rounds}.json")
    extra = {"error_dataset": error_dataset, "curve_dataset": curve_dataset, "cost_dataset": cost_dataset,
             "cost_steps": cost_steps, "cost_rounds": cost_rounds, "cost_path": cost_path}
    return ImagePlan(profile, seeds, trained, unavailable, configs, extra, [*record_paths(configs), cost_path])
