"""Command line: ``localmixup book`` (execute the chapters and build the book), ``localmixup sweep``
(train the image runs of Table 1 and AdaMixup that have no record yet) and ``localmixup spirals``
(the same for the spirals runs of Figure 3), e.g.::

    localmixup sweep --dataset fashion_mnist --profile cpu --methods baseline,mixup,local --seeds 0-9
    localmixup spirals --setting authors --runs 1000 --eps all --tag paper
    localmixup spirals --setting authors --draws 0-19 --runs 50     # 20 data sets, 50 runs each
    localmixup spirals --setting authors --authors-data --runs 200  # the authors' own files

Errors are one line: a bad option names itself and what it accepts (exit status 2); a problem
found while working names what is wrong and what to do (exit status 1).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from localmixup.paper.book import NotebookFailed
from localmixup.checks import check_integer, check_real

# The sweep's options that set TrainConfig fields, and the fields they set.
DECAY_FIELD, BETA_FIELD = "decay", "alpha"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``localmixup sweep: argument --lr: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def number(kind: type, low: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: the text of a finite ``kind`` (int or float) >= ``low`` (> if
    ``low_open``), else an error saying what is accepted (argparse prefixes the option's name)."""

    def parse(text: str) -> float:
        try:
            value: object = kind(text)
        except ValueError:
            value = text  # refused below, with the accepted range
        try:
            if kind is int:
                return check_integer("value", value, low=int(low))
            return check_real("value", value, low=low, low_open=low_open, high=math.inf, high_open=True)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("value ")) from None

    return parse


def torch_device(text: str) -> str:
    """An argparse ``type``: the name of a torch device (``cpu``, ``cuda``, ``cuda:1``...)."""
    import torch

    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a torch device such as cpu, cuda or cuda:1, got {text!r}") from None
    return text


def check_visible(device: str) -> None:
    """Refuse (``ValueError`` naming ``--device``) a CUDA device that this machine does not show."""
    import torch

    d = torch.device(device)
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if d.type == "cuda" and (d.index or 0) >= visible:
        raise ValueError(f"--device {device}: this machine shows {visible} CUDA device(s); pass --device cpu "
                         f"(with --allow-cpu for the paper profile), or run where a GPU is visible")


def notebook_parameters(path: Path) -> list[str]:
    """The names assigned in the cell tagged ``parameters`` of the notebook ``path``: the
    parameters papermill can set."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    names = []
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in ast.parse("".join(cell["source"])).body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def parameter_value(text: str) -> Any:
    """A ``-p`` value as papermill's own ``-p`` reads it: True, False, None, an int, a float, else the text."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def chapter_parameters(pairs: Sequence[Sequence[str]] | None, chapters: Sequence[Path]) -> dict[str, Any]:
    """The ``-p NAME VALUE`` pairs as papermill parameters, each checked to be a parameter of
    every chapter in ``chapters``; ``ValueError`` naming it and the chapters' parameters otherwise."""
    parameters = {name: parameter_value(value) for name, value in pairs or ()}
    if "profile" in parameters:
        raise ValueError("-p profile: use --profile to choose the profile")
    known = {c.stem: notebook_parameters(c) for c in chapters}
    for name in parameters:
        lacking = [stem for stem, names in known.items() if name not in names]
        if lacking:
            having = [stem for stem, names in known.items() if name in names]
            hint = f"; pass --only {','.join(having)} to execute only the chapters that have it" if having else ""
            raise ValueError(f"-p {name}: not a parameter of chapter {lacking[0]!r} (its parameters: "
                             f"{', '.join(known[lacking[0]])}){hint}")
    return parameters


def _book(args: argparse.Namespace) -> int:
    from localmixup.paper.book import build_book, chapters

    sources = chapters()
    only = None
    if args.only is not None:
        only = [name.strip() for part in args.only for name in part.split(",") if name.strip()]
        if not only:
            raise ValueError(f"--only needs at least one chapter name (comma-separated), got {args.only!r}; "
                             f"chapters are {[s.stem for s in sources]}")
    parameters = chapter_parameters(args.parameter, [s for s in sources if only is None or s.stem in only])
    index = build_book(args.profile, only, parameters)
    print(f"The book is at {index}")
    return 0


