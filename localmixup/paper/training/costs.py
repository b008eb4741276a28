"""What a training step of each method costs, measured side by side in one process."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from localmixup.paper.adamixup.method import adamixup_step
from localmixup.paper.training.config import TrainConfig
from localmixup.paper.training.memory import SavedTensorBytes
from localmixup.paper.training.prepare import prepare, resolve_device
from localmixup.paper.training.step import eager_step
from localmixup.paper.models import count_parameters
from localmixup.checks import check_integer


def step_costs(configs: list[TrainConfig], device: torch.device | str | None = None, *, steps: int = 5, rounds: int = 3,
               warmup: int = 1, download: bool | None = None) -> list[dict[str, Any]]:
    """Time and memory of a training step of each configuration, measured side by side in this process.

    Every run is built (:func:`~localmixup.paper.training.prepare.prepare`, from its seed); each first
    takes ``warmup`` untimed steps (the first one under :class:`~.SavedTensorBytes`, and on CUDA with
    the allocator's peak reset), then, ``rounds`` times, each configuration in turn takes ``steps``
    timed steps (the device synchronised before and after). Interleaving the configurations makes
    the load of a shared machine fall on each of them alike. Every step is eager (no CUDA graph)
    so that the methods are compared on the same footing.

    Returns one dict per configuration: ``method``, ``parameters``, ``parameter_counts``
    (AdaMixup's parts; for other methods ``{"classifier": parameters, "total": parameters}``),
    ``steps_per_epoch``, ``seconds_per_step`` (wall-clock, median over the rounds),
    ``seconds_per_epoch`` (``steps_per_epoch * seconds_per_step``: training only, no evaluation),
    ``cpu_seconds_per_step`` and ``cpu_seconds_per_epoch`` (the same with the process's CPU time,
    ``time.process_time()``, summed over its threads: on a CPU it measures the work of a step
    whatever the load of other processes, which a wall-clock time does not; on a GPU it is only
    the host's share), ``saved_for_backward_bytes`` and ``cuda_step_peak_bytes``
    (``max_memory_allocated`` during the first step minus what was allocated before it: the
    step's own transient memory; None on the CPU).
    """
    check_integer("steps", steps, low=1)
    check_integer("rounds", rounds, low=1)
    check_integer("warmup", warmup, low=1)
    device = resolve_device(device)
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    runs = []
    for config in configs:
        run = prepare(config, device, download=download)
        model, optimizer = run.model, run.optimizer
        batches = [(x, y) for _, (x, y) in zip(range(min(len(run.train), steps + warmup)), run.train)]
        if config.method == "adamixup":
            one = lambda x, y, m=model, o=optimizer, g=run.generators["mix"]: adamixup_step(m, o, x, y, g)  # noqa: E731
            counts = model.parameter_counts()
        else:
            one = lambda x, y, m=model, o=optimizer, t=run.mixer: eager_step(m, o, x, y, t)  # noqa: E731
            counts = {"classifier": count_parameters(model), "total": count_parameters(model)}
        saved = SavedTensorBytes(exclude=model.parameters())
        sync()
        base = torch.cuda.memory_allocated(device) if cuda else 0
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        with saved:
            one(*batches[0])
        sync()
        peak = int(torch.cuda.max_memory_allocated(device)) - base if cuda else None
        for i in range(1, warmup):
            one(*batches[i % len(batches)])
        runs.append({"config": config, "step": one, "batches": batches, "times": [], "cpu_times": [],
                     "steps_per_epoch": len(run.train), "parameters": count_parameters(model), "parameter_counts": counts,
                     "saved_for_backward_bytes": saved.bytes, "cuda_step_peak_bytes": peak})
    for _ in range(rounds):
        for run in runs:
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(steps):
                run["step"](*run["batches"][i % len(run["batches"])])
            sync()
            run["times"].append((time.perf_counter() - t0) / steps)
            run["cpu_times"].append((time.process_time() - c0) / steps)
    out = []
    for run in runs:
        per_step, cpu_per_step = statistics.median(run["times"]), statistics.median(run["cpu_times"])
        out.append({"method": run["config"].method, "parameters": run["parameters"], "parameter_counts": run["parameter_counts"],
                    "steps_per_epoch": run["steps_per_epoch"], "seconds_per_step": per_step,
                    "seconds_per_epoch": per_step * run["steps_per_epoch"], "cpu_seconds_per_step": cpu_per_step,
                    "cpu_seconds_per_epoch": cpu_per_step * run["steps_per_epoch"],
                    "saved_for_backward_bytes": run["saved_for_backward_bytes"], "cuda_step_peak_bytes": run["cuda_step_peak_bytes"]})
    return out
