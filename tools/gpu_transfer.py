"""Bring a GPU call's results back: pack records and checkpoints into a few bounded files, unpack them here.

A lent GPU machine returns only what its command leaves under ``$OUT``, at most 8 files of at
most 16 MiB each. ``pack`` (run there, after a sweep) writes the files found under the given
folders of ``results/`` (run records, and the checkpoints of runs in progress in their
``.checkpoints/`` folders) as one byte stream cut into parts, with a manifest of every file's
size and sha256 and every part's size and sha256. ``unpack`` (run here) checks the parts and
each file, then writes the files into ``results/`` atomically: a record already present with
other contents is never overwritten (the whole unpack is refused and nothing is written), an
identical one is left alone, a checkpoint replaces the older one (it is the run's progress).

Usage::

    # on the GPU machine, after the sweep (same command; limits are the defaults)
    PYTHONPATH=. python tools/gpu_transfer.py pack "$OUT" results/table1/paper --newer "$STAMP"
    # here, on the folder the files came back to (files_at)
    python tools/gpu_transfer.py unpack FILES_AT --prune-checkpoints

What does not fit (records first, then checkpoints newest first) is listed in the manifest's
``left_out`` and on stderr, never silently dropped; ``pack`` then exits with status 3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from localmixup.paper.record_files import atomic_write, results_dir

FORMAT = "localmixup-gpu-transfer"
VERSION = 1
MANIFEST = "manifest.json"
MAX_FILES = 8
MAX_BYTES = 16 * 2**20
CHECKPOINTS = ".checkpoints"
_BLOCK = 2**20


class TransferError(RuntimeError):
    """The packed files are incomplete or corrupt, or unpacking would overwrite a different record."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_checkpoint(relative: str) -> bool:
    return CHECKPOINTS in PurePosixPath(relative).parts[:-1]


def _is_temporary(path: Path) -> bool:
    return path.name.endswith(".tmp")  # a write in progress (atomic_write's temporary file)


def _candidates(paths: Sequence[str | Path], results: Path) -> list[Path]:
    files: set[Path] = set()
    for given in paths:
        path = Path(given).resolve()
        if path != results and results not in path.parents:
            raise ValueError(f"paths must lie inside the results folder {results}, got {given}")
        if path.is_file():
            files.add(path)
        elif path.is_dir():
            files.update(p for p in path.rglob("*") if p.is_file())
        else:
            raise ValueError(f"paths must be existing files or folders, got {given}")
    return sorted(p for p in files if not _is_temporary(p))