def decay_rates(text: str) -> list[float | str]:
    """An argparse ``type``: comma-separated decay rates >= 0, each a number or ``auto``."""
    one = number(float, 0.0)
    return [t.strip() if t.strip() == "auto" else one(t) for t in [t for t in text.split(",") if t.strip()] or [text]]


def _check_files(configs: Sequence[Any], set_aside_corrupt: bool, stack: int) -> None:
    """Refuse a sweep whose records or checkpoints cannot be read, naming them, or with
    ``set_aside_corrupt`` move each to the ``corrupt/`` folder beside it (its run is then pending)."""
    from localmixup.paper.record_files import find_corrupt, refuse_or_set_aside
    from localmixup.paper.sweep.plan import checkpoint_path, record_path

    records = list(dict.fromkeys(record_path(c, stack) for c in configs))
    folders = dict.fromkeys(checkpoint_path([c], stack).parent for c in configs)
    refuse_or_set_aside(find_corrupt(records, [p for folder in folders for p in sorted(folder.glob("*.pt"))]), set_aside_corrupt)


def _sweep(args: argparse.Namespace) -> int:
    import os

    from localmixup.paper.profiles import check_profile
    from localmixup.paper.sweep.images import check_backend, run_sweep
    from localmixup.paper.sweep.plan import make_configs

    if args.no_download:
        os.environ["LOCALMIXUP_NO_DOWNLOAD"] = "1"
    checkpoint_every = None if args.no_checkpoint else args.checkpoint_every
    check_backend(args.backend, args.address, args.gpus_per_run, args.jobs, args.max_retries, args.device, args.cpus_per_run,
                  args.stack, checkpoint_every, args.threads)
    if args.backend == "ray":
        # the runs train on the cluster's nodes, not here: CUDA where a task reserved GPUs
        if args.profile == "paper" and not args.gpus_per_run and not args.allow_cpu:
            raise ValueError("profile 'paper' needs GPUs: pass --gpus-per-run (e.g. 0.5), or --allow-cpu to train "
                             "it on the cluster's CPUs anyway")
        device = args.device
        address = args.address or os.environ.get("RAY_ADDRESS")
        where = (f"the Ray cluster at {address}" if address not in (None, "local") else "Ray on this machine") + (
            f", {args.gpus_per_run:g} GPU per run" if args.gpus_per_run else ", CPU")
    else:
        if args.device is not None:
            check_visible(args.device)
        device = check_profile(args.profile, allow_cpu=args.allow_cpu) if args.device is None else args.device
        where = device
    overrides = {"epochs": args.epochs, "train_size": args.train_size, "test_size": args.test_size,
                 "batch_size": args.batch_size, "lr": args.lr, BETA_FIELD: args.alpha}
    configs = make_configs(args.dataset, args.methods, args.seeds, args.profile, args.decay, **overrides)
    _check_files(configs, args.set_aside_corrupt, args.stack)
    print(f"training on {where}", flush=True)
    summary = run_sweep(configs, progress=not args.no_progress, device=None if device is None else str(device),
                        fast=False if args.no_fast else None, jobs=args.jobs, threads=args.threads, backend=args.backend,
                        address=args.address, gpus_per_run=args.gpus_per_run, cpus_per_run=args.cpus_per_run,
                        max_retries=args.max_retries, stack=args.stack, checkpoint_every=checkpoint_every)
    print(f"records in {sorted({str(p.parent) for p in summary.paths})}")
    if summary.failed:
        print(f"localmixup sweep: {summary.describe_failures()}", file=sys.stderr)
        return 1
    return 0


def eps_grid(text: str) -> list[float]:
    """An argparse ``type``: ``all`` (the authors' grid) or comma-separated thresholds >= 0."""
    from localmixup.paper.spirals.protocol import PAPER_EPS

    if text == "all":
        return list(PAPER_EPS)
    one = number(float, 0.0)
    return [one(e) for e in text.split(",")]


