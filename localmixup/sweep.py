"""Resumable multi-seed sweeps: one atomic JSON record per (dataset, method, alpha, seed) run.

The pending-run computation (:func:`pending`) is separate from the execution loop
(:func:`run_sweep`), and the per-run function (:func:`run_one`) is a top-level, picklable
function of a picklable :class:`~localmixup.train.TrainConfig`, so other executors can call it.
A sweep killed at any moment loses at most the run in progress: finished runs are files, written
atomically, and are never recomputed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from .data import DATASETS, load_arrays
from .records import results_dir, write_record
from .train import METHODS, TrainConfig, profile_config, train_run
from .validation import check_choice, check_integer


def parse_seeds(text: str | int | Sequence[int]) -> list[int]:
    """``"0-9"``, ``"0,2,5"``, ``"3"`` (or a list of ints) -> sorted distinct seeds >= 0."""
    if isinstance(text, int) or (isinstance(text, Sequence) and not isinstance(text, str)):
        items = [text] if isinstance(text, int) else list(text)
        return sorted({check_integer("seeds", s, low=0) for s in items})
    seeds: set[int] = set()
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"seeds must look like '0-9', '0,3,5' or '4' (integers >= 0, ranges low-high), got {text!r}")
        low = int(m.group(1))
        seeds.update(range(low, (int(m.group(2)) if m.group(2) else low) + 1))
    return sorted(seeds)


def parse_list(name: str, text: str | Sequence[str], choices: Sequence[str]) -> list[str]:
    """Comma-separated names (or a list), each checked against ``choices``; order kept, duplicates dropped."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    items = [t for t in items if t]
    if not items:
        raise ValueError(f"{name} must name at least one of {', '.join(choices)}")
    return list(dict.fromkeys(check_choice(name, t, tuple(choices)) for t in items))


def make_configs(datasets: str | Sequence[str], methods: str | Sequence[str], seeds: str | Sequence[int], profile: str,
                 alphas: Sequence[float] | None = None, **overrides) -> list[TrainConfig]:
    """Every run of a sweep: datasets x methods x seeds (x alphas for ``local``; default: the
    profile's alpha of the dataset)."""
    datasets = parse_list("dataset", datasets, tuple(DATASETS))
    methods = parse_list("method", methods, METHODS)
    seeds = parse_seeds(seeds)
    configs = []
    for dataset in datasets:
        for method in methods:
            for alpha in (alphas or [None]) if method == "local" else [None]:
                for seed in seeds:
                    extra = dict(overrides, alpha=alpha) if alpha is not None else dict(overrides)
                    configs.append(profile_config(profile, dataset, method, seed, **extra))
    return configs


def folder_tag(config: TrainConfig) -> str:
    """``quick`` or ``paper`` for runs of that profile as defined; ``<profile>-custom-<hash>`` for runs
    with overridden settings (other than alpha and seed), so they never mix into a profile's table."""
    reference = profile_config(config.profile, config.dataset, config.method, config.seed, alpha=config.alpha) \
        if config.profile in ("quick", "paper") else None
    if reference is not None and reference.to_dict() == config.to_dict():
        return config.profile
    d = config.to_dict()
    for key in ("seed", "method", "alpha"):
        d.pop(key)
    digest = hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
    return f"{config.profile}-custom-{digest}"


def record_name(config: TrainConfig) -> str:
    """``baseline-seed3.json``, ``mixup-seed3.json``, ``local-alpha0.0005-seed3.json``."""
    alpha = f"-alpha{config.alpha:g}" if config.method == "local" else ""
    return f"{config.method}{alpha}-seed{config.seed}.json"


def record_path(config: TrainConfig) -> Path:
    """``results/table1/<profile tag>/<dataset>/<record name>``."""
    return results_dir("table1", folder_tag(config), config.dataset) / record_name(config)


def pending(configs: Iterable[TrainConfig]) -> list[TrainConfig]:
    """The configurations whose record does not exist yet (duplicates dropped, order kept)."""
    seen, todo = set(), []
    for c in configs:
        path = record_path(c)
        if path not in seen and not path.is_file():
            todo.append(c)
        seen.add(path)
    return todo


def run_one(config: TrainConfig, device: str | None = None, fast: bool | None = None, progress: bool = False) -> str:
    """Train one run and write its record atomically; return the record's path.

    Failed runs (NaN/inf loss) are recorded too (``status="failed"``), so they are not repeated.
    """
    record = train_run(config, device, fast=fast, progress=progress)
    return str(write_record(record_path(config), record))


def clean_temporary(folders: Iterable[Path]) -> int:
    """Remove temporary files that a killed :func:`~localmixup.records.write_record` left behind."""
    removed = 0
    for folder in set(folders):
        for tmp in Path(folder).glob(".*.json.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def run_sweep(configs: Sequence[TrainConfig], *, progress: bool = True, device: str | None = None,
              fast: bool | None = None, jobs: int = 1) -> list[Path]:
    """Run every configuration that has no record yet; return the paths of all their records.

    Args:
        configs: the runs (e.g. from :func:`make_configs`).
        progress: tqdm bars over runs and epochs.
        device: default CUDA if visible, else CPU.
        fast: CUDA-graph step (default on CUDA).
        jobs: runs trained at once in separate processes (on one GPU, several processes keep
            it busier at small batches); 1 runs them in this process.
    """
    from tqdm.auto import tqdm

    jobs = check_integer("jobs", jobs, low=1)
    todo = pending(configs)
    clean_temporary(record_path(c).parent for c in configs)
    for dataset in dict.fromkeys(c.dataset for c in todo):
        load_arrays(dataset)  # fail early, with one clear message, if a dataset is missing
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress)
    if jobs == 1 or len(todo) <= 1:
        for c in todo:
            bar.set_postfix_str(f"{c.dataset} {c.method} seed {c.seed}")
            run_one(c, device, fast, progress)
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run_one, c, device, fast, False) for c in todo]
            for future in as_completed(futures):
                future.result()
                bar.update()
    bar.close()
    return [record_path(c) for c in configs]

