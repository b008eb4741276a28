"""The spirals sweep of Figure 3: test error versus eps over many runs, recorded, resumable.

Records live under ``results_dir("spirals", tag, setting, "eps=<eps>")`` (and a folder
``data=<seed>`` below it when the sweep spreads its runs over draws of the data), one JSON file per
chunk of runs trained together (``seeds-<first>-<last>.json``, written atomically when the
chunk is done), holding the chunk's protocol, CPU time, and the
:class:`~localmixup.paper.engine.record.RunRecord` of each run, packed column-wise
(:func:`~localmixup.paper.engine.record.pack_records`; errors in percent). ``tag`` keeps profiles apart (``"quick"``, ``"paper"``) so that quick runs
never enter paper aggregates. A sweep computes only the seeds that no file holds yet: killed
at any moment, it loses at most the chunks in progress and resumes with the rest.

Command line (``--help`` for every option)::

    python -m localmixup.paper.sweep.spirals --setting authors --runs 1000 --eps all --tag paper
    python -m localmixup.paper.sweep.spirals --setting authors --draws 0-19 --runs 50   # 20 data sets
    python -m localmixup.paper.sweep.spirals --setting authors --authors-data --runs 200  # the authors' files
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch
from tqdm import tqdm

from localmixup.paper.engine.many_runs import AUTHORS, BACKENDS, ManyRunsConfig, train_many
from localmixup.paper.engine.record import RunRecord, pack_records, unpack_records
from localmixup.paper.records import (CORRUPT_FOLDER, CorruptFile, find_corrupt, read_record, refuse_or_set_aside, results_dir,
                                      write_record)
from localmixup.paper.sweep.plan import check_writable
from localmixup.paper.spirals import AUTHORS_FILES, Split, load_authors_spirals, make_spirals
from localmixup.validation import check_choice, check_integer

PAPER_EPS = (0.0, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 10.0)
"""The eps grid of the authors' spirals code (Figure 3)."""

PAPER_BATCH_SIZES = dict(zip(PAPER_EPS, (20, 241, 103, 50, 33, 25, 22, 20, 20, 20)))
"""Batch size per eps in the authors' code ("determined by experiments")."""

SETTINGS: dict[str, dict[str, str]] = {
    "authors": AUTHORS,
    "eq2-permutation": {"pairing": "permutation", "weighting": "pair", "output": "logits"},
    "eq2-graph": {"pairing": "graph", "weighting": "pair", "output": "logits"},
}
"""The three settings of the chapter, (a) the authors' code (permutation pairing, batch
scaling, softmax output); (b) Eq. (2) with permutation pairing and plain logits (the paper's
equation); (c) Eq. (2) with graph pairing (partners drawn among the neighbours)."""

DATA_DEFAULTS = {"points_per_class": 1000, "turns_degrees": 720.0, "noise": 0.5, "test_fraction": 0.2, "standardise": True, "seed": 0}
"""Arguments of :func:`~localmixup.paper.spirals.make_spirals` for the paper's data set (one
fixed data set for every run, as in the authors' code)."""

AUTHORS_DATA = {"source": "authors", "sha256": dict(AUTHORS_FILES)}
"""The ``data`` of a record trained on the authors' own files
(:func:`~localmixup.paper.spirals.load_authors_spirals`), their digests included."""

DRAW_SEED_STRIDE = 1000
"""Run ``r`` of data draw ``d`` has the run seed ``DRAW_SEED_STRIDE * d + r``: the runs of two
draws never share a seed (so never an initialisation), and a draw holds up to this many runs."""

COLUMNS = ["tag", "setting", "data", "eps", "batch_size", "epochs", "seed", "status", "test_error_pct", "train_error_pct",
           "pair_weight"]
"""Columns of the frame of runs that :func:`sweep_spirals` returns: ``data`` the data set
(``data_label``), errors in percent (NaN for a failed run), ``pair_weight`` the mean over the
recorded epochs of the mean pair weight of a batch."""

CHUNK_FIELDS = {"config": dict, "data": dict, "seeds": list, "runs": dict}
"""What every chunk record holds (checked when it is read: a file without them is corrupt)."""

SIGNIFICANT = 6
"""Significant digits of the numbers in a chunk file (the runs train in float32)."""


