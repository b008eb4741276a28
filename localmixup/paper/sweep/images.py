"""Resumable multi-seed sweeps: one atomic JSON record per (dataset, method, alpha, seed) run.

The pending-run computation (:func:`~.pending`) is separate from the execution loop
(:func:`~.run_sweep`), and the per-run function (:func:`~.run_one`) is a top-level, picklable
function of a picklable :class:`~localmixup.paper.engine.train.TrainConfig`, so other executors can call it.
A sweep killed at any moment loses at most the run in progress: finished runs are files, written
atomically, and are never recomputed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from numbers import Real
from pathlib import Path

from localmixup.paper.data import DATASETS, load_arrays
from localmixup.paper.records import RUN_FIELDS, read_record, results_dir, write_record
from localmixup.paper.engine.stacked import stacks, train_stacked
from localmixup.paper.engine.train import METHODS, TrainConfig, profile_config, train_run
from localmixup.validation import check_choice, check_integer, check_real


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


def checkpoint_path(configs: Sequence[TrainConfig]) -> Path:
    """Checkpoint file of a run (or a stack of runs) in progress: ``.checkpoints/`` beside the first
    run's record, named after it (and, for a stack, after all its runs)."""
    first = record_path(configs[0])
    name = first.stem
    if len(configs) > 1:
        digest = hashlib.sha1("\n".join(str(record_path(c)) for c in configs).encode()).hexdigest()[:8]
        name += f"+{len(configs) - 1}-{digest}"
    return first.parent / ".checkpoints" / f"{name}.pt"


def pending(configs: Iterable[TrainConfig]) -> list[TrainConfig]:
    """The configurations whose record does not exist yet (duplicates dropped, order kept)."""
    seen, todo = set(), []
    for c in configs:
        path = record_path(c)
        if path in seen:
            continue
        seen.add(path)
        if not path.is_file():
            todo.append(c)
            continue
        # A profile whose definition changed must not silently reuse runs of the old one.
        recorded, wanted = read_record(path, RUN_FIELDS)["config"], json.loads(json.dumps(c.to_dict()))
        if recorded != wanted:
            differ = sorted(k for k in wanted.keys() | recorded.keys() if wanted.get(k) != recorded.get(k))
            raise ValueError(f"{path} was recorded with another configuration (differs in {', '.join(differ)}); "
                             "move it away to train this one")
    return todo


def run_one(config: TrainConfig, device: str | None = None, fast: bool | None = None, progress: bool = False,
            checkpoint_every: float | None = None) -> str:
    """Train one run and write its record atomically; return the record's path.

    Failed runs (NaN/inf loss) are recorded too (``status="failed"``), so they are not repeated.
    With ``checkpoint_every`` (seconds), the run keeps a checkpoint (:func:`~.checkpoint_path`) that
    an interrupted run resumes from; it is deleted once the record is written.
    """
    return run_stack([config], device, fast, progress, checkpoint_every)[0]


def run_stack(configs: Sequence[TrainConfig], device: str | None = None, fast: bool | None = None,
              progress: bool = False, checkpoint_every: float | None = None) -> list[str]:
    """Train runs as one stack (:func:`~localmixup.paper.engine.stacked.train_stacked`; a single run:
    :func:`~localmixup.paper.engine.train.train_run`), write their records atomically, then delete their
    checkpoint (see :func:`~.run_one`); return the records' paths."""
    checkpoint = checkpoint_path(configs) if checkpoint_every is not None else None
    options = dict(fast=fast, progress=progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every or 0.0)
    if len(configs) == 1:
        records = [train_run(configs[0], device, **options)]
    else:
        records = train_stacked(configs, device, **options)
    paths = [str(write_record(record_path(c), r)) for c, r in zip(configs, records)]
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return paths


def unused_checkpoints(configs: Sequence[TrainConfig], planned: Iterable[Path]) -> list[Path]:
    """Checkpoints beside the records of ``configs`` other than the ``planned`` ones (those of the
    pending runs or stacks, :func:`~.checkpoint_path`): no run will resume them."""
    folders = {record_path(c).parent / ".checkpoints" for c in configs}
    used = set(planned)
    return sorted(p for folder in folders for p in folder.glob("*.pt") if p not in used)


