"""Training-step speed on this CPU under each CPU setting: layout, bf16 autocast, torch.compile.

Printed, all in the same run, for each network (LeNet-5 on 1x32x32, the Fashion-MNIST images padded
as the project does; a small DenseNet-BC, blocks 2-2-2-2 growth 8 as ``bench_train.py --small``; the
paper's DenseNet-BC on 1x28x28), synthetic data, batch 128 (LeNet-5) or 64 (DenseNet-BC):
1. images per second of a full Local Mixup training step (``LocalMixup("exp", decay=5e-4,
   pairing="permutation", seed=0)``, ``mixup_loss``, backward, the project's SGD: lr 0.05,
   momentum 0.9, weight decay 5e-4) under each setting, and its ratio against fp32 eager
   (contiguous layout): fp32 / fp32 channels-last / bf16 autocast (forward and loss only) /
   bf16 channels-last / torch.compile of the model (default mode, fp32 channels-last; compile time,
   the first step, printed apart) / torch.compile + bf16 channels-last;
2. for fp32 eager and the fastest setting: the cost of a Local Mixup step against a Mixup step
   (``LocalMixup("none", ...)``) and against a step without mixing (plain cross-entropy).

The paper's DenseNet-BC is opt-in (``--networks``): on a loaded core, compiling it takes about
4 minutes per compiled setting (inductor's on-disk cache shortens a repeat). Median of
``--rounds`` interleaved rounds (every case in turn, ``--steps`` steps each), so the drifts
of a shared machine fall on every case alike: compare ratios within one run only. The clock is the
process's CPU time by default (robust to other processes on the cores; ``--clock wall`` for
wall time). Examples::

    python benchmarks/bench_cpu_settings.py                             # LeNet-5 and small DenseNet-BC, 1 thread
    python benchmarks/bench_cpu_settings.py --networks densenet_bc      # the paper's DenseNet-BC (slow)
    python benchmarks/bench_cpu_settings.py --networks lenet5 --steps 50 --rounds 7 --threads 2
    python benchmarks/bench_cpu_settings.py --networks densenet_small --settings fp32,bf16_cl,compile_bf16_cl
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

import localmixup as lm
from bench_train import _interleaved
from localmixup.mixing import MixedBatch
from localmixup.paper.training.optim import SGD
from localmixup.paper.training.step import optimiser_step
from localmixup.paper.models import build_model

CPU = torch.device("cpu")


class Network(NamedTuple):
    label: str
    model: str  # name for build_model
    options: dict[str, object]
    shape: tuple[int, int, int]
    default_steps: int  # timed steps per case and round: about 0.2-1.5 s of one core


class Setting(NamedTuple):
    label: str
    channels_last: bool
    bf16: bool
    compiled: bool


NETWORKS = {
    "lenet5": Network("LeNet-5", "lenet5", {}, (1, 32, 32), 20),
    "densenet_small": Network("DenseNet-BC 2-2-2-2, growth 8", "densenet_bc", {"blocks": (2, 2, 2, 2), "growth": 8},
                              (1, 28, 28), 4),
    "densenet_bc": Network("DenseNet-BC (paper)", "densenet_bc", {}, (1, 28, 28), 1),
}
SETTINGS = {
    "fp32": Setting("fp32 eager, contiguous", False, False, False),
    "fp32_cl": Setting("fp32 eager, channels_last", True, False, False),
    "bf16": Setting("bf16 autocast, contiguous", False, True, False),
    "bf16_cl": Setting("bf16 autocast, channels_last", True, True, False),
    "compile_cl": Setting("torch.compile, fp32, channels_last", True, False, True),
    "compile_bf16_cl": Setting("torch.compile, bf16 autocast, channels_last", True, True, True),
}
METHODS = ("local", "mixup", "none")


class Trainer:
    """One network under one setting: its model (same initial weights in every setting), optimiser and batch."""

    def __init__(self, network: Network, setting: Setting, batch: int) -> None:
        layout = torch.channels_last if setting.channels_last else torch.contiguous_format
        torch.manual_seed(0)
        model = build_model(network.model, 10, 1, **network.options).to(memory_format=layout)
        self.optimiser = SGD(model.parameters(), 0.05, 0.9, 5e-4)
        self.model = torch.compile(model) if setting.compiled else model
        self.bf16 = setting.bf16
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, *network.shape, generator=g).contiguous(memory_format=layout)
        self.y = torch.randint(0, 10, (batch,), generator=g)
        self.mixers = {"local": lm.LocalMixup("exp", decay=5e-4, pairing="permutation", seed=0, validate=False),
                       "mixup": lm.LocalMixup("none", pairing="permutation", seed=0, validate=False), "none": None}

    def _loss(self, batch: MixedBatch | None) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            if batch is None:
                return F.cross_entropy(self.model(self.x).float(), self.y)
            return lm.mixup_loss(self.model(batch.x), batch)

    def step_fn(self, method: str) -> Callable[[], None]:
        """One training step (mixing, forward, loss, backward, SGD update) with ``method`` of ``METHODS``."""
        mixer = self.mixers[method]

        def step() -> None:
            optimiser_step(self._loss, self.optimiser, None if mixer is None else mixer(self.x, self.y))
        return step


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], left: tuple[int, ...] = (0,)) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  " + "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())


def bench_network(name: str, settings: list[str], batch: int, steps: int, rounds: int,
                  clock: Callable[[], float]) -> None:
    """Print the settings table and the mixing-cost table of network ``name``."""
    network = NETWORKS[name]
    print(f"\n{name}: {network.label}, input {'x'.join(map(str, network.shape))}, batch {batch}, "
          f"{steps} steps per case and round")
    trainers: dict[str, Trainer] = {}
    notes: dict[str, str] = {}
    for key in settings:
        start = time.perf_counter()
        try:
            trainer = Trainer(network, SETTINGS[key], batch)
            trainer.step_fn("local")()  # the first step: compiles a compiled model (forward and backward)
        except Exception as error:  # a setting this torch or CPU cannot run: reported, the others go on
            if key == "fp32":
                raise
            print(f"  skipped {key} ({SETTINGS[key].label}): {type(error).__name__}: {str(error).splitlines()[0][:200]}")
            continue
        trainers[key] = trainer
        if SETTINGS[key].compiled:
            notes[key] = f"compile (first step) {time.perf_counter() - start:.1f} s wall"

    t = _interleaved({key: tr.step_fn("local") for key, tr in trainers.items()}, steps, CPU, rounds, warmup=2, clock=clock)
    base = t["fp32"]
    _table(("setting", "img/s", "vs fp32 eager", "note"),
           [(f"{key:<15} {SETTINGS[key].label}", f"{batch / s:,.1f}", f"{base / s:.2f}x", notes.get(key, ""))
            for key, s in t.items()], left=(0, 3))

    fastest = min(t, key=t.get)
    compared = list(dict.fromkeys(("fp32", fastest)))
    m = _interleaved({(key, method): trainers[key].step_fn(method) for key in compared for method in METHODS},
                     steps, CPU, rounds, warmup=2, clock=clock)
    print(f"  step cost of Local Mixup against Mixup and no mixing (fastest setting: {fastest}), "
          f"a second interleaved pass:")
    _table(("setting", "Local img/s", "Mixup img/s", "no mix img/s", "Local/Mixup", "Local/no mix"),
           [(key, *(f"{batch / m[key, method]:,.1f}" for method in METHODS),
             f"{m[key, 'local'] / m[key, 'mixup']:.3f}x", f"{m[key, 'local'] / m[key, 'none']:.3f}x") for key in compared])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", default="lenet5,densenet_small", help=f"comma-separated subset of {', '.join(NETWORKS)}")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated subset of {', '.join(SETTINGS)} (fp32, the baseline, is always run)")
    parser.add_argument("--steps", type=int,
                        help="timed steps per case and round (default: " +
                             ", ".join(f"{k} {n.default_steps}" for k, n in NETWORKS.items()) + ")")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each case's median is printed")
    parser.add_argument("--batch-lenet", type=int, default=128)
    parser.add_argument("--batch-densenet", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (sweeps run one 1-thread process per core)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="process CPU time (default) or wall time")
    args = parser.parse_args()
    networks = args.networks.split(",")
    settings = ["fp32", *(s for s in args.settings.split(",") if s != "fp32")]
    for value, known in ((networks, NETWORKS), (settings, SETTINGS)):
        unknown = sorted(set(value) - set(known))
        if unknown:
            parser.error(f"unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, clock: {'process CPU time' if args.clock == 'cpu' else 'wall time'}, "
          f"median of {args.rounds} interleaved rounds; Local Mixup step unless said")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    for name in networks:
        batch = args.batch_lenet if name == "lenet5" else args.batch_densenet
        bench_network(name, settings, batch, args.steps or NETWORKS[name].default_steps, args.rounds, clock)


if __name__ == "__main__":
    main()