def paper_batch_size(eps: float) -> int:
    """The authors' batch size for ``eps`` (a value of :data:`PAPER_EPS`)."""
    if float(eps) not in PAPER_BATCH_SIZES:
        raise ValueError(f"eps={eps!r} is not on the authors' grid {list(PAPER_EPS)}, which fixes a batch size per eps: "
                         "give one (--batch-size on the command line, batch_sizes={eps: size} in Python)")
    return PAPER_BATCH_SIZES[float(eps)]


def paper_config(setting: str, eps: float, **overrides: Any) -> ManyRunsConfig:
    """The protocol of ``setting`` (a key of :data:`SETTINGS`) at ``eps``: the authors' batch size
    for it, their Adam (lr 0.01) and 200 epochs, unless ``overrides`` (fields of
    :class:`~localmixup.paper.engine.many_runs.ManyRunsConfig`) say otherwise."""
    check_choice("setting", setting, tuple(SETTINGS))
    if "batch_size" not in overrides:
        overrides["batch_size"] = paper_batch_size(eps)
    return ManyRunsConfig(eps=eps, **{**SETTINGS[setting], **overrides})


def sweep_folder(tag: str, setting: str, eps: float, draw: int | None = None) -> Path:
    """The folder of the records of ``setting`` at ``eps`` under ``tag`` (of data draw ``draw`` if given)."""
    if not tag or "/" in tag or tag.startswith("."):
        raise ValueError(f"tag must be a plain folder name such as 'quick' or 'paper', got {tag!r}")
    folder = results_dir("spirals", tag, check_choice("setting", setting, tuple(SETTINGS)), f"eps={float(eps):g}")
    return folder if draw is None else folder / f"data={check_integer('draw', draw, low=0):02d}"


