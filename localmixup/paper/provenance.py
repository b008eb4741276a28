"""Where a run or a chapter comes from: library versions, device, commit, date."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from functools import cache
from pathlib import Path

import torch

from localmixup.paper.records import project_root


def device_name(device: torch.device | str | None = None) -> str:
    """Human-readable name of ``device`` (default: CUDA if available, else CPU)."""
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def git_commit() -> str:
    """Commit of the project whose results are being written (``+dirty`` if its tracked files other than
    ``book/`` and ``results/`` are modified), or ``unknown`` outside a git repository.

    The project is :func:`~localmixup.paper.records.project_root` (``$LOCALMIXUP_ROOT``, else the
    nearest parent of the working directory holding ``_toc.yml``, else the working directory), not
    the place the package is installed: a record names the code of the project it belongs to.
    """
    return _commit_of(project_root())


@cache
def _commit_of(root: Path) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        # Executed chapters and run records are outputs, not code: they do not make the commit dirty.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!book", ":!results"],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def environment(device: torch.device | str | None = None) -> dict[str, str]:
    """Versions, device, commit and UTC time, to store beside every result."""
    import numpy
    import torchvision

    from localmixup import __version__

    return {
        "localmixup": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "device": device_name(device),
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