def pack(out: str | Path, paths: Sequence[str | Path], *, results: str | Path | None = None,
         newer: str | Path | None = None, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Pack the files under ``paths`` (folders or files inside ``results``) into ``out``.

    Args:
        out: folder to write into (created; must not hold a pack already).
        paths: folders or files inside ``results``; folders are taken whole, ``.checkpoints/``
            included, temporary ``*.tmp`` files excluded.
        results: the results folder the manifest's paths are relative to (default
            ``results_dir()``).
        newer: a file whose modification time is the cut-off: only files modified after it are
            packed (those the command just wrote); None packs all.
        max_files: most files written, the manifest included (integer >= 2).
        max_bytes: most bytes per file (integer >= 1024).

    Returns:
        The manifest (also written to ``out/manifest.json``, last): ``files`` (path relative to
        ``results``, size, sha256, offset in the stream), ``parts`` (name, size, sha256),
        ``left_out`` (path, size, why), ``checkpoint_folders`` (each packed folder's
        ``.checkpoints/`` and the checkpoint names it held, packed or not).
    """
    if isinstance(max_files, bool) or not isinstance(max_files, int) or max_files < 2:
        raise ValueError(f"max_files must be an integer >= 2 (the manifest and one part), got {max_files!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1024:
        raise ValueError(f"max_bytes must be an integer >= 1024, got {max_bytes!r}")
    results = Path(results if results is not None else results_dir()).resolve()
    out = Path(out)
    if (out / MANIFEST).exists() or any(out.glob("part-*.bin")):
        raise ValueError(f"out already holds a pack ({out}); give an empty folder")
    cutoff = Path(newer).stat().st_mtime if newer is not None else None
    found = _candidates(paths, results)
    relative = {p: p.relative_to(results).as_posix() for p in found}
    checkpoint_folders: dict[str, list[str]] = {}
    for p in found:
        if _is_checkpoint(relative[p]):
            checkpoint_folders.setdefault(PurePosixPath(relative[p]).parent.as_posix(), []).append(p.name)
    chosen = [p for p in found if cutoff is None or p.stat().st_mtime > cutoff]
    records = [p for p in chosen if not _is_checkpoint(relative[p])]
    checkpoints = sorted((p for p in chosen if _is_checkpoint(relative[p])), key=lambda p: -p.stat().st_mtime)

    capacity = (max_files - 1) * max_bytes
    files, left_out, offset = [], [], 0
    with _Parts(out, max_bytes) as parts:
        for p in [*records, *checkpoints]:
            size = p.stat().st_size
            if offset + size > capacity:
                left_out.append({"path": relative[p], "size": size,
                                 "why": f"over the {max_files - 1} x {max_bytes} bytes of parts"})
                continue
            digest, read = hashlib.sha256(), 0
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(min(_BLOCK, size + 1 - read)), b""):
                    read += len(block)
                    if read > size:
                        break
                    digest.update(block)
                    parts.write(block)
            if read != size:
                raise ValueError(f"{p} changed while it was packed: run pack after the sweep has stopped")
            files.append({"path": relative[p], "size": size, "sha256": digest.hexdigest(), "offset": offset})
            offset += size
    manifest = {"format": FORMAT, "version": VERSION, "max_bytes": max_bytes, "files": files,
                "parts": parts.entries, "left_out": left_out,
                "checkpoint_folders": {k: sorted(v) for k, v in sorted(checkpoint_folders.items())}}
    text = json.dumps(manifest, indent=1)
    if len(text.encode()) > max_bytes:
        raise ValueError(f"the manifest of {len(files)} files exceeds max_bytes={max_bytes}; pack fewer folders")
    atomic_write(out / MANIFEST, lambda f: f.write(text))
    for item in left_out:
        print(f"left out {item['path']} ({item['size']} bytes): {item['why']}", file=sys.stderr)
    return manifest


class _Parts:
    """A byte stream written as files ``part-NN.bin`` of at most ``max_bytes`` each, with their
    sizes and sha256 in ``entries``."""

    def __init__(self, out: Path, max_bytes: int) -> None:
        self.out, self.max_bytes = out, max_bytes
        self.entries: list[dict[str, Any]] = []
        self._file, self._digest, self._written = None, None, 0

    def __enter__(self) -> "_Parts":
        self.out.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._file is None or self._written == self.max_bytes:
                self._close_part()
                name = f"part-{len(self.entries):02d}.bin"
                self.entries.append({"name": name})
                self._file, self._digest, self._written = open(self.out / name, "wb"), hashlib.sha256(), 0
            take = view[: self.max_bytes - self._written]
            self._file.write(take)
            self._digest.update(take)
            self._written += len(take)
            view = view[len(take):]

    def _close_part(self) -> None:
        if self._file is not None:
            self._file.close()
            self.entries[-1].update(size=self._written, sha256=self._digest.hexdigest())
            self._file = None

    def __exit__(self, *exc: object) -> None:
        self._close_part()


def _stream(folder: Path, parts: list[dict[str, Any]]) -> Iterator[bytes]:
    for entry in parts:
        with open(folder / entry["name"], "rb") as f:
            yield from iter(lambda: f.read(_BLOCK), b"")


def _target(results: Path, relative: object) -> Path:
    """The file ``results/relative``, refusing paths that would leave ``results``."""
    if not isinstance(relative, str) or not relative or "\\" in relative:
        raise TransferError(f"the manifest names an invalid path {relative!r}")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(part in ("", ".", "..") for part in pure.parts):
        raise TransferError(f"the manifest names a path outside the results folder: {relative!r}")
    return results.joinpath(*pure.parts)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a pack in ``folder``, with every part checked (size and sha256).

    Raises:
        TransferError: no manifest, another format, or a part missing, truncated or corrupt.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise TransferError(f"{folder} holds no {MANIFEST}: the pack did not finish (or this is not a pack)") from None
    except json.JSONDecodeError as error:
        raise TransferError(f"{folder / MANIFEST} is not valid JSON ({error})") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise TransferError(f"{folder / MANIFEST} is not a {FORMAT} manifest of version {VERSION}")
    for entry in manifest["parts"]:
        name = entry["name"]
        if PurePosixPath(name).name != name:
            raise TransferError(f"the manifest names an invalid part {name!r}")
        path = folder / name
        if not path.is_file():
            raise TransferError(f"part {name} is missing from {folder}")
        if path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            raise TransferError(f"part {name} is truncated or corrupt (size or sha256 differs from the manifest)")
    return manifest


def unpack(folder: str | Path, *, results: str | Path | None = None,
           prune_checkpoints: bool = False) -> dict[str, list[str]]:
    """Check a pack in ``folder`` (left untouched; it may be read-only) and write its files into ``results``.

    Every part and every file is checked (size, sha256) and every existing record compared before
    anything is written. Records (files outside ``.checkpoints/``) are written when absent and left
    alone when identical; a checkpoint replaces a different one. With ``prune_checkpoints``, a
    checkpoint of a packed ``.checkpoints/`` folder that the GPU side no longer held is removed (its
    runs finished there, or it belongs to no run of that side): it would be carried for nothing.

    Returns:
        ``{"written", "unchanged", "replaced", "pruned", "left_out"}``: lists of paths relative to
        ``results`` (``left_out``: files the pack could not hold).

    Raises:
        TransferError: a part or file is missing or corrupt, a path leaves ``results``, or a record
            exists here with other contents (then nothing is written).
    """
    folder = Path(folder)
    results = Path(results if results is not None else results_dir())
    manifest = read_manifest(folder)
    contents = _contents(folder, manifest)
    summary: dict[str, list[str]] = {"written": [], "unchanged": [], "replaced": [], "pruned": [],
                                     "left_out": [f["path"] for f in manifest["left_out"]]}
    conflicts, todo = [], []
    for entry, data in zip(manifest["files"], contents):
        path = _target(results, entry["path"])
        if not path.is_file():
            todo.append((path, data, "written"))
        elif hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]:
            summary["unchanged"].append(entry["path"])
        elif _is_checkpoint(entry["path"]):
            todo.append((path, data, "replaced"))
        else:
            conflicts.append(entry["path"])
    if conflicts:
        raise TransferError(f"{len(conflicts)} record(s) exist in {results} with other contents, and a record is "
                            f"never overwritten: {', '.join(conflicts)}. Move them away and unpack again; nothing "
                            f"was written")
    for path, data, kind in todo:
        atomic_write(path, lambda f, data=data: f.write(data), binary=True)
        summary[kind].append(path.relative_to(results).as_posix())
    if prune_checkpoints:
        for relative_folder, held in manifest["checkpoint_folders"].items():
            local = _target(results, relative_folder)
            for stale in sorted(p for p in local.glob("*.pt") if p.name not in held):
                stale.unlink()
                summary["pruned"].append(stale.relative_to(results).as_posix())
    return summary


def _contents(folder: Path, manifest: dict[str, Any]) -> list[bytes]:
    """Each file's bytes cut from the parts' stream, each checked against its size and sha256."""
    stream, buffer, out = _stream(folder, manifest["parts"]), bytearray(), []
    position = 0
    for entry in manifest["files"]:
        if entry["offset"] != position:
            raise TransferError(f"the manifest's offsets are inconsistent at {entry['path']!r}")
        while len(buffer) < entry["size"]:
            block = next(stream, None)
            if block is None:
                raise TransferError(f"the parts end before {entry['path']!r} does")
            buffer += block
        data = bytes(buffer[: entry["size"]])
        del buffer[: entry["size"]]
        position += entry["size"]
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise TransferError(f"{entry['path']!r} is corrupt (sha256 differs from the manifest)")
        out.append(data)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack", help="pack folders of results/ into OUT (on the GPU machine)")
    p.add_argument("out", help="folder to write the parts and manifest into ($OUT)")
    p.add_argument("paths", nargs="+", help="folders or files inside the results folder")
    p.add_argument("--results", help="the results folder (default: results/ of the project)")
    p.add_argument("--newer", help="pack only files modified after this file")
    p.add_argument("--max-files", type=int, default=MAX_FILES, help=f"most files written (default {MAX_FILES})")
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES, help=f"most bytes per file (default {MAX_BYTES})")
    u = commands.add_parser("unpack", help="check a pack and write its files into results/ (here)")
    u.add_argument("folder", help="the folder holding manifest.json and the parts")
    u.add_argument("--results", help="the results folder (default: results/ of the project)")
    u.add_argument("--prune-checkpoints", action="store_true",
                   help="remove checkpoints of the packed folders that the GPU side no longer held")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            manifest = pack(args.out, args.paths, results=args.results, newer=args.newer, max_files=args.max_files,
                            max_bytes=args.max_bytes)
            print(f"packed {len(manifest['files'])} files ({sum(f['size'] for f in manifest['files'])} bytes) "
                  f"in {len(manifest['parts'])} parts; left out {len(manifest['left_out'])}")
            return 3 if manifest["left_out"] else 0
        summary = unpack(args.folder, results=args.results, prune_checkpoints=args.prune_checkpoints)
    except (TransferError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for kind, paths in summary.items():
        print(f"{kind}: {len(paths)}" + "".join(f"\n  {p}" for p in paths if kind != "unchanged"))
    if summary["left_out"]:
        print(f"warning: the pack could not hold {len(summary['left_out'])} file(s): {', '.join(summary['left_out'])}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
