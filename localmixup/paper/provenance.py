"""Where a run or a chapter comes from: library versions, device, host CPU, commit, date."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from functools import cache
from pathlib import Path

import torch

from localmixup.paper.record_files import project_root


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
    """Commit of the code this process runs, as it stood when the process first read it, or
    ``unknown`` outside a git repository.

    The code is the ``localmixup`` package this process imported: where it lies in a git checkout
    (a clone, an editable install), that checkout's commit, whichever project the results are
    written to (a sweep started from another checkout of the project still runs this code);
    otherwise (installed from a wheel) the commit of the project,
    :func:`~localmixup.paper.record_files.project_root` (``$LOCALMIXUP_ROOT``, else the nearest
    parent of the working directory holding ``_toc.yml``, else the working directory).

    ``+dirty`` follows the commit if tracked files other than ``book/`` and ``results/`` were
    modified then, or if the checkout has changed since (a new commit, an edit): a long-lived
    process (a sweep, its worker pool) keeps the code it loaded, so a later commit is not the
    code that trained its runs. The first reading is taken when this module is imported, which
    is when a sweep or one of its workers loads the trainer.
    """
    root = code_checkout() or project_root()
    first = _first_state(root)
    if first == "unknown" or _state(root) == first:
        return first
    return first.removesuffix("+dirty") + "+dirty"


def code_checkout() -> Path | None:
    """The git checkout holding the imported ``localmixup`` package (its parent folder holds
    ``.git``), or None where the package is installed outside one."""
    import localmixup

    root = Path(localmixup.__file__).resolve().parent.parent
    return root if (root / ".git").exists() else None


@cache
def _first_state(root: Path) -> str:
    return _state(root)


def _state(root: Path) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        # Executed chapters and run records are outputs, not code: they do not make the commit dirty.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!book", ":!results"],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def cpu_name() -> str:
    """The host CPU as the math libraries see it: model, family/model/stepping, torch's vector ISA.

    CPU results are bit-reproducible on one kind of CPU only: oneDNN, MKL and torch pick their
    kernels (and so the rounding) from the processor, and one epoch of LeNet-5 differs by up to a
    point of test error between two of those choices.
    """
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    ids = ", ".join(f"{k.split()[-1]} {fields[k]}" for k in ("cpu family", "model", "stepping") if k in fields)
    return f"{name} ({ids}), {torch.backends.cpu.get_cpu_capability()}" if ids else f"{name}, {torch.backends.cpu.get_cpu_capability()}"


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
        "cpu": cpu_name(),
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


_first_state(code_checkout() or project_root())  # the code this process runs is the code as it stands now
