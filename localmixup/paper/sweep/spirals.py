"""The spirals sweep of Figure 3: test error versus eps over many runs, one record per run.

Records live under ``results_dir("spirals", tag, "<variant>-<pairing>", "eps=<eps>",
"seed=<seed>.json")``; ``tag`` keeps profiles apart (``"quick"``, ``"paper"``) so that
quick runs never enter paper aggregates. A sweep computes only the runs whose record
is missing, in chunks of runs trained at once, and writes a chunk's records as soon as
it is done: an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from localmixup.paper.engine.many_runs import ManyRunsConfig, train_many
from localmixup.paper.provenance import environment
from localmixup.paper.records import load_records, missing, read_record, results_dir, write_record
from localmixup.paper.spirals import make_spirals
from localmixup.validation import check_integer

PAPER_EPS = (0.0, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 10.0)
"""The eps grid of the authors' spirals code (Figure 3)."""

PAPER_BATCH_SIZES = dict(zip(PAPER_EPS, (20, 241, 103, 50, 33, 25, 22, 20, 20, 20)))
"""Batch size per eps in the authors' code ("determined by experiments")."""

DATA_DEFAULTS = {"points_per_class": 1000, "turns_degrees": 720.0, "noise": 0.5, "test_fraction": 0.2, "standardise": True, "seed": 0}
"""Arguments of :func:`~localmixup.paper.spirals.make_spirals` for the paper's data set (one
fixed data set for every run, as in the authors' code)."""


def paper_batch_size(eps: float) -> int:
    """The authors' batch size for ``eps`` (a value of :data:`~.PAPER_EPS`)."""
    if float(eps) not in PAPER_BATCH_SIZES:
        raise ValueError(f"eps={eps!r} is not on the authors' grid {list(PAPER_EPS)}; pass batch_sizes={{eps: size}} for it")
    return PAPER_BATCH_SIZES[float(eps)]


def record_path(tag: str, config: ManyRunsConfig, seed: int) -> Path:
    """Where the record of run ``seed`` under ``config`` lives."""
    if not tag or "/" in tag or tag.startswith("."):
        raise ValueError(f"tag must be a plain folder name such as 'quick' or 'paper', got {tag!r}")
    return results_dir("spirals", tag, f"{config.variant}-{config.pairing}", f"eps={config.eps:g}", f"seed={seed:05d}.json")