def widths(text: str) -> tuple[int, ...]:
    """An argparse ``type``: comma-separated hidden-layer widths >= 1 (e.g. 100,100,100)."""
    one = number(int, 1)
    return tuple(one(w) for w in text.split(","))


def draw_range(text: str) -> list[int]:
    """An argparse ``type``: a data seed or a range of them (e.g. 0-19)."""
    first, _, last = text.partition("-")
    one = number(int, 0)
    draws = list(range(one(first), one(last or first) + 1))
    if not draws:
        raise argparse.ArgumentTypeError(f"must be a data seed or a range of them such as 0-19, got {text!r}")
    return draws


def _spirals(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from localmixup.paper.record_files import find_corrupt, refuse_or_set_aside, results_dir
    from localmixup.paper.spirals.protocol import draw_seeds, sweep_configs, sweep_data
    from localmixup.paper.spirals.sweep import (cpu_seconds, load_spirals_sweep, read_chunk, recorded_seeds, sweep_folder,
                                                sweep_spirals)
    from localmixup.paper.sweep.plan import check_writable

    tag = args.tag or ("draws" if args.draws is not None else "authors-data" if args.authors_data else "paper")
    torch.set_num_threads(args.threads)
    runs = args.runs if args.runs is not None else 50 if args.draws is not None else 1000
    if args.draws is not None and args.first_seed:
        raise ValueError("--first-seed does not go with --draws: each draw's seeds are fixed (see DRAW_SEED_STRIDE)")
    data = {"source": "authors"} if args.authors_data else {"points_per_class": args.points_per_class}
    parts = ([(draw, draw_seeds(draw, runs)) for draw in args.draws] if args.draws is not None
             else [(None, list(range(args.first_seed, args.first_seed + runs)))])
    configs = sweep_configs(args.setting, args.eps, epochs=args.epochs, hidden=args.hidden,
                            batch_sizes=None if args.batch_size is None else dict.fromkeys(args.eps, args.batch_size))
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
                                     batch_sizes={c.eps: c.batch_size for c in configs}, hidden=args.hidden, data=data,
                                     draw=draw, device=args.device, chunk_size=args.chunk, threads=args.threads,
                                     backend=args.backend, progress=not args.no_progress)
                       for draw, seeds in parts])
    summary = frame.groupby("eps")["test_error_pct"].agg(["count", "mean", "std"])
    print(summary.rename(columns={"count": "runs", "mean": "test error %", "std": "sd %"}).round(2).to_string())
    seconds, recorded = cpu_seconds(tag, args.setting), len(load_spirals_sweep(tag, args.setting))
    print(f"records: {results_dir('spirals', tag, args.setting)}; CPU time recorded for this setting: "
          f"{seconds / 3600:.2f} h for {recorded} runs ({seconds / recorded:.2f} s per run)")
    return 0


