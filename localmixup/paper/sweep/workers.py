"""Worker processes that die with their parent, whatever kills it.

A sweep with ``jobs`` > 1 trains its runs in a pool of spawned processes. If the sweep is killed
(SIGKILL, OOM killer, a closed terminal), its workers must not go on training and writing records
nobody waits for: each worker asks the kernel to kill it when its parent dies
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``, Linux), and a watchdog thread checks the parent's pid every
second (every POSIX system), in case the first is unavailable or the parent died before it was set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_EVERY_S = 1.0


def _kill_me_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # best effort: the watchdog covers a failure


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:  # re-parented: the parent is gone
            os._exit(1)
        time.sleep(WATCH_EVERY_S)


def init_worker(parent: int, threads: int | None) -> None:
    """Initializer of a worker process: die with process ``parent``; train with ``threads`` torch threads."""
    _kill_me_with_parent()
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="parent-watchdog", daemon=True).start()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def worker_pool(jobs: int, threads: int | None = None) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawned processes (each with ``threads`` torch threads, None: torch's default)
    that die with this process."""
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
                               initargs=(os.getpid(), threads))
