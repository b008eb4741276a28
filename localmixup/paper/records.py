"""Run records: one JSON file per run, written atomically, so sweeps can resume."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def project_root() -> Path:
    """The project folder: ``$LOCALMIXUP_ROOT``, else the nearest parent of the working
    directory holding ``_toc.yml``, else the working directory."""
    if "LOCALMIXUP_ROOT" in os.environ:
        return Path(os.environ["LOCALMIXUP_ROOT"]).resolve()
    here = Path.cwd().resolve()
    return next((p for p in (here, *here.parents) if (p / "_toc.yml").is_file()), here)


def results_dir(*parts: str) -> Path:
    """Folder of run records ``<root>/results/<parts...>`` (``$LOCALMIXUP_RESULTS`` overrides results/)."""
    base = Path(os.environ["LOCALMIXUP_RESULTS"]) if "LOCALMIXUP_RESULTS" in os.environ else project_root() / "results"
    return base.joinpath(*parts)


def data_dir() -> Path:
    """Dataset cache ``<root>/data`` (``$LOCALMIXUP_DATA`` overrides it)."""
    return Path(os.environ["LOCALMIXUP_DATA"]) if "LOCALMIXUP_DATA" in os.environ else project_root() / "data"


def atomic_write(path: Path, write: Callable[[IO[Any]], None], *, binary: bool = False) -> Path:
    """Create or replace ``path`` atomically with what ``write(file)`` writes: a reader (or a
    crash) sees the whole file or the previous state, never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; a record is an ordinary file
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_record(path: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as JSON to ``path`` atomically (:func:`~.atomic_write`)."""
    return atomic_write(path, lambda f: json.dump(record, f, indent=1, sort_keys=True, allow_nan=True))


def read_record(path: Path) -> dict[str, Any]:
    """Read one record written by :func:`~.write_record`."""
    with open(path) as f:
        return json.load(f)


def load_records(folder: Path, pattern: str = "*.json") -> list[dict[str, Any]]:
    """Every record in ``folder`` matching ``pattern`` (recursively), sorted by path."""
    folder = Path(folder)
    return [read_record(p) for p in sorted(folder.rglob(pattern))] if folder.is_dir() else []


def missing(paths: Iterable[Path]) -> list[Path]:
    """The paths among ``paths`` that hold no record yet: the runs a sweep still owes."""
    return [Path(p) for p in paths if not Path(p).is_file()]