def clean_temporary(folders: Iterable[Path]) -> int:
    """Remove temporary files that a killed :func:`~localmixup.paper.records.atomic_write` left behind
    (records, and checkpoints in ``.checkpoints/``)."""
    removed = 0
    for folder in set(folders):
        for tmp in [*Path(folder).glob(".*.json.*.tmp"), *Path(folder).glob(".checkpoints/.*.pt.*.tmp")]:
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


BACKENDS = ("local", "ray")


def check_backend(backend: str = "local", address: str | None = None, gpus_per_run: float | None = None,
                  jobs: int = 1, max_retries: int = 2, device: str | None = None,
                  cpus_per_run: int | None = None, stack: int = 1, checkpoint_every: float | None = None) -> float | None:
    """Validate the execution options of :func:`~.run_sweep` (before anything runs or is written);
    return ``gpus_per_run`` as a number (None for none). Raises ``ValueError`` naming the parameter."""
    check_choice("backend", backend, BACKENDS)
    check_integer("jobs", jobs, low=1)
    check_integer("max_retries", max_retries, low=0)
    check_integer("stack", stack, low=1)
    if checkpoint_every is not None:
        check_real("checkpoint_every", checkpoint_every, low=0.0)
    if cpus_per_run is not None:
        check_integer("cpus_per_run", cpus_per_run, low=1)
    if gpus_per_run is not None:
        if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, Real) or not math.isfinite(gpus_per_run) \
                or not (0 < gpus_per_run <= 1 or float(gpus_per_run).is_integer() and gpus_per_run > 1):
            raise ValueError(f"gpus_per_run must be a fraction in (0, 1] (runs sharing one GPU) or a positive "
                             f"integer, got {gpus_per_run!r}")
        gpus_per_run = float(gpus_per_run) if gpus_per_run <= 1 else int(gpus_per_run)
    if backend == "local":
        for name, value in (("address", address), ("gpus_per_run", gpus_per_run), ("cpus_per_run", cpus_per_run)):
            if value is not None:
                raise ValueError(f"{name} applies to backend='ray' only (got backend='local', {name}={value!r})")
    else:
        if stack != 1:
            raise ValueError(f"stack applies to backend='local' only; with backend='ray' every run is its own task "
                             f"(got stack={stack})")
        if jobs != 1:
            raise ValueError(f"jobs applies to backend='local' only; with backend='ray' every pending run is a Ray "
                             f"task and the cluster's resources decide how many run at once (got jobs={jobs})")
        if device is not None and str(device).startswith("cuda") and not gpus_per_run:
            raise ValueError(f"device={device!r} with backend='ray' needs gpus_per_run (Ray hides the GPUs from "
                             f"tasks that reserved none)")
        from localmixup.paper.sweep.ray_backend import parse_address

        parse_address(address)
    return gpus_per_run