def sweep_spirals(
    *,
    tag: str,
    eps_grid: Sequence[float],
    seeds: Sequence[int],
    epochs: int = 200,
    pairing: str = "graph",
    variant: str = "eq2",
    batch_sizes: Mapping[float, int] | None = None,
    lr: float = 0.01,
    hidden: Sequence[int] = (100, 100, 100),
    mix_alpha: float = 1.0,
    data: Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
    chunk_size: int = 500,
    curve_every: int = 10,
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or load) every (eps, seed) of a spirals sweep and return one row per run.

    Args:
        tag: records subfolder (``"quick"``, ``"paper"``...).
        eps_grid: thresholds (each >= 0).
        seeds: run seeds (distinct integers >= 0); the same seeds are used for every eps.
        epochs, pairing, variant, lr, hidden, mix_alpha: see :class:`~.ManyRunsConfig`.
        batch_sizes: batch size per eps (default: the authors', :data:`~.PAPER_BATCH_SIZES`).
        data: overrides of :data:`~.DATA_DEFAULTS` (arguments of ``make_spirals``).
        device: where to train (default CPU).
        chunk_size: runs trained at once (records are written after each chunk).
        curve_every: the record keeps the test error every this many epochs.
        progress: tqdm bar over the runs to compute.

    Returns:
        DataFrame with columns tag, variant, pairing, eps, batch_size, epochs, seed,
        test_error, train_error, pair_fraction (errors in [0, 1]).

    A record found on disk with another configuration (epochs, data...) raises a
    ``ValueError`` rather than being mixed with new runs: use another ``tag``.
    """
    chunk_size = check_integer("chunk_size", chunk_size, low=1)
    seeds = [check_integer("seed", s, low=0) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError("seeds must be a non-empty list of distinct integers >= 0")
    unknown = set(data or {}) - set(DATA_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown data parameters {sorted(unknown)}; accepted: {sorted(DATA_DEFAULTS)}")
    data = {**DATA_DEFAULTS, **(data or {})}
    sizes = dict(batch_sizes) if batch_sizes is not None else {}
    configs = []
    for eps in eps_grid:
        size = sizes[eps] if eps in sizes else paper_batch_size(eps)
        configs.append(
            ManyRunsConfig(eps=eps, batch_size=size, epochs=epochs, lr=lr, hidden=tuple(hidden), pairing=pairing, variant=variant, mix_alpha=mix_alpha)
        )

    todo: list[tuple[ManyRunsConfig, list[int]]] = []
    for config in configs:
        paths = {s: record_path(tag, config, s) for s in seeds}
        absent = set(missing(paths.values()))
        for seed, path in paths.items():
            if path not in absent:
                _check_record(read_record(path), path, config, data)
        todo.append((config, [s for s in seeds if paths[s] in absent]))

    total = sum(len(s) for _, s in todo)
    if total:
        split = make_spirals(**data)
        env = environment(device)
        with tqdm(total=total, desc=f"spirals {tag} {variant}-{pairing}", unit="run", disable=not progress) as bar:
            for config, remaining in todo:
                for first in range(0, len(remaining), chunk_size):
                    chunk = remaining[first : first + chunk_size]
                    bar.set_postfix(eps=config.eps, runs=len(chunk))
                    start = time.perf_counter()
                    result = train_many(split, chunk, config, device=device, curve_every=curve_every)
                    seconds = time.perf_counter() - start
                    for r, seed in enumerate(chunk):
                        write_record(record_path(tag, config, seed), _record(tag, config, data, result, r, seconds, env))
                    bar.update(len(chunk))

    rows = [read_record(record_path(tag, config, s)) for config in configs for s in seeds]
    return records_frame(rows)


def load_spirals_sweep(tag: str) -> pd.DataFrame:
    """Every spirals record under ``tag``, as :func:`~.sweep_spirals` returns them (empty frame if none)."""
    return records_frame(load_records(results_dir("spirals", tag)))


def records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run record (the columns of :func:`~.sweep_spirals`)."""
    columns = ["tag", "variant", "pairing", "eps", "batch_size", "epochs", "seed", "test_error", "train_error", "pair_fraction"]
    rows = [
        {
            "tag": r["tag"],
            "variant": r["config"]["variant"],
            "pairing": r["config"]["pairing"],
            "eps": r["config"]["eps"],
            "batch_size": r["config"]["batch_size"],
            "epochs": r["config"]["epochs"],
            "seed": r["seed"],
            "test_error": r["test_error"],
            "train_error": r["train_error"],
            "pair_fraction": r["pair_fraction"],
        }
        for r in records
    ]
    return pd.DataFrame(rows, columns=columns)


def _record(tag: str, config: ManyRunsConfig, data: dict, result, r: int, seconds: float, env: dict) -> dict[str, Any]:
    return {
        "experiment": "spirals",
        "tag": tag,
        "seed": result.seeds[r],
        "config": config.as_dict(),
        "data": dict(data),
        "test_error": float(result.test_error[r]),
        "train_error": float(result.train_error[r]),
        "pair_fraction": round(float(result.pair_fraction[r]), 6),
        "curve": {"epochs": list(result.curve_epochs), "test_error": [round(float(e), 5) for e in result.curve[r]]},
        "chunk": {"runs": len(result.seeds), "seconds": round(seconds, 3)},
        "environment": env,
    }


def _check_record(record: Mapping[str, Any], path: Path, config: ManyRunsConfig, data: Mapping[str, Any]) -> None:
    if record.get("config") != config.as_dict() or record.get("data") != dict(data):
        raise ValueError(
            f"the record {path} was made with another configuration "
            f"(config {record.get('config')}, data {record.get('data')}) than the one asked "
            f"(config {config.as_dict()}, data {dict(data)}); use another tag or remove the old records"
        )
