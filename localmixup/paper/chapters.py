"""What each chapter renders for each profile, so the book can pick the most faithful recorded one.

A chapter with recorded runs has a *plan*: the sizes its profile sets (seeds, datasets, grids)
and the record files it renders. The notebook takes its defaults from the plan, and
:func:`choose_profile` picks, for ``localmixup book --profile auto``, the most faithful profile
whose records are all present, so that a CPU machine renders the largest recorded protocol
without training anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localmixup.paper.profiles import FAITHFUL_FIRST
from localmixup.paper.provenance import default_device
from localmixup.paper.report import TABLE1_DATASETS


@dataclass(frozen=True)
class ImagePlan:
    """The image runs a chapter renders for one profile.

    Attributes:
        profile: the profile.
        seeds: seeds of the main runs.
        trained: datasets trained (or loaded) here.
        unavailable: dataset -> why it has no run here.
        configs: the main runs (``TrainConfig``), loaded when recorded, else trained.
        extra: chapter-specific runs and sizes (e.g. an ablation's configs and grid).
        paths: every record file the chapter renders.
    """

    profile: str
    seeds: list[int]
    trained: list[str]
    unavailable: dict[str, str]
    configs: list[Any]
    extra: dict[str, Any] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)


def _unavailable(candidates: Sequence[str], wanted: Sequence[str], profile: str) -> dict[str, str]:
    from localmixup.paper.data import dataset_status
    from localmixup.paper.recipes import PROTOCOLS

    why = {d: f"not trained in the {profile} profile" if d not in PROTOCOLS[profile] else dataset_status(d) for d in candidates}
    why = {d: w for d, w in why.items() if w}
    for d in candidates:
        if d not in wanted and d not in why:
            why[d] = f"not trained in the {profile} profile"
    return why


def _record_paths(configs: Sequence[Any]) -> list[Path]:
    from localmixup.paper.sweep.plan import record_path

    return [record_path(c) for c in configs]


# Sizes of each profile of the Table-1 chapter: seeds of the main runs, datasets, and the decay rates
# and seeds of the ablation of the exponential graph's rate ("auto": localmixup.decay.auto_decay).
_TABLE1 = {
    "quick": dict(seeds=[0, 1, 2], datasets=["fashion_mnist"], decays=[5e-4, 0.05, 0.2], decay_seeds=[0]),
    "cpu": dict(seeds=list(range(10)), datasets=["fashion_mnist"], decays=[0.005, 0.02, 0.07, "auto"],
                decay_seeds=list(range(10))),
    "paper": dict(seeds=list(range(10)), datasets=list(TABLE1_DATASETS), decays=[0.0, 5e-4, 5e-3, 0.02, 0.05, 0.2],
                  decay_seeds=[0, 1, 2]),
}


def table1_plan(profile: str, seeds: Sequence[int] | None = None, datasets: Sequence[str] | None = None,
                decays: Sequence[float | str] | None = None, decay_seeds: Sequence[int] | None = None) -> ImagePlan:
    """The Table-1 chapter: datasets x (baseline, Mixup, Local Mixup) x seeds, and the
    Fashion-MNIST ablation of the exponential graph's decay rate (``extra["ablation"]``)."""
    from localmixup.paper.sweep.plan import make_configs

    sizes = _TABLE1[profile]
    seeds = list(seeds) if seeds is not None else sizes["seeds"]
    datasets = list(datasets) if datasets is not None else sizes["datasets"]
    decays = list(decays) if decays is not None else sizes["decays"]
    decay_seeds = list(decay_seeds) if decay_seeds is not None else sizes["decay_seeds"]
    unavailable = _unavailable(TABLE1_DATASETS, datasets, profile)
    trained = [d for d in datasets if d not in unavailable]
    configs = make_configs(trained, ["baseline", "mixup", "local"], seeds, profile) if trained else []
    ablation = (make_configs(["fashion_mnist"], ["local"], decay_seeds, profile, decays)
                if "fashion_mnist" in trained else [])
    extra = {"ablation": ablation, "decays": decays, "decay_seeds": decay_seeds}
    return ImagePlan(profile, seeds, trained, unavailable, configs, extra, _record_paths(configs + ablation))


_ADAMIXUP = {
    "quick": dict(seeds=[0, 1, 2], error_dataset="fashion_mnist", curve_dataset="fashion_mnist", cost_steps=2),
    "cpu": dict(seeds=list(range(5)), error_dataset="fashion_mnist", curve_dataset="fashion_mnist", cost_steps=20),
    "paper": dict(seeds=list(range(5)), error_dataset="cifar10", curve_dataset="mnist", cost_steps=20),
}


def adamixup_plan(profile: str, seeds: Sequence[int] | None = None, error_dataset: str | None = None,
                  curve_dataset: str | None = None, cost_steps: int | None = None, cost_rounds: int | None = None) -> ImagePlan:
    """The AdaMixup chapter: (Mixup, Local Mixup, AdaMixup) x seeds on the error and the curve
    datasets, and the recorded cost measurement (``extra["cost_path"]``)."""
    from localmixup.paper.data import dataset_status
    from localmixup.paper.records import results_dir
    from localmixup.paper.sweep.plan import make_configs

    sizes = _ADAMIXUP[profile]
    seeds = list(seeds) if seeds is not None else sizes["seeds"]
    error_dataset = error_dataset or sizes["error_dataset"]
    curve_dataset = curve_dataset or sizes["curve_dataset"]
    cost_steps = cost_steps or sizes["cost_steps"]
    cost_rounds = cost_rounds or 3
    wanted = list(dict.fromkeys([error_dataset, curve_dataset]))
    unavailable = _unavailable(list(dict.fromkeys(["cifar10", *wanted])), wanted, profile)
    if profile != "paper" and "cifar10" in unavailable and dataset_status("cifar10") is None:
        unavailable["cifar10"] = f"not trained in the {profile} profile (ResNet-18 on 50,000 images needs a GPU)"
    trained = [d for d in wanted if d not in unavailable]
    configs = make_configs(trained, ["mixup", "local", "adamixup"], seeds, profile) if trained else []
    # the paper's size claim is about CIFAR-10: measured there when it can run, else on the first dataset available
    cost_dataset = next(d for d in (error_dataset, curve_dataset, "fashion_mnist") if not dataset_status(d))
    cost_path = results_dir("adamixup", profile, f"cost-{cost_dataset}-steps{cost_steps}-rounds{cost_rounds}.json")
    extra = {"error_dataset": error_dataset, "curve_dataset": curve_dataset, "cost_dataset": cost_dataset,
             "cost_steps": cost_steps, "cost_rounds": cost_rounds, "cost_path": cost_path}
    return ImagePlan(profile, seeds, trained, unavailable, configs, extra, [*_record_paths(configs), cost_path])


def _spirals_paths(profile: str) -> list[Path]:
    from localmixup.paper.sweep.spirals import spirals_plan

    return spirals_plan(profile).paths


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: the profiles it defines, most faithful first, and, for a chapter
    that renders recorded runs, ``plan(profile)`` returning the record files it renders."""

    profiles: tuple[str, ...]
    plan: Callable[[str], list[Path]] | None = None


CHAPTERS: dict[str, Chapter] = {
    "method": Chapter(("paper", "quick")),
    "theory_1d": Chapter(("paper", "quick")),
    "spirals": Chapter(("paper", "quick"), _spirals_paths),
    "table1": Chapter(("paper", "cpu", "quick"), lambda profile: table1_plan(profile).paths),
    "adamixup": Chapter(("paper", "cpu", "quick"), lambda profile: adamixup_plan(profile).paths),
}


def recorded(chapter: str, profile: str) -> bool:
    """Whether every record ``chapter`` renders in ``profile`` is present and readable (``False``
    for a chapter without recorded runs, or one whose plan is empty)."""
    from localmixup.paper.records import find_corrupt

    plan = CHAPTERS[chapter].plan
    paths = plan(profile) if plan is not None else []
    return bool(paths) and all(p.is_file() for p in paths) and not find_corrupt(paths, fields=None)


def choose_profile(chapter: str, requested: str = "auto") -> tuple[str, bool]:
    """The profile to execute ``chapter`` with, and whether it may run on a CPU (``allow_cpu``).

    ``auto``: the most faithful profile whose records are all present (it trains nothing, so a
    CPU may execute it); else ``paper`` where a GPU is visible and ``quick`` elsewhere. A named
    profile is used as is where the chapter defines it, and ``quick`` elsewhere.
    """
    from localmixup.validation import check_choice

    check_choice("profile", requested, ("auto", *FAITHFUL_FIRST))
    known = CHAPTERS[chapter].profiles
    if requested != "auto":
        profile = requested if requested in known else "quick"
        return profile, recorded(chapter, profile)
    for profile in (p for p in FAITHFUL_FIRST if p in known):
        if recorded(chapter, profile):
            return profile, True
    return ("paper" if default_device().type == "cuda" else "quick"), False