def run_sweep(configs: Sequence[TrainConfig], *, progress: bool = True, device: str | None = None,
              fast: bool | None = None, jobs: int = 1, backend: str = "local", address: str | None = None,
              gpus_per_run: float | None = None, cpus_per_run: int | None = None, max_retries: int = 2,
              stack: int = 1, checkpoint_every: float | None = 60.0) -> list[Path]:
    """Run every configuration that has no record yet; return the paths of all their records.

    Both backends write the same records (same paths, same metrics for the same seeds) with
    the same atomic writer, skip the runs already recorded and can be interrupted and resumed.

    Args:
        configs: the runs (e.g. from :func:`~.make_configs`).
        progress: tqdm bars over runs (and epochs, local backend).
        device: default CUDA if visible, else CPU (with Ray: in each worker; CUDA only where the
            task was given a GPU through ``gpus_per_run``).
        fast: CUDA-graph step (default on CUDA).
        jobs: local backend: runs trained at once in separate processes (on one GPU, several
            processes keep it busier at small batches); 1 runs them in this process.
        backend: ``"local"`` (this machine) or ``"ray"`` (one Ray task per pending run, see
            :mod:`localmixup.paper.sweep.ray_backend`; needs ``pip install 'localmixup[ray]'``).
        address: Ray only: ``"HOST:PORT"`` of the head node; ``"auto"`` or None: ``$RAY_ADDRESS``,
            else the cluster last started on this machine, else (None only) a new Ray instance
            on this machine alone. An existing connection (``ray.init`` in a notebook) is reused.
        gpus_per_run: Ray only: GPUs reserved per run, in (0, 1] (e.g. 0.25: four runs share a
            GPU) or a positive integer; None: CPU runs.
        cpus_per_run: Ray only: CPU slots reserved per run, which is also its number of torch
            threads; default: this process's ``torch.get_num_threads()`` (what the local backend
            trains with, so CPU runs give identical numbers), 1 for GPU runs.
        max_retries: Ray only: retries of a run whose worker process died, before it is recorded
            as failed. A run whose training raises is recorded as failed at once (not retried).
        stack: local backend: train up to this many runs of one recipe (differing in seed, method
            or alpha; not AdaMixup) as one stacked model (:mod:`localmixup.paper.engine.stacked`), for GPUs that
            small batches leave idle. Their records are written together when the stack ends, so
            an interrupted stack is trained again.
        checkpoint_every: local backend: seconds between two checkpoints of a run (or stack) in
            progress, saved at the end of an epoch in ``.checkpoints/`` beside the records (0: every
            epoch; None: none). A restarted sweep resumes an interrupted run from its checkpoint,
            exactly where it stopped; the checkpoint is deleted once the record is written.
    """
    from tqdm.auto import tqdm

    gpus_per_run = check_backend(backend, address, gpus_per_run, jobs, max_retries, device, cpus_per_run, stack,
                                 checkpoint_every)
    jobs = check_integer("jobs", jobs, low=1)
    todo = pending(configs)
    groups = stacks(todo, stack) if backend == "local" else [[c] for c in todo]
    planned = [checkpoint_path(g) for g in groups] if backend == "local" else []
    resuming = sum(len(g) for g, path in zip(groups, planned) if path.is_file())
    stale = unused_checkpoints(configs, planned)
    if stale:
        print(f"{len(stale)} checkpoint(s) in {sorted({str(p.parent) for p in stale})} belong to no run still to train "
              f"(another --stack, or other runs): they are left alone and not resumed", flush=True)
    print(f"{len(configs)} run{'s' if len(configs) != 1 else ''}, {len(configs) - len(todo)} already recorded, {len(todo)} to train"
          + (f" ({resuming} resuming from a checkpoint)" if resuming else ""), flush=True)
    connected = None
    if backend == "ray" and todo:
        from localmixup.paper.sweep.ray_backend import check_resources, connect, resolve_cpus

        cpus_per_run = resolve_cpus(cpus_per_run, gpus_per_run)
        connected = connect(address)  # fail fast on a bad address or a cluster too small, before anything is written
    try:
        if connected is not None:
            check_resources(gpus_per_run, cpus_per_run)
        clean_temporary(record_path(c).parent for c in configs)
        for dataset in dict.fromkeys(c.dataset for c in todo):
            load_arrays(dataset)  # fail early, with one clear message, if a dataset is missing
    except BaseException:
        if connected:
            import ray

            ray.shutdown()
        raise
    if backend == "ray":
        if todo:
            from localmixup.paper.sweep.ray_backend import run_ray

            run_ray(todo, gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run, device=device, fast=fast,
                    progress=progress, max_retries=max_retries, connected=connected)
        return [record_path(c) for c in configs]
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress)
    if jobs == 1 or len(groups) <= 1:
        for group in groups:
            c = group[0]
            bar.set_postfix_str(f"{c.dataset} {c.method} seed {c.seed}" + (f" (+{len(group) - 1} stacked)" if len(group) > 1 else ""))
            run_stack(group, device, fast, progress, checkpoint_every)
            bar.update(len(group))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run_stack, group, device, fast, False, checkpoint_every) for group in groups]
            for future in as_completed(futures):
                bar.update(len(future.result()))
    bar.close()
    return [record_path(c) for c in configs]

