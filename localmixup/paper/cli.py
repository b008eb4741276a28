"""Command line: ``localmixup book`` (execute the chapters and build the book) and
``localmixup sweep`` (train the runs of Table 1 that have no record yet)."""

from __future__ import annotations

import argparse
import sys

from localmixup.paper.book import NotebookFailed, build_book


def _book(args: argparse.Namespace) -> int:
    only = [name for part in args.only for name in part.split(",") if name] if args.only else None
    index = build_book(args.profile, only)
    print(f"The book is at {index}")
    return 0


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
        where = (f"the Ray cluster at {address}" if address else "Ray on this machine") + (
            f", {args.gpus_per_run:g} GPU per run" if args.gpus_per_run else ", CPU")
    else:
        device = check_profile(args.profile, allow_cpu=args.allow_cpu) if args.device is None else args.device
        where = device
    decays = [a.strip() if a.strip() == "auto" else float(a) for a in args.decay.split(",")] if args.decay else None
    overrides = {"epochs": args.epochs, "train_size": args.train_size, "test_size": args.test_size,
                 "batch_size": args.batch_size, "lr": args.lr}
    configs = make_configs(args.dataset, args.methods, args.seeds, args.profile, decays, **overrides)
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


def parser() -> argparse.ArgumentParser:
    """The ``localmixup`` argument parser (one sub-command per task)."""
    main_parser = argparse.ArgumentParser(prog="localmixup", description=__doc__)
    commands = main_parser.add_subparsers(dest="command", required=True)
    book = commands.add_parser("book", help="execute every chapter with papermill, then build the Jupyter Book")
    book.add_argument("--profile", default="auto", choices=["auto", "quick", "paper"],
                      help="quick: minutes on a CPU; paper: the paper's protocol (GPU); auto: paper if a GPU is visible")
    book.add_argument("--only", action="append", metavar="NAME", help="execute only these chapters (comma-separated notebook names); the book is still built whole")
    book.set_defaults(run=_book)

    sweep = commands.add_parser("sweep", help="train the Table-1 runs that have no record yet (resumable)")
    sweep.add_argument("--dataset", required=True, help="dataset(s), comma-separated: cifar10, cifar100, svhn, fashion_mnist, mnist")
    sweep.add_argument("--methods", default="baseline,mixup,local", help="comma-separated: baseline, mixup, local, adamixup")
    sweep.add_argument("--seeds", default="0", help="e.g. 0-9 or 0,3,5")
    sweep.add_argument("--profile", default="quick", choices=["quick", "cpu", "paper"],
                       help="training protocol (paper needs a GPU; cpu: Fashion-MNIST with LeNet-5, hours on a CPU)")
    sweep.add_argument("--decay", help="decay rate(s) of Local Mixup's exponential graph, comma-separated; auto: the "
                       "automatic rate of the training split (default: the profile's)")
    sweep.add_argument("--epochs", type=int, help="override the profile's epochs (records go to a separate folder)")
    sweep.add_argument("--train-size", type=int, help="override: train on a fixed subset of this size")
    sweep.add_argument("--test-size", type=int, help="override: test on a fixed subset of this size")
    sweep.add_argument("--batch-size", type=int, help="override the batch size")
    sweep.add_argument("--lr", type=float, help="override the initial learning rate")
    sweep.add_argument("--jobs", type=int, default=1, help="local backend: runs trained at once in separate processes")
    sweep.add_argument("--threads", type=int, metavar="N", help="local backend: torch threads of each training process "
                       "(default 1: a CPU run's numbers depend on it; use --jobs to train on several cores)")
    sweep.add_argument("--stack", type=int, default=1, metavar="R",
                       help="local backend: train up to R runs of one recipe (seeds, methods, alphas) as one stacked "
                       "model, for a GPU that small batches leave idle (default 1: one run at a time)")
    sweep.add_argument("--checkpoint-every", type=float, default=60.0, metavar="SECONDS",
                       help="local backend: save a run in progress at the end of an epoch at most every SECONDS "
                       "(default 60; 0: every epoch), so that a killed sweep resumes it where it stopped")
    sweep.add_argument("--no-checkpoint", action="store_true", help="no checkpoints: an interrupted run starts over")
    sweep.add_argument("--backend", default="local", help="local (this machine, default) or ray (one Ray task per run; "
                       "pip install 'localmixup[ray]')")
    sweep.add_argument("--address", help="ray: the head node's HOST:PORT, or auto (default: $RAY_ADDRESS, else Ray on this machine alone)")
    sweep.add_argument("--gpus-per-run", type=float, metavar="F", help="ray: GPUs per run, in (0, 1] to share a GPU (e.g. 0.25) "
                       "or an integer; default: CPU runs")
    sweep.add_argument("--cpus-per-run", type=int, metavar="N", help="ray: CPU slots per run = its torch threads "
                       "(default: this machine's torch thread count, as the local backend, so CPU numbers match; 1 with --gpus-per-run)")
    sweep.add_argument("--max-retries", type=int, default=2, help="ray: retries of a run whose worker process died (default 2)")
    sweep.add_argument("--device", help="torch device (default: cuda if visible, else cpu)")
    sweep.add_argument("--allow-cpu", action="store_true", help="allow the paper profile on a CPU")
    sweep.add_argument("--no-download", action="store_true", help="never download a missing dataset")
    sweep.add_argument("--no-fast", action="store_true", help="plain eager steps on CUDA (no CUDA graph)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bars")
    sweep.set_defaults(run=_sweep)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors are printed as one clear message with a non-zero exit code."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (NotebookFailed, ValueError, RuntimeError) as error:
        print(f"localmixup {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"localmixup {args.command}: interrupted", file=sys.stderr)
        return 130
