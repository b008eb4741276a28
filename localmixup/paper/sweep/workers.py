"""Worker processes that die with their parent, whatever kills it, from the moment they start.

A sweep with ``jobs`` > 1 trains its runs in a pool of spawned processes. If the sweep is killed
(SIGKILL, OOM killer, a closed terminal), its workers must not go on training and writing records
nobody waits for: each worker asks the kernel to kill it when its parent dies
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``, Linux) as the very first thing it does (``worker_start.py``,
run while it unpickles the name multiprocessing sends it ahead of everything else, before it imports
anything heavy), and a watchdog thread checks the parent's pid every second (every POSIX system), in
case the first is unavailable.
"""

from __future__ import annotations

import multiprocessing.context
import operator
import os
import runpy
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from localmixup.paper.sweep.worker_start import RUN_NAME

WATCH_EVERY_S = 1.0
_START = Path(__file__).with_name("worker_start.py")


class _Start:
    """Unpickled in the worker as ``runpy.run_path(worker_start.py)``: the death signal, set by file, no package imported."""

    def __init__(self, parent: int, name: str) -> None:
        self.parent, self.name = parent, name

    def __reduce__(self) -> tuple:
        return runpy.run_path, (str(_START), {"PARENT": self.parent, "NAME": self.name}, RUN_NAME)


class _WorkerName(str):
    """A worker's name, which multiprocessing pickles first of all it sends a spawned process: unpickled,
    it runs :class:`_Start` and is the plain name again."""

    def __reduce__(self) -> tuple:
        return operator.getitem, (_Start(os.getpid(), str(self)), "NAME")


class SweepWorker(multiprocessing.context.SpawnProcess):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._name = _WorkerName(self._name)


class _DyingContext(multiprocessing.context.SpawnContext):
    """The spawn context whose processes set their death signal first (see the module docstring)."""

    Process = SweepWorker


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:  # re-parented: the parent is gone
            os._exit(1)
        time.sleep(WATCH_EVERY_S)


def init_worker(parent: int, threads: int | None) -> None:
    """Initializer of a worker process: die with process ``parent`` (watchdog; the death signal is set
    already); train with ``threads`` torch threads."""
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="parent-watchdog", daemon=True).start()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def worker_pool(jobs: int, threads: int | None = None) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawned processes (each with ``threads`` torch threads, None: torch's default)
    that die with this process."""
    return ProcessPoolExecutor(jobs, mp_context=_DyingContext(), initializer=init_worker,
                               initargs=(os.getpid(), threads))
