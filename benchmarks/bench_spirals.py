"""Speed of the many-runs spirals trainer against the project's per-run loop (a benchmark, not a test).

Measures, in one process, interleaved over ``--repeats`` rounds (medians reported), CPU time
(this process, all threads: the machine may be shared):

* the stacked trainer (``train_many``, ``--runs`` runs at once, the test curve every 10 epochs
  as in the sweep) at every batch size of the paper's grid, for the paper's 200 epochs by default
  (the first epochs cost more than the later ones, where most hidden units are inactive and
  skipped: a shorter ``--epochs`` is extrapolated linearly and overestimates), and its average
  over the grid's ten thresholds;
* the per-run loop (``train_single``: nn.Module, LocalMixup, mixup_loss, torch.optim.Adam) at
  batch 20 on ``--loop-runs`` runs of ``--loop-epochs`` epochs, extrapolated the same way;

and prints runs per second (per CPU core) of both at batch 20 and their ratio.

    python benchmarks/bench_spirals.py                         # CPU, the authors' setting (about 6 CPU minutes)
    python benchmarks/bench_spirals.py --setting eq2-graph --threads 2
    python benchmarks/bench_spirals.py --device cuda --runs 1000 --backend torch
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import torch

from localmixup.paper.spirals.config import TRAINER_BACKENDS
from localmixup.paper.spirals.reference import train_single
from localmixup.paper.spirals.trainer import train_many
from localmixup.paper.provenance import environment
from localmixup.paper.spirals.data import make_spirals
from localmixup.paper.spirals.protocol import PAPER_BATCH_SIZES, PAPER_EPS, SETTINGS, paper_config

PAPER_EPOCHS = 200


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``function()``."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    cpu, wall = cpu_seconds(), time.perf_counter()
    function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return cpu_seconds() - cpu, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", default="authors", choices=tuple(SETTINGS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="auto", choices=TRAINER_BACKENDS)
    parser.add_argument("--runs", type=int, default=50, help="runs trained at once by the stacked trainer (default 50)")
    parser.add_argument("--epochs", type=int, default=PAPER_EPOCHS, help=f"epochs timed per batch size (default {PAPER_EPOCHS})")
    parser.add_argument("--loop-runs", type=int, default=2, help="runs of the per-run loop timed per round (default 2)")
    parser.add_argument("--loop-epochs", type=int, default=2, help="epochs of each of them (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; medians are reported (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    split = make_spirals(seed=0)
    sizes = sorted(set(PAPER_BATCH_SIZES.values()))

    def stacked(batch: int) -> tuple[float, float]:
        eps = next(e for e in PAPER_EPS if PAPER_BATCH_SIZES[e] == batch and e > 0)
        config = paper_config(args.setting, eps, epochs=args.epochs)
        return timed(lambda: train_many(split, list(range(args.runs)), config, device=args.device, curve_every=10,
                                        threads=args.threads, backend=args.backend))

    def loop() -> tuple[float, float]:
        config = paper_config(args.setting, 10.0, epochs=args.loop_epochs)  # batch 20
        return timed(lambda: [train_single(split, seed, config, device=args.device) for seed in range(args.loop_runs)])

    train_many(split, [0, 1], paper_config(args.setting, 1.0, epochs=1), device=args.device, backend=args.backend)  # warm-up, compiles
    samples: dict[object, list[tuple[float, float]]] = {b: [] for b in [*sizes, "loop"]}
    for _ in range(args.repeats):
        for batch in sizes:
            samples[batch].append(stacked(batch))
        samples["loop"].append(loop())

    def per_run(key, runs: int, epochs: int, index: int) -> float:
        """Median seconds (CPU: index 0, wall: 1) per run at the paper's 200 epochs."""
        return statistics.median(s[index] for s in samples[key]) / runs * PAPER_EPOCHS / epochs

    env = environment(args.device)
    print(f"load average {os.getloadavg()[0]:.1f}; device: {env['device']}; torch {env['torch']}; commit {env['commit']}; "
          f"{args.threads} thread(s); setting {args.setting}; backend {args.backend}")
    print(f"stacked: {args.runs} runs x {args.epochs} epochs per batch size; loop: {args.loop_runs} runs x {args.loop_epochs} epochs; "
          f"medians of {args.repeats} interleaved rounds, extrapolated to {PAPER_EPOCHS} epochs\n")
    print(f"| {'batch':>5} | {'thresholds':<24} | {'CPU s / run':>11} | {'wall s / run':>12} |")
    print(f"|{'-' * 7}|{'-' * 26}|{'-' * 13}|{'-' * 14}|")
    cost = {}
    for batch in sizes:
        cost[batch] = per_run(batch, args.runs, args.epochs, 0)
        thresholds = ", ".join(f"{e:g}" for e in PAPER_EPS if PAPER_BATCH_SIZES[e] == batch)
        print(f"| {batch:>5} | {thresholds:<24} | {cost[batch]:>11.3f} | {per_run(batch, args.runs, args.epochs, 1):>12.3f} |")
    grid = statistics.mean(cost[PAPER_BATCH_SIZES[e]] for e in PAPER_EPS)
    print(f"\nstacked trainer, paper protocol averaged over the grid's {len(PAPER_EPS)} thresholds: {grid:.3f} CPU s per run "
          f"({len(PAPER_EPS) * 1000 * grid / 3600:.1f} CPU hours for 1000 runs per threshold)")
    loop_cost = per_run("loop", args.loop_runs, args.loop_epochs, 0)
    print(f"\n| {'trainer (batch 20, 200 epochs)':<34} | {'CPU s / run':>11} | {'runs / CPU s':>12} | {'ratio':>6} |")
    print(f"|{'-' * 36}|{'-' * 13}|{'-' * 14}|{'-' * 8}|")
    print(f"| {'per-run loop (train_single)':<34} | {loop_cost:>11.2f} | {1 / loop_cost:>12.4f} | {1.0:>6.1f} |")
    print(f"| {'stacked (train_many)':<34} | {cost[20]:>11.3f} | {1 / cost[20]:>12.4f} | {loop_cost / cost[20]:>6.1f} |")


if __name__ == "__main__":
    main()