def draw_seeds(draw: int, runs: int) -> list[int]:
    """The run seeds of the ``runs`` runs of data draw ``draw`` (see :data:`DRAW_SEED_STRIDE`)."""
    runs = check_integer("runs", runs, low=1, high=DRAW_SEED_STRIDE)
    first = DRAW_SEED_STRIDE * check_integer("draw", draw, low=0)
    return list(range(first, first + runs))


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
    """One chunk record; :class:`~localmixup.paper.records.CorruptFile` (naming ``path``) if it is
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


PROFILES = {
    "quick": {"eps_grid": (0.0, 0.6, 1.0, 2.0, 3.0, 10.0), "runs": {"authors": 20, "eq2-permutation": 20, "eq2-graph": 20},
              "epochs": 15, "chunk_size": 20, "curve_every": 1},
    "paper": {"eps_grid": PAPER_EPS, "runs": {"authors": 1000, "eq2-permutation": 1000, "eq2-graph": 200},
              "epochs": 200, "chunk_size": 200, "curve_every": 10},
}
"""Sizes of the chapter's profiles, ``quick`` (about a minute on a CPU, a smoke test, not the
paper's protocol) and ``paper`` (the paper's grid and 200 epochs; 1000 runs per threshold for
settings (a) and (b), 200 for (c)). Chunks of 200 runs: large enough that the library's per-step
sampling costs little per run, small enough that a sweep killed at the end of a session loses a
few minutes of work; the files are the same whether a CPU or a GPU made them."""


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
    """The runs of ``profile`` (a key of :data:`PROFILES`), with overrides: the eps grid, the runs
    per threshold of every setting, the epochs, the first run seed and the data set's seed.

    Records go under ``tag`` (default: the profile, followed by ``-data<seed>`` for another data
    set). ``paths`` lists every record file, for a book that renders recorded runs only: the
    chunks are deterministic (``chunk_size`` consecutive seeds), so a resumed sweep writes the
    same files.
    """
    sizes = PROFILES[check_choice("profile", profile, tuple(PROFILES))]
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


def sweep_data(data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DATA_DEFAULTS` with the overrides ``data`` (arguments of ``make_spirals``), or
    :data:`AUTHORS_DATA` for ``{"source": "authors"}`` (the authors' files)."""
    if data is not None and data.get("source") == "authors":
        if set(data) - set(AUTHORS_DATA) or data.get("sha256", AUTHORS_DATA["sha256"]) != AUTHORS_DATA["sha256"]:
            raise ValueError(f"the authors' data set is {AUTHORS_DATA}, got {dict(data)}")
        return dict(AUTHORS_DATA)
    unknown = set(data or {}) - set(DATA_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown data parameters {sorted(unknown)}; accepted: {sorted(DATA_DEFAULTS)}")
    return {**DATA_DEFAULTS, **(data or {})}


def load_split(data: Mapping[str, Any]) -> Split:
    """The data set that a record's ``data`` (:func:`sweep_data`) names."""
    return load_authors_spirals() if data.get("source") == "authors" else make_spirals(**data)


def data_label(data: Mapping[str, Any]) -> str:
    """A short name of a record's data set: ``"authors"``, or ``"draw <seed>"`` for a drawn one."""
    return "authors" if data.get("source") == "authors" else f"draw {data['seed']}"


def sweep_configs(setting: str, eps_grid: Sequence[float], *, epochs: int = 200, batch_sizes: Mapping[float, int] | None = None,
                  hidden: Sequence[int] = (100, 100, 100)) -> list[ManyRunsConfig]:
    """The protocol of ``setting`` at each eps (see :func:`paper_config`; ``batch_sizes`` overrides the authors')."""
    sizes = dict(batch_sizes or {})
    return [paper_config(setting, eps, epochs=epochs, hidden=tuple(hidden), **({"batch_size": sizes[eps]} if eps in sizes else {}))
            for eps in eps_grid]


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
    chunk_size: int = PROFILES["paper"]["chunk_size"],
    curve_every: int = 10,
    threads: int = 1,
    backend: str = "auto",
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or load) every (eps, seed) of ``setting`` and return one row per run.

    Args:
        tag: records subfolder (``"quick"``, ``"paper"``...).
        setting: a key of :data:`SETTINGS`.
        eps_grid: thresholds (each >= 0).
        seeds: run seeds (distinct integers >= 0); the same seeds are used for every eps.
        epochs, hidden: see :class:`~localmixup.paper.engine.many_runs.ManyRunsConfig`.
        batch_sizes: batch size per eps (default: the authors', :data:`PAPER_BATCH_SIZES`).
        data: overrides of :data:`DATA_DEFAULTS` (arguments of ``make_spirals``), or
            ``{"source": "authors"}`` for the authors' files.
        draw: the data set is the draw of this seed (``data``'s seed replaced), and the records go
            to its own folder (``data=<draw>``), so that one tag holds many draws.
        device: where to train (default CPU).
        chunk_size: runs trained at once, recorded in one file when done.
        curve_every: the records keep the test error every this many epochs.
        threads: CPU threads of the trainer (its kernel splits the runs of a chunk).
        backend: see :func:`~localmixup.paper.engine.many_runs.train_many`.
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
    """Learning curves of ``setting`` under ``tag``: one row per (eps, seed, recorded epoch), with
    the epoch's mean training loss and the test error after it (percent)."""
    rows = [
        {"eps": run.config["eps"], "seed": run.config["seed"], "epoch": e.epoch, "train_loss": e.train_loss,
         "test_error_pct": e.test_error_pct}
        for _, run in spirals_runs(tag, setting)
        for e in run.epochs
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["eps", "seed", "epoch", "train_loss", "test_error_pct"])


def cpu_seconds(tag: str, setting: str | None = None) -> float:
    """Total CPU seconds recorded by the chunks under ``tag`` (of ``setting`` if given)."""
    return float(sum(r["cpu_seconds"] for r in spirals_records(tag, setting)))


def _eps_grid(text: str) -> list[float]:
    if text == "all":
        return list(PAPER_EPS)
    try:
        return [float(e) for e in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--eps must be 'all' or comma-separated thresholds such as 0,1.5,10, got {text!r}") from None


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"--hidden must be comma-separated layer widths >= 1 such as 100,100,100, got {text!r}")
    return widths


def _draws(text: str) -> list[int]:
    first, _, last = text.partition("-")
    try:
        draws = list(range(int(first), int(last or first) + 1))
    except ValueError:
        draws = []
    if not draws or draws[0] < 0:
        raise argparse.ArgumentTypeError(f"--draws must be a data seed or a range of them such as 0-19, got {text!r}")
    return draws


def main(argv: list[str] | None = None) -> int:
    """Command line: run (or resume) one setting's sweep; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m localmixup.paper.sweep.spirals", description=__doc__.splitlines()[0])
    parser.add_argument("--setting", required=True, choices=tuple(SETTINGS), help="which setting to run")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per threshold: seeds first .. first + runs - 1 (default 1000); with --draws, runs per "
                             f"threshold of each draw, seeds {DRAW_SEED_STRIDE} * draw + 0 .. runs - 1 (default 50)")
    parser.add_argument("--first-seed", type=int, default=0, help="first run seed (default 0; not with --draws)")
    parser.add_argument("--eps", type=_eps_grid, default=list(PAPER_EPS), help="'all' (the paper's grid, default) or a comma-separated list")
    parser.add_argument("--epochs", type=int, default=200, help="epochs per run (default 200, the paper's)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size at every eps (default: the authors' batch size of each eps of their grid; needed "
                             "for an eps off that grid)")
    parser.add_argument("--set-aside-corrupt", action="store_true",
                        help="move each chunk file of the sweep that cannot be read to a corrupt/ folder beside it, named in "
                             "the output, and train its runs again; without it, such a file stops the sweep before anything trains")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--draws", type=_draws, default=None,
                      help="spread the runs over these data sets (seeds of make_spirals, e.g. 0-19), one folder each")
    data.add_argument("--authors-data", action="store_true",
                      help="train on the authors' own files (in data/spirals_dataset/, see load_authors_spirals)")
    parser.add_argument("--tag", default=None,
                        help="records folder under results/spirals/ (default 'paper'; 'draws' with --draws, 'authors-data' with "
                             "--authors-data)")
    parser.add_argument("--chunk", type=int, default=PROFILES["paper"]["chunk_size"],
                        help=f"runs trained together and recorded in one file (default {PROFILES['paper']['chunk_size']}, the paper profile's)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu; cuda runs the torch path)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS, help="trainer backend (default auto: the compiled kernel on a CPU)")
    parser.add_argument("--hidden", type=_widths, default=(100, 100, 100), help="hidden layer widths (default 100,100,100)")
    parser.add_argument("--points-per-class", type=int, default=DATA_DEFAULTS["points_per_class"], help="spirals data size (default 1000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    tag = args.tag or ("draws" if args.draws is not None else "authors-data" if args.authors_data else "paper")
    try:
        threads = check_integer("--threads", args.threads, low=1)
        torch.set_num_threads(threads)
        runs = check_integer("--runs", args.runs if args.runs is not None else 50 if args.draws is not None else 1000, low=1)
        first = check_integer("--first-seed", args.first_seed, low=0)
        if args.draws is not None and first:
            raise ValueError("--first-seed does not go with --draws: each draw's seeds are fixed (see DRAW_SEED_STRIDE)")
        data = {"source": "authors"} if args.authors_data else {"points_per_class": args.points_per_class}
        parts = ([(draw, draw_seeds(draw, runs)) for draw in args.draws] if args.draws is not None
                 else [(None, list(range(first, first + runs)))])
        batch = None if args.batch_size is None else check_integer("--batch-size", args.batch_size, low=1)
        configs = sweep_configs(args.setting, args.eps, epochs=args.epochs, hidden=args.hidden,
                                batch_sizes=None if batch is None else dict.fromkeys(args.eps, batch))
        folders = [sweep_folder(tag, args.setting, c.eps, draw) for draw, _ in parts for c in configs]
        check_writable([folder / "seeds.json" for folder in folders])
        refuse_or_set_aside(find_corrupt([p for f in folders for p in sorted(f.glob("seeds-*.json"))], read=read_chunk),
                            args.set_aside_corrupt)
        done = sum(len(recorded_seeds(sweep_folder(tag, args.setting, c.eps, draw), c,
                                      sweep_data(data if draw is None else {**data, "seed": draw})) & set(seeds))
                   for draw, seeds in parts for c in configs)
        total = len(configs) * sum(len(seeds) for _, seeds in parts)
        print(f"spirals {tag}/{args.setting}: {total} runs, {done} already recorded, {total - done} to train", flush=True)
        frame = pd.concat([sweep_spirals(tag=tag, setting=args.setting, eps_grid=args.eps, seeds=seeds, epochs=args.epochs,
                                         batch_sizes={c.eps: c.batch_size for c in configs},
                                         hidden=args.hidden, data=data, draw=draw, device=args.device, chunk_size=args.chunk,
                                         threads=threads, backend=args.backend, progress=not args.no_progress)
                           for draw, seeds in parts])
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = frame.groupby("eps")["test_error_pct"].agg(["count", "mean", "std"])
    print(summary.rename(columns={"count": "runs", "mean": "test error %", "std": "sd %"}).round(2).to_string())
    seconds, recorded = cpu_seconds(tag, args.setting), len(load_spirals_sweep(tag, args.setting))
    print(f"records: {results_dir('spirals', tag, args.setting)}; CPU time recorded for this setting: "
          f"{seconds / 3600:.2f} h for {recorded} runs ({seconds / recorded:.2f} s per run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
