"""Resumable multi-seed Table-1 sweeps: one atomic JSON record per run, local or on Ray.

What a sweep will do is decided first (:mod:`~localmixup.paper.sweep.plan`: runs, record paths,
pending runs, writability of every file); then the pending runs train, one group at a time
(:func:`~.run_group`, a top-level picklable function of picklable configurations, so other
executors can call it). A sweep killed at any moment loses at most the runs in progress: finished
runs are files, written atomically, and are never recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import torch

from localmixup.paper.data import load_arrays
from localmixup.paper.training.config import TrainConfig
from localmixup.paper.training.fit import fit
from localmixup.paper.training.prepare import resolve_device
from localmixup.paper.training.stacked import stacks
from localmixup.paper.record_files import read_record, write_record
from localmixup.paper.sweep.plan import (checkpoint_path, check_writable, clean_temporary, pending, record_path,
                                         trained_stacked, unused_checkpoints)
from localmixup.paper.sweep.workers import worker_pool
from localmixup.checks import check_choice, check_integer, check_real

SWEEP_BACKENDS = ("local", "ray")


def run_group(configs: Sequence[TrainConfig], stack: int = 1, device: str | None = None, fast: bool | None = None,
              progress: bool = False, checkpoint_every: float | None = None) -> list[str]:
    """Train runs of one group of :func:`~localmixup.paper.training.stacked.stacks` (stacked if the sweep's
    ``stack`` > 1 and they may be, see :func:`~localmixup.paper.sweep.plan.trained_stacked`), write their
    records atomically, then delete their checkpoint; return the records' paths.

    Failed runs (non-finite loss) are recorded too (``status="failed"``), so they are not repeated.
    With ``checkpoint_every`` (seconds), the runs keep a checkpoint
    (:func:`~localmixup.paper.sweep.plan.checkpoint_path`) that an interrupted sweep resumes from.
    """
    checkpoint = checkpoint_path(configs, stack) if checkpoint_every is not None else None
    records = fit(configs, device, stacked=trained_stacked(configs[0], stack), fast=fast, progress=progress,
                  checkpoint=checkpoint, checkpoint_every=checkpoint_every or 0.0)
    paths = [str(write_record(record_path(c, stack), r.to_dict())) for c, r in zip(configs, records)]
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return paths


def check_backend(backend: str = "local", address: str | None = None, gpus_per_run: float | None = None,
                  jobs: int = 1, max_retries: int = 2, device: str | None = None,
                  cpus_per_run: int | None = None, stack: int = 1, checkpoint_every: float | None = None,
                  threads: int | None = None) -> float | None:
    """Validate the execution options of :func:`~.run_sweep` (before anything runs or is written);
    return ``gpus_per_run`` as a number (None for none). Raises ``ValueError`` naming the parameter."""
    check_choice("backend", backend, SWEEP_BACKENDS)
    check_integer("jobs", jobs, low=1)
    check_integer("max_retries", max_retries, low=0)
    check_integer("stack", stack, low=1)
    if checkpoint_every is not None:
        check_real("checkpoint_every", checkpoint_every, low=0.0, high=math.inf, high_open=True)
    if cpus_per_run is not None:
        check_integer("cpus_per_run", cpus_per_run, low=1)
    if threads is not None:
        check_integer("threads", threads, low=1)
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
        if threads is not None:
            raise ValueError(f"threads applies to backend='local' only; with backend='ray' a run's threads are its "
                             f"cpus_per_run (got threads={threads})")
        if device is not None and str(device).startswith("cuda") and not gpus_per_run:
            raise ValueError(f"device={device!r} with backend='ray' needs gpus_per_run (Ray hides the GPUs from "
                             f"tasks that reserved none)")
        from localmixup.paper.sweep.ray_backend import parse_address

        parse_address(address)
    return gpus_per_run


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep left: ``paths``, the record of every run asked for (in order); ``trained``, the
    number of runs trained by this call; ``failed``, the records (of this call or earlier) of runs
    that failed."""

    paths: list[Path]
    trained: int
    failed: list[Path]

    def describe_failures(self) -> str:
        """One line saying how many runs failed and where their records are ('' if none)."""
        if not self.failed:
            return ""
        folders = sorted({str(p.parent) for p in self.failed})
        return (f"{len(self.failed)} of {len(self.paths)} run(s) failed (status 'failed', the reason in 'error'): "
                f"{', '.join(p.name for p in self.failed[:5])}{' ...' if len(self.failed) > 5 else ''} in "
                f"{', '.join(folders)}; delete a record to train its run again")


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Within the block, torch uses ``threads`` intra-op threads; the count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_sweep(configs: Sequence[TrainConfig], *, progress: bool = True, device: str | None = None,
              fast: bool | None = None, jobs: int = 1, threads: int | None = None, backend: str = "local",
              address: str | None = None, gpus_per_run: float | None = None, cpus_per_run: int | None = None,
              max_retries: int = 2, stack: int = 1, checkpoint_every: float | None = 60.0) -> SweepSummary:
    """Run every configuration that has no record yet; return a :class:`~.SweepSummary`.

    Both backends write the same records (same paths, same metrics for the same seeds) with
    the same atomic writer, skip the runs already recorded and can be interrupted and resumed.
    Before anything trains, every record and checkpoint the sweep will write is checked to be
    writable (:func:`~localmixup.paper.sweep.plan.check_writable`).

    Args:
        configs: the runs (e.g. from :func:`~localmixup.paper.sweep.plan.make_configs`).
        progress: tqdm bars over runs (and epochs, local backend).
        device: default CUDA if visible, else CPU (with Ray: in each worker; CUDA only where the
            task was given a GPU through ``gpus_per_run``).
        fast: CUDA-graph step (default on CUDA).
        jobs: local backend: runs trained at once in separate processes, which die with this one
            (:mod:`~localmixup.paper.sweep.workers`); 1 trains them in this process. On a CPU,
            ``jobs`` = cores (with one thread each) trains the most runs per hour.
        threads: local backend: torch threads of each process that trains (None: 1). A CPU run's
            numbers depend on it (rounding), so whatever ``jobs``, the same seed gives the same
            record; a sweep refuses to go on with CPU records made with another thread count.
        backend: ``"local"`` (this machine) or ``"ray"`` (one Ray task per pending run, see
            :mod:`localmixup.paper.sweep.ray_backend`; needs ``pip install 'localmixup[ray]'``).
        address: Ray only: ``"HOST:PORT"`` of the head node; ``"auto"`` or None: ``$RAY_ADDRESS``,
            else the cluster last started on this machine, else (None only) a new Ray instance
            on this machine alone. An existing connection (``ray.init`` in a notebook) is reused.
        gpus_per_run: Ray only: GPUs reserved per run, in (0, 1] (e.g. 0.25: four runs share a
            GPU) or a positive integer; None: CPU runs.
        cpus_per_run: Ray only: CPU slots reserved per run, which is also its number of torch
            threads; default 1, as the local backend's ``threads`` (so CPU runs give identical numbers).
        max_retries: Ray only: retries of a run whose worker process died, before it is recorded
            as failed. A run whose training raises is recorded as failed at once (not retried).
        stack: local backend: train up to this many runs of one recipe (differing in seed, method
            or decay; not AdaMixup) as one stacked model (:mod:`localmixup.paper.training.stacked`), for
            GPUs that small batches leave idle. Stacked runs round differently from runs trained
            alone: their records go to a folder of their own (``<profile>-stacked``). Their records
            are written together when the stack ends.
        checkpoint_every: local backend: seconds between two checkpoints of a run (or stack) in
            progress, saved at the end of an epoch in ``.checkpoints/`` beside the records (0: every
            epoch; None: none). A restarted sweep resumes an interrupted run from its checkpoint,
            exactly where it stopped; the checkpoint is deleted once the record is written.
    """
    from tqdm.auto import tqdm

    gpus_per_run = check_backend(backend, address, gpus_per_run, jobs, max_retries, device, cpus_per_run, stack,
                                 checkpoint_every, threads)
    configs = list(configs)
    if backend == "local":
        threads = 1 if threads is None else threads
        expected = threads if resolve_device(device).type == "cpu" else None
    else:
        from localmixup.paper.sweep.ray_backend import resolve_cpus

        expected = None if gpus_per_run else resolve_cpus(cpus_per_run)
    todo = pending(configs, stack, expected)
    groups = stacks(todo, stack) if backend == "local" else [[c] for c in todo]
    planned = [checkpoint_path(g, stack) for g in groups] if backend == "local" and checkpoint_every is not None else []
    check_writable([*(record_path(c, stack) for c in todo), *planned])
    resuming = sum(len(g) for g, path in zip(groups, planned) if path.is_file())
    stale = unused_checkpoints(configs, planned, stack)
    if stale:
        print(f"{len(stale)} checkpoint(s) in {sorted({str(p.parent) for p in stale})} belong to no run still to train "
              f"(another --stack, or other runs): they are left alone and not resumed", flush=True)
    print(f"{len(configs)} run{'s' if len(configs) != 1 else ''}, {len(configs) - len(todo)} already recorded, {len(todo)} to train"
          + (f" ({resuming} resuming from a checkpoint)" if resuming else ""), flush=True)
    connected = None
    if backend == "ray" and todo:
        from localmixup.paper.sweep.ray_backend import check_resources, connect, resolve_cpus

        cpus_per_run = resolve_cpus(cpus_per_run)
        connected = connect(address)  # fail fast on a bad address or a cluster too small, before anything is written
    try:
        if connected is not None:
            check_resources(gpus_per_run, cpus_per_run)
        clean_temporary(record_path(c, stack).parent for c in configs)
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
    elif groups:
        bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress)
        if jobs == 1 or len(groups) == 1:
            with torch_threads(threads):
                for group in groups:
                    c = group[0]
                    bar.set_postfix_str(f"{c.dataset} {c.method} seed {c.seed}"
                                        + (f" (+{len(group) - 1} stacked)" if len(group) > 1 else ""))
                    run_group(group, stack, device, fast, progress, checkpoint_every)
                    bar.update(len(group))
        else:
            from concurrent.futures import as_completed

            with worker_pool(jobs, threads) as pool:
                futures = [pool.submit(run_group, group, stack, device, fast, False, checkpoint_every) for group in groups]
                for future in as_completed(futures):
                    bar.update(len(future.result()))
        bar.close()
    paths = [record_path(c, stack) for c in configs]
    failed = [p for p in paths if p.is_file() and read_record(p).get("status") != "ok"]
    return SweepSummary(paths, len(todo), failed)

