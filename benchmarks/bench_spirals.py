"""Speed of the many-runs spirals trainer against a loop of single runs (a benchmark, not a test).

Times ``train_many`` (R stacked MLPs) and ``train_single`` (the plain nn.Module loop
with LocalMixup + mixup_loss) on the same device, same protocol, and prints runs per
second and the ratio. The loop is timed on ``--loop-runs`` runs (a rate does not need
all R of them; 1000 single runs on a GPU would take many minutes).

    python benchmarks/bench_spirals.py --device cpu --runs 100 --steps 160
    python benchmarks/bench_spirals.py --device cuda --runs 1000 --steps 500
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from localmixup.paper.engine.many_runs import ManyRunsConfig, train_many, train_single
from localmixup.paper.provenance import environment
from localmixup.paper.spirals import make_spirals


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--runs", type=int, default=100, help="R, runs trained at once")
    parser.add_argument("--steps", type=int, default=160, help="optimiser steps per run (rounded up to whole epochs)")
    parser.add_argument("--batch", type=int, default=20, help="batch size (the paper's grid uses 20 to 241)")
    parser.add_argument("--eps", type=float, default=1.0, help="threshold of the locality graph")
    parser.add_argument("--pairing", default="permutation", choices=("permutation", "graph"))
    parser.add_argument("--loop-runs", type=int, default=None, help="single runs timed in the loop (default min(R, 10))")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    split = make_spirals(1000, seed=0)
    n = split.x_train.shape[0]
    epochs = max(1, math.ceil(args.steps / math.ceil(n / args.batch)))
    steps = epochs * math.ceil(n / args.batch)
    config = ManyRunsConfig(eps=args.eps, batch_size=args.batch, epochs=epochs, pairing=args.pairing)
    loop_runs = args.loop_runs or min(args.runs, 10)

    # Warm-up (allocator, kernels, thread pools).
    warm = ManyRunsConfig(eps=args.eps, batch_size=args.batch, epochs=1, pairing=args.pairing)
    train_many(split, list(range(min(args.runs, 8))), warm, device=device)
    train_single(split, 0, warm, device=device)

    _sync(device)
    t0 = time.perf_counter()
    train_many(split, list(range(args.runs)), config, device=device)
    _sync(device)
    stacked = time.perf_counter() - t0

    t0 = time.perf_counter()
    for seed in range(loop_runs):
        train_single(split, seed, config, device=device)
    _sync(device)
    loop = time.perf_counter() - t0

    env = environment(device)
    print(f"load average {os.getloadavg()[0]:.1f}; device: {env['device']}; torch {env['torch']}; commit {env['commit']}; {torch.get_num_threads()} CPU threads")
    print(f"protocol: MLP 2-100-100-100-2, eps={args.eps:g}, pairing={args.pairing}, batch {args.batch}, {epochs} epochs = {steps} steps per run")
    rate_stacked, rate_loop = args.runs / stacked, loop_runs / loop
    print()
    print(f"| {'trainer':<26} | {'runs':>5} | {'seconds':>8} | {'runs/s':>8} | {'ratio':>6} |")
    print(f"|{'-' * 28}|{'-' * 7}|{'-' * 10}|{'-' * 10}|{'-' * 8}|")
    print(f"| {'loop of single runs':<26} | {loop_runs:>5} | {loop:>8.2f} | {rate_loop:>8.3f} | {1.0:>6.1f} |")
    print(f"| {'many-runs (stacked)':<26} | {args.runs:>5} | {stacked:>8.2f} | {rate_stacked:>8.3f} | {rate_stacked / rate_loop:>6.1f} |")


if __name__ == "__main__":
    main()
