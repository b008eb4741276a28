"""The first code a spawned sweep worker runs: ask the kernel to kill it when its parent dies.

Standard library only, and run by its path (``runpy.run_path``, see :mod:`.workers`) while the worker
unpickles its preparation data: before the worker imports the parent's main module, this package or
torch, which takes seconds in which a killed parent's workers would otherwise live on.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
RUN_NAME = "__localmixup_worker__"


def die_with(parent: int) -> None:
    """Be killed (SIGKILL) when the parent dies (Linux; best effort elsewhere: the watchdog of
    :mod:`.workers` covers it), and exit now if process ``parent`` is already gone."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


if __name__ == RUN_NAME:
    die_with(PARENT)  # noqa: F821 (given by runpy.run_path's init_globals)
