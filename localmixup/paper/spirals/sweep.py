"""The spirals sweep of Figure 3: test error versus eps over many runs, recorded, resumable.

Records live under ``results_dir("spirals", tag, setting, "eps=<eps>")`` (and a folder
``data=<seed>`` below it when the sweep spreads its runs over draws of the data), one JSON file per
chunk of runs trained together (``seeds-<first>-<last>.json``, written atomically when the
chunk is done), holding the chunk's protocol, CPU time, and the
:class:`~localmixup.paper.run_record.RunRecord` of each run, packed column-wise
(:func:`~localmixup.paper.run_record.pack_records`; errors in percent). ``tag`` keeps profiles apart (``"quick"``, ``"paper"``) so that quick runs
never enter paper aggregates. A sweep computes only the seeds that no file holds yet: killed
at any moment, it loses at most the chunks in progress and resumes with the rest.

Command line: ``localmixup spirals`` (:mod:`localmixup.paper.cli`).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch
from tqdm import tqdm

from localmixup.paper.spirals.config import ManyRunsConfig
from localmixup.paper.spirals.trainer import train_many
from localmixup.paper.run_record import RunRecord, pack_records, unpack_records
from localmixup.paper.record_files import CORRUPT_FOLDER, CorruptFile, read_record, results_dir, write_record
from localmixup.paper.spirals.protocol import SETTINGS, SPIRALS_PROFILES, data_label, load_split, sweep_configs, sweep_data
from localmixup.checks import check_choice, check_integer


COLUMNS = ["tag", "setting", "data", "eps", "batch_size", "epochs", "seed", "status", "test_error_pct", "train_error_pct",
           "pair_weight"]
"""Columns of the frame of runs that :func:`sweep_spirals` returns: ``data`` the data set
(``data_label``), errors in percent (NaN for a failed run), ``pair_weight`` the mean over the
recorded epochs of the mean pair weight of a batch."""

CHUNK_FIELDS = {"config": dict, "data": dict, "seeds": list, "runs": dict}
"""What every chunk record holds (checked when it is read: a file without them is corrupt)."""

SIGNIFICANT = 6
"""Significant digits of the numbers in a chunk file (the runs train in float32)."""


def sweep_folder(tag: str, setting: str, eps: float, draw: int | None = None) -> Path:
    """The folder of the records of ``setting`` at ``eps`` under ``tag`` (of data draw ``draw`` if given)."""
    if not tag or "/" in tag or tag.startswith("."):
        raise ValueError(f"tag must be a plain folder name such as 'quick' or 'paper', got {tag!r}")
    folder = results_dir("spirals", tag, check_choice("setting", setting, tuple(SETTINGS)), f"eps={float(eps):g}")
    return folder if draw is None else folder / f"data={check_integer('draw', draw, low=0):02d}"


def recorded_seeds(folder: Path, config: ManyRunsConfig, data: Mapping[str, Any]) -> set[int]:
    """Seeds recorded in ``folder`` (a :func:`sweep_folder`); a record made with another protocol raises a ValueError."""
    seeds: set[int] = set()
    for path in sorted(folder.glob("seeds-*.json")):
        record = read_chunk(path)
        if record.get("config") != config.as_dict() or record.get("data") != dict(data):
            raise ValueError(
                f"the record {path} was made with another configuration (config {record.get('config')}, data "
                f"{record.get('data')}) than the one asked (config {config.as_dict()}, data {dict(data)}); "
                "use another tag or remove the old records"
            )
        seeds.update(record["seeds"])
    return seeds


def read_chunk(path: Path) -> dict[str, Any]:
    """One chunk record; :class:`~localmixup.paper.record_files.CorruptFile` (naming ``path``) if it is
    unreadable, lacks one of :data:`CHUNK_FIELDS` or holds no run."""
    record = read_record(path, CHUNK_FIELDS)
    if not record["seeds"] or not record["runs"]:
        raise CorruptFile(path, "it holds no run")
    return record


def _chunks(seeds: Sequence[int], size: int) -> list[list[int]]:
    return [list(seeds[first : first + size]) for first in range(0, len(seeds), size)]


def chunk_path(tag: str, setting: str, eps: float, seeds: Sequence[int], draw: int | None = None) -> Path:
    """The record file of the runs ``seeds`` (trained together) of ``setting`` at ``eps`` (on draw ``draw``)."""
    return sweep_folder(tag, setting, eps, draw) / f"seeds-{seeds[0]:05d}-{seeds[-1]:05d}.json"


class SpiralsPlan(NamedTuple):
    """The runs the spirals chapter renders for a profile (:func:`spirals_plan`)."""

    profile: str
    tag: str
    eps_grid: list[float]
    seeds: dict[str, list[int]]
    epochs: int
    chunk_size: int
    curve_every: int
    data: dict[str, Any]
    paths: list[Path]


def spirals_plan(profile: str, *, eps_grid: Sequence[float] | None = None, runs: int | None = None, epochs: int | None = None,
                 first_seed: int = 0, data_seed: int = 0, tag: str | None = None) -> SpiralsPlan:
    """The runs of ``profile`` (a key of :data:`~localmixup.paper.spirals.protocol.SPIRALS_PROFILES`), with overrides: the eps grid, the runs
    per threshold of every setting, the epochs, the first run seed and the data set's seed.

    Records go under ``tag`` (default: the profile, followed by ``-data<seed>`` for another data
    set). ``paths`` lists every record file, for a book that renders recorded runs only: the
    chunks are deterministic (``chunk_size`` consecutive seeds), so a resumed sweep writes the
    same files.
    """
    sizes = SPIRALS_PROFILES[check_choice("profile", profile, tuple(SPIRALS_PROFILES))]
    grid = [float(e) for e in (eps_grid if eps_grid is not None else sizes["eps_grid"])]
    first_seed = check_integer("first_seed", first_seed, low=0)
    seeds = {s: list(range(first_seed, first_seed + (check_integer("runs", runs, low=1) if runs is not None else n)))
             for s, n in sizes["runs"].items()}
    tag = tag or (profile if data_seed == 0 else f"{profile}-data{data_seed}")
    chunk = sizes["chunk_size"]
    paths = [chunk_path(tag, setting, eps, part) for setting, ss in seeds.items() for eps in grid for part in _chunks(ss, chunk)]
    return SpiralsPlan(profile, tag, grid, seeds, epochs or sizes["epochs"], chunk, sizes["curve_every"], sweep_data({"seed": data_seed}),
                       paths)


def _record(tag: str, setting: str, config: ManyRunsConfig, data: Mapping[str, Any], records: Sequence[RunRecord],
            cpu: float, wall: float, threads: int) -> dict[str, Any]:
    return {
        "experiment": "spirals",
        "tag": tag,
        "setting": setting,
        "config": config.as_dict(),
        "data": dict(data),
        "seeds": [r.config["seed"] for r in records],
        "cpu_seconds": round(cpu, 2),
        "wall_seconds": round(wall, 2),
        "threads": threads,
        "runs": pack_records(records, significant=SIGNIFICANT),
    }


def sweep_spirals(
    *,
    tag: str,
    setting: str,
    eps_grid: Sequence[float],
    seeds: Sequence[int],
    epochs: int = 200,
    batch_sizes: Mapping[float, int] | None = None,
    hidden: Sequence[int] = (100, 100, 100),
    data: Mapping[str, Any] | None = None,
    draw: int | None = None,
    device: torch.device | str | None = None,
    chunk_size: int = SPIRALS_PROFILES["paper"]["chunk_size"],
    curve_every: int = 10,
    threads: int = 1,
    backend: str = "auto",
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or load) every (eps, seed) of ``setting`` and return one row per run.

    Args:
        tag: records subfolder (``"quick"``, ``"paper"``...).
        setting: a key of :data:`~localmixup.paper.spirals.protocol.SETTINGS`.
        eps_grid: thresholds (each >= 0).
        seeds: run seeds (distinct integers >= 0); the same seeds are used for every eps.
        epochs, hidden: see :class:`~localmixup.paper.spirals.config.ManyRunsConfig`.
        batch_sizes: batch size per eps (default: the authors', :data:`~localmixup.paper.spirals.protocol.PAPER_BATCH_SIZES`).
        data: overrides of :data:`~localmixup.paper.spirals.protocol.DATA_DEFAULTS` (arguments of ``make_spirals``), or
            ``{"source": "authors"}`` for the authors' files.
        draw: the data set is the draw of this seed (``data``'s seed replaced), and the records go
            to its own folder (``data=<draw>``), so that one tag holds many draws.
        device: where to train (default CPU).
        chunk_size: runs trained at once, recorded in one file when done.
        curve_every: the records keep the test error every this many epochs.
        threads: CPU threads of the trainer (its kernel splits the runs of a chunk).
        backend: see :func:`~localmixup.paper.spirals.trainer.train_many`.
        progress: tqdm bar over the runs to compute.

    Returns:
        DataFrame with the columns of :data:`COLUMNS` (errors in percent), for the runs asked.

    Chunks are taken in turn across the thresholds (chunk 1 of every eps, then chunk 2...), so
    that an interrupted sweep leaves every threshold with some runs. Records found with another
    configuration (epochs, data...) raise a ``ValueError`` rather than being mixed: use another tag.
    """
    chunk_size = check_integer("chunk_size", chunk_size, low=1)
    seeds = [check_integer("seed", s, low=0) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError("seeds must be a non-empty list of distinct integers >= 0")
    data = sweep_data(data if draw is None else {**(data or {}), "seed": check_integer("draw", draw, low=0)})
    configs = sweep_configs(setting, eps_grid, epochs=epochs, batch_sizes=batch_sizes, hidden=hidden)
    pending = []
    for config in configs:
        done = recorded_seeds(sweep_folder(tag, setting, config.eps, draw), config, data)
        pending.append((config, _chunks([s for s in seeds if s not in done], chunk_size)))
    order = []
    for index in range(max(len(chunks) for _, chunks in pending)):
        order += [(config, chunks[index]) for config, chunks in pending if index < len(chunks)]

    if order:
        split = load_split(data)
        with tqdm(total=sum(len(c) for _, c in order), desc=f"spirals {tag}/{setting}", unit="run", disable=not progress) as bar:
            for config, chunk in order:
                bar.set_postfix(eps=config.eps, runs=len(chunk))
                cpu, wall = _cpu_seconds(), time.perf_counter()
                runs = train_many(split, chunk, config, device=device, curve_every=curve_every, threads=threads, backend=backend)
                record = _record(tag, setting, config, data, runs.records, _cpu_seconds() - cpu, time.perf_counter() - wall, threads)
                write_record(chunk_path(tag, setting, config.eps, chunk, draw), record, compact=True)
                bar.update(len(chunk))

    frame = load_spirals_sweep(tag, setting)
    asked = frame["eps"].isin([c.eps for c in configs]) & frame["seed"].isin(seeds) & (frame["data"] == data_label(data))
    return frame[asked].reset_index(drop=True)


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (the kernel's threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def spirals_records(tag: str, setting: str | None = None) -> list[dict[str, Any]]:
    """Every chunk record under ``tag`` (of ``setting`` only, if given), sorted by path."""
    root = results_dir("spirals", tag) if setting is None else results_dir("spirals", tag, check_choice("setting", setting, tuple(SETTINGS)))
    return [read_chunk(p) for p in sorted(root.rglob("seeds-*.json")) if CORRUPT_FOLDER not in p.parts] if root.is_dir() else []


def spirals_runs(tag: str, setting: str | None = None) -> list[tuple[dict[str, Any], RunRecord]]:
    """Every recorded run under ``tag`` (of ``setting`` only, if given): (its chunk record, its run record)."""
    return [(chunk, run) for chunk in spirals_records(tag, setting) for run in unpack_records(chunk["runs"])]


def load_spirals_sweep(tag: str, setting: str | None = None) -> pd.DataFrame:
    """One row per recorded run under ``tag`` (columns :data:`COLUMNS`); empty frame if none."""
    rows = [
        {"tag": chunk["tag"], "setting": chunk["setting"], "data": data_label(chunk["data"]), "eps": run.config["eps"], "batch_size": run.config["batch_size"],
         "epochs": run.config["epochs"], "seed": run.config["seed"], "status": run.status,
         "test_error_pct": run.final_test_error_pct, "train_error_pct": run.final_train_error_pct,
         "pair_weight": sum(e.stats["pair_weight"] for e in run.epochs) / len(run.epochs)}
        for chunk, run in spirals_runs(tag, setting)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS).astype({"test_error_pct": float, "train_error_pct": float}).sort_values(
        ["setting", "data", "eps", "seed"], ignore_index=True)


def load_spirals_curves(tag: str, setting: str) -> pd.DataFrame:
    """Learning curves of ``setting`` under ``tag``: one row per (data set, eps, seed, recorded
    epoch), with the epoch's mean training loss and the test error after it (percent)."""
    rows = [
        {"data": data_label(chunk["data"]), "eps": run.config["eps"], "seed": run.config["seed"], "epoch": e.epoch,
         "train_loss": e.train_loss, "test_error_pct": e.test_error_pct}
        for chunk, run in spirals_runs(tag, setting)
        for e in run.epochs
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["data", "eps", "seed", "epoch", "train_loss", "test_error_pct"])


def cpu_seconds(tag: str, setting: str | None = None) -> float:
    """Total CPU seconds recorded by the chunks under ``tag`` (of ``setting`` if given)."""
    return float(sum(r["cpu_seconds"] for r in spirals_records(tag, setting)))