def parser() -> argparse.ArgumentParser:
    """The ``localmixup`` argument parser (one sub-command per task)."""
    from localmixup.paper.protocols import PROTOCOLS, SIZE_SETTINGS

    main_parser = _Parser(prog="localmixup", description=__doc__)
    commands = main_parser.add_subparsers(dest="command", required=True)
    book = commands.add_parser("book", help="execute every chapter with papermill, then build the Jupyter Book")
    book.add_argument("--profile", default="auto", choices=["auto", "paper", "cpu", "quick"],
                      help="auto (default): per chapter, the most faithful profile whose runs are all recorded (paper, "
                           "then cpu, then quick), else paper where a GPU is visible and quick elsewhere; quick: minutes "
                           "on a CPU; cpu: Table 1's Fashion-MNIST row with LeNet-5, hours on a CPU; paper: the paper's "
                           "protocol (GPU)")
    book.add_argument("--only", action="append", metavar="NAME", help="execute only these chapters (comma-separated notebook names), and those not executed yet; the book is still built whole")
    book.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                      help="set a parameter of the executed chapters (a name of their cell tagged 'parameters'; "
                      "every executed chapter must have it: combine with --only), e.g. -p seeds 0-4; the value is "
                      "read as papermill's -p reads it (True, False, None, a number, else text)")
    book.set_defaults(run=_book)

    sweep = commands.add_parser("sweep", help="train the Table-1 runs that have no record yet (resumable)")
    sweep.add_argument("--dataset", required=True, help="dataset(s), comma-separated: cifar10, cifar100, svhn, fashion_mnist, mnist")
    sweep.add_argument("--methods", default="baseline,mixup,local", help="comma-separated: baseline, mixup, local, adamixup")
    sweep.add_argument("--seeds", default="0", help="e.g. 0-9 or 0,3,5")
    sweep.add_argument("--profile", default="quick", choices=list(PROTOCOLS),
                       help="training protocol (paper needs a GPU; cpu: Fashion-MNIST with LeNet-5, hours on a CPU; "
                       f"{', '.join(SIZE_SETTINGS)}: the size study, LeNet-5 on that many training images per seed)")
    sweep.add_argument("--decay", type=decay_rates, metavar="RATES",
                       help="decay rate(s) >= 0 of Local Mixup's exponential graph W = exp(-decay D), comma-separated: "
                       "one run per rate; auto: the automatic rate of the training split (default: the profile's)")
    sweep.add_argument("--alpha", type=number(float, 0.0, low_open=True), metavar="A",
                       help="the Beta(A, A) law of the mixing coefficient lambda of Mixup and Local Mixup, A > 0 "
                       "(default: the profile's, 1); the decay rate, which --alpha used to set, is --decay")
    sweep.add_argument("--epochs", type=number(int, 1), help="override the profile's epochs (records go to a separate folder)")
    sweep.add_argument("--train-size", type=number(int, 1), help="override: train on a fixed subset of this size")
    sweep.add_argument("--test-size", type=number(int, 1), help="override: test on a fixed subset of this size")
    sweep.add_argument("--batch-size", type=number(int, 2), help="override the batch size (>= 2)")
    sweep.add_argument("--lr", type=number(float, 0.0, low_open=True), help="override the initial learning rate (> 0)")
    sweep.add_argument("--jobs", type=number(int, 1), default=1, help="local backend: runs trained at once in separate processes")
    sweep.add_argument("--threads", type=number(int, 1), metavar="N", help="local backend: torch threads of each training "
                       "process (default 1: a CPU run's numbers depend on it; use --jobs to train on several cores)")
    sweep.add_argument("--stack", type=number(int, 1), default=1, metavar="R",
                       help="local backend: train up to R runs of one recipe (seeds, methods, decay rates) as one stacked "
                       "model, for a GPU that small batches leave idle (default 1: one run at a time)")
    sweep.add_argument("--checkpoint-every", type=number(float, 0.0), default=60.0, metavar="SECONDS",
                       help="local backend: save a run in progress at the end of an epoch at most every SECONDS "
                       "(default 60; 0: every epoch), so that a killed sweep resumes it where it stopped")
    sweep.add_argument("--no-checkpoint", action="store_true", help="no checkpoints: an interrupted run starts over")
    sweep.add_argument("--set-aside-corrupt", action="store_true",
                       help="move each record or checkpoint of the sweep that cannot be read (truncated, empty, not "
                       "JSON) to a corrupt/ folder beside it, named in the output, and train its run again; without "
                       "it, such a file stops the sweep before anything trains. Nothing is deleted")
    sweep.add_argument("--backend", default="local", help="local (this machine, default) or ray (one Ray task per run; "
                       "pip install 'localmixup[ray]')")
    sweep.add_argument("--address", help="ray: the head node's HOST:PORT, auto (a cluster started on this machine), or "
                       "local (a new Ray instance on this machine alone, listening on 127.0.0.1 only); default: "
                       "$RAY_ADDRESS, else the cluster last started on this machine, else local")
    sweep.add_argument("--gpus-per-run", type=number(float, 0.0, low_open=True), metavar="F",
                       help="ray: GPUs per run, in (0, 1] to share a GPU (e.g. 0.25) or an integer; default: CPU runs")
    sweep.add_argument("--cpus-per-run", type=number(int, 1), metavar="N", help="ray: CPU slots per run = its torch threads "
                       "(default 1, as the local backend's --threads, so CPU numbers match)")
    sweep.add_argument("--max-retries", type=number(int, 0), default=2,
                       help="ray: retries of a run whose worker process died (default 2)")
    sweep.add_argument("--device", type=torch_device, help="torch device (default: cuda if visible, else cpu)")
    sweep.add_argument("--allow-cpu", action="store_true", help="allow the paper profile on a CPU")
    sweep.add_argument("--no-download", action="store_true", help="never download a missing dataset")
    sweep.add_argument("--no-fast", action="store_true", help="plain eager steps on CUDA (no CUDA graph)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bars")
    sweep.set_defaults(run=_sweep)

    from localmixup.paper.spirals.protocol import DATA_DEFAULTS, DRAW_SEED_STRIDE, SETTINGS, SPIRALS_PROFILES
    from localmixup.paper.spirals.config import TRAINER_BACKENDS

    chunk = SPIRALS_PROFILES["paper"]["chunk_size"]
    spirals = commands.add_parser("spirals", help="train the spirals runs of Figure 3 that have no record yet (resumable)")
    spirals.add_argument("--setting", required=True, choices=tuple(SETTINGS), help="which setting to run")
    spirals.add_argument("--runs", type=number(int, 1), default=None,
                         help="runs per threshold: seeds first .. first + runs - 1 (default 1000); with --draws, runs per "
                              f"threshold of each draw, seeds {DRAW_SEED_STRIDE} * draw + 0 .. runs - 1 (default 50)")
    spirals.add_argument("--first-seed", type=number(int, 0), default=0, help="first run seed (default 0; not with --draws)")
    spirals.add_argument("--eps", type=eps_grid, default="all", help="'all' (the paper's grid, default) or a comma-separated list")
    spirals.add_argument("--epochs", type=number(int, 1), default=200, help="epochs per run (default 200, the paper's)")
    spirals.add_argument("--batch-size", type=number(int, 1), default=None,
                         help="batch size at every eps (default: the authors' batch size of each eps of their grid; needed "
                              "for an eps off that grid)")
    spirals.add_argument("--set-aside-corrupt", action="store_true",
                         help="move each chunk file of the sweep that cannot be read to a corrupt/ folder beside it, named in "
                              "the output, and train its runs again; without it, such a file stops the sweep before anything trains")
    data = spirals.add_mutually_exclusive_group()
    data.add_argument("--draws", type=draw_range, default=None,
                      help="spread the runs over these data sets (seeds of make_spirals, e.g. 0-19), one folder each")
    data.add_argument("--authors-data", action="store_true",
                      help="train on the authors' own files (in data/spirals_dataset/, see load_authors_spirals)")
    spirals.add_argument("--tag", default=None,
                         help="records folder under results/spirals/ (default 'paper'; 'draws' with --draws, 'authors-data' "
                              "with --authors-data)")
    spirals.add_argument("--chunk", type=number(int, 1), default=chunk,
                         help=f"runs trained together and recorded in one file (default {chunk}, the paper profile's)")
    spirals.add_argument("--threads", type=number(int, 1), default=1, help="CPU threads (default 1)")
    spirals.add_argument("--device", type=torch_device, default="cpu", help="torch device (default cpu; cuda runs the torch path)")
    spirals.add_argument("--backend", default="auto", choices=TRAINER_BACKENDS,
                         help="trainer backend (default auto: the compiled kernel on a CPU)")
    spirals.add_argument("--hidden", type=widths, default=(100, 100, 100), help="hidden layer widths (default 100,100,100)")
    spirals.add_argument("--points-per-class", type=number(int, 1), default=DATA_DEFAULTS["points_per_class"],
                         help="spirals data size (default 1000)")
    spirals.add_argument("--no-progress", action="store_true", help="no progress bar")
    spirals.set_defaults(run=_spirals)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors are printed as one clear message with a non-zero exit code."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (NotebookFailed, ValueError, RuntimeError, OSError) as error:
        print(f"localmixup {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"localmixup {args.command}: interrupted", file=sys.stderr)
        return 130
