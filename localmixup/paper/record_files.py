"""Run records: one JSON file per run, written atomically, so sweeps can resume.

Records are strict JSON (RFC 8259), readable by any JSON tool. JSON has no NaN or infinity, so
a number that is not finite (a diverged loss, for instance) is written as ``null`` and listed
in the record's ``"non_finite"`` entry: ``[{"at": ["epochs", 2, "train_loss"], "value": "NaN"},
...]`` (``"NaN"``, ``"Infinity"`` or ``"-Infinity"``). :func:`~.read_record` puts the values back
and drops that entry, so Python code sees the float it recorded.

A record or checkpoint that cannot be read (not JSON, truncated, empty, not a record) raises
:class:`~.CorruptFile`, which names the file and what to do; it is never deleted.
:func:`~.set_aside` moves such a file to a ``corrupt/`` folder beside it, so that its run is
trained again (the sweep's ``--set-aside-corrupt``: ``localmixup sweep`` and the spirals sweep alike).
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

NON_FINITE = "non_finite"  # the record entry listing the numbers written as null
CORRUPT_FOLDER = "corrupt"  # where set_aside moves unreadable files (beside them); load_records skips it
#: What every record of an image run holds (train_run's records, failed ones included).
RUN_FIELDS: Mapping[str, type] = {"config": dict, "status": str}
_JSON_NAMES = {float("inf"): "Infinity", float("-inf"): "-Infinity"}


class CorruptFile(ValueError):
    """A record or checkpoint that cannot be read; the message names the file and what to do."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path} is corrupt ({reason}); it is left in place. To train its runs again, run the sweep "
                         f"again with --set-aside-corrupt, which moves it to {self.path.parent / CORRUPT_FOLDER}/")


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
    """Dataset cache ``<root>/data`` (``$LOCALMIXUP_DATA`` overrides it: a folder, made if absent; a
    ``ValueError`` naming the variable if it is empty or names something other than a folder)."""
    if "LOCALMIXUP_DATA" not in os.environ:
        return project_root() / "data"
    folder = Path(os.environ["LOCALMIXUP_DATA"])
    if not os.environ["LOCALMIXUP_DATA"] or (folder.exists() and not folder.is_dir()):
        raise ValueError(f"$LOCALMIXUP_DATA must name a folder for the datasets (made if absent), got "
                         f"{os.environ['LOCALMIXUP_DATA']!r}, {'empty' if not folder.parts else 'which is not a folder'}")
    return folder


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside ``path``, open for writing, with an ordinary file's permissions (0666 less
    the umask, which the system applies: unlike ``mkstemp``'s 0600, and without reading the umask,
    which can only be read by changing it)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def atomic_write(path: Path, write: Callable[[IO[Any]], None], *, binary: bool = False) -> Path:
    """Create or replace ``path`` atomically with what ``write(file)`` writes: a reader (or a
    crash) sees the whole file or the previous state, never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _strict(value: Any, at: list[Any], found: list[dict[str, Any]]) -> Any:
    """``value`` with every non-finite float replaced by None, each listed in ``found`` with its place."""
    if isinstance(value, float) and not math.isfinite(value):
        found.append({"at": list(at), "value": _JSON_NAMES.get(value, "NaN")})
        return None
    if isinstance(value, dict):
        # the place of a key is named as JSON writes it ("1" for 1, "true" for True)
        return {k: _strict(v, [*at, k if isinstance(k, str) else json.dumps(k)], found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v, [*at, i], found) for i, v in enumerate(value)]
    return value


def write_record(path: Path, record: dict[str, Any], *, compact: bool = False) -> Path:
    """Write ``record`` as strict JSON to ``path`` atomically (:func:`~.atomic_write`); non-finite
    numbers become ``null``, listed in ``"non_finite"`` (see the module's docstring). ``compact``:
    no indentation nor spaces (for files holding many runs)."""
    if NON_FINITE in record:
        raise ValueError(f"a record must not hold the key {NON_FINITE!r}: write_record writes it")
    found: list[dict[str, Any]] = []
    strict = _strict(record, [], found)
    if found:
        strict[NON_FINITE] = found
    layout = {"separators": (",", ":")} if compact else {"indent": 1}
    return atomic_write(path, lambda f: json.dump(strict, f, sort_keys=True, allow_nan=False, **layout))


def _restore(record: dict[str, Any], path: Path) -> None:
    """Put back (in place) the non-finite numbers listed in ``record["non_finite"]``."""
    entries = record.pop(NON_FINITE, [])
    try:
        for entry in entries:
            *parents, last = entry["at"]
            container = record
            for key in parents:
                container = container[key]
            if container[last] is not None:
                raise ValueError
            container[last] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[entry["value"]]
    except (KeyError, IndexError, TypeError, ValueError):
        raise CorruptFile(path, f"its {NON_FINITE!r} entry does not match its content") from None


def read_record(path: Path, fields: Mapping[str, type | tuple[type, ...]] | None = None) -> dict[str, Any]:
    """Read one record written by :func:`~.write_record`.

    Args:
        path: the record's file.
        fields: keys the record must hold, with their types (e.g. :data:`~.RUN_FIELDS`).

    Raises:
        CorruptFile: the file is empty, not JSON, not a JSON object, an empty object, or lacks
            one of ``fields`` (or holds it with another type).
        RuntimeError: the file cannot be read at all (permissions, a folder, ...).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CorruptFile(path, "not text: binary content") from None
    except OSError as error:
        raise RuntimeError(f"cannot read the record {path}: {error.strerror or error}") from None
    if not text.strip():
        raise CorruptFile(path, "empty file")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise CorruptFile(path, f"not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    if not isinstance(record, dict):
        kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
        raise CorruptFile(path, f"{kinds.get(type(record), 'a number')} where a JSON object was expected")
    if not record:
        raise CorruptFile(path, "an empty JSON object")
    _restore(record, path)
    fields = fields or {}
    absent = [k for k in fields if k not in record]
    if absent:
        raise CorruptFile(path, f"no {', '.join(map(repr, absent))} entry")
    wrong = [k for k, kind in fields.items() if not isinstance(record[k], kind)]
    if wrong:
        raise CorruptFile(path, f"its {wrong[0]!r} entry is a {type(record[wrong[0]]).__name__}")
    return record


def load_records(folder: Path, pattern: str = "*.json",
                 fields: Mapping[str, type | tuple[type, ...]] | None = None) -> list[dict[str, Any]]:
    """Every record in ``folder`` matching ``pattern`` (recursively, but not in the ``corrupt/``
    folders of :func:`~.set_aside`), sorted by path; ``fields`` as in :func:`~.read_record`."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    paths = (p for p in sorted(folder.rglob(pattern)) if CORRUPT_FOLDER not in p.relative_to(folder).parts[:-1])
    return [read_record(p, fields) for p in paths]


def missing(paths: Iterable[Path]) -> list[Path]:
    """The paths among ``paths`` that hold no record yet: the runs a sweep still owes."""
    return [Path(p) for p in paths if not Path(p).is_file()]


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The dictionary saved by ``torch.save`` in ``path`` (tensors on the CPU, ``weights_only``).

    Raises :class:`~.CorruptFile` naming ``path`` if it is empty, truncated or not such a file
    (torch alone raises a zip or ``EOFError`` that names no file), ``RuntimeError`` if it cannot
    be read at all.
    """
    import torch

    path = Path(path)
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except OSError as error:
        raise RuntimeError(f"cannot read the checkpoint {path}: {error.strerror or error}") from None
    if empty:
        raise CorruptFile(path, "empty file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - by damage: RuntimeError (zip), OSError, EOFError, KeyError, UnpicklingError...
        text = " ".join(f"{type(error).__name__}: {error}".split())
        raise CorruptFile(path, f"not a complete torch checkpoint; torch says {text[:160]}") from None
    if not isinstance(state, dict):
        raise CorruptFile(path, f"holds a {type(state).__name__}, not a checkpoint")
    return state


def set_aside(path: Path) -> Path:
    """Move ``path`` into the ``corrupt/`` folder beside it (one atomic rename; a name already
    taken there gets a ``.1``, ``.2``... suffix, so nothing is overwritten); return the new path."""
    path = Path(path)
    folder = path.parent / CORRUPT_FOLDER
    try:
        folder.mkdir(exist_ok=True)
        target, n = folder / path.name, 0
        while target.exists():
            n += 1
            target = folder / f"{path.name}.{n}"
        os.rename(path, target)
    except OSError as error:  # corrupt/ is a file, or the folder cannot be written
        raise ValueError(f"cannot set {path} aside into {folder}/ ({error.strerror or error}): make {path.parent} writable "
                         f"and {folder} a folder, or move {path} away by hand") from None
    return target


def find_corrupt(records: Iterable[Path], checkpoints: Iterable[Path] = (),
                 fields: Mapping[str, type | tuple[type, ...]] | None = RUN_FIELDS,
                 read: Callable[[Path], Any] | None = None) -> list[CorruptFile]:
    """The errors of the existing files among ``records`` (read with ``fields``, or with ``read``
    where a kind of record has its own reader) and ``checkpoints`` that cannot be read; absent
    files are skipped."""
    found = []
    for paths, reader in ((records, read or (lambda p: read_record(p, fields))), (checkpoints, read_checkpoint)):
        for path in paths:
            if Path(path).is_file():
                try:
                    reader(path)
                except CorruptFile as error:
                    found.append(error)
    return found


def refuse_or_set_aside(corrupt: list[CorruptFile], set_aside_corrupt: bool) -> None:
    """A sweep's answer to its unreadable files (:func:`find_corrupt`): refuse to start, naming
    the first (its message says how to set it aside), or with ``set_aside_corrupt`` move each to
    the ``corrupt/`` folder beside it, saying so (its runs are then trained again)."""
    if corrupt and not set_aside_corrupt:
        raise corrupt[0] if len(corrupt) == 1 else ValueError(f"{len(corrupt)} corrupt files; the first: {corrupt[0]}")
    for error in corrupt:
        print(f"set aside {error.path} -> {set_aside(error.path)} ({error.reason}): its runs will be trained again", flush=True)
