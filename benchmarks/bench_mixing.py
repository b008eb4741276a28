"""One training step of a small CNN: Mixup versus Local Mixup with each graph, same batch.

Prints steps per second and the cost ratio against Mixup measured in the same run
(interleaved rounds, median of rounds, so machine noise hits every method alike). On a CPU
the clock is the process's CPU time by default (robust to other processes sharing the cores).
With ``--large 512,1024,2048,4096`` it times the mixing alone at those batch sizes against
torchvision's ``transforms.v2.MixUp`` (when importable), ratios printed in the same run: permutation
pairing with the exp and threshold graphs reads only the B pair distances, graph pairing the whole
(B, B) matrix.
Usage: python benchmarks/bench_mixing.py [--device cpu|cuda] [--batch 128] [--steps 20] [--rounds 5] [--clock cpu|wall]
       [--large 512,1024,2048,4096]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import localmixup as lm
import localmixup.paper as lp


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(128, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=str(lp.default_device()))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clock", choices=("cpu", "wall"), default=None, help="default: cpu on a CPU, wall on CUDA")
    parser.add_argument("--large", default=None, help="comma-separated batch sizes: time the mixing alone against torchvision")
    args = parser.parse_args()
    device = torch.device(args.device)
    clock = time.process_time if (args.clock or ("wall" if device.type == "cuda" else "cpu")) == "cpu" else time.perf_counter
    if args.large:
        large_batches([int(b) for b in args.large.split(",")], device, clock, args.rounds)
        return
    torch.manual_seed(0)
    model = small_cnn().to(device)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    generator = torch.Generator(device).manual_seed(0)
    methods = {
        "Mixup": lm.LocalMixup("none", pairing="permutation", generator=generator, validate=False),
        "Local, exp (permutation)": lm.LocalMixup("exp", decay=1e-3, pairing="permutation", generator=generator, validate=False),
        "Local, exp (graph)": lm.LocalMixup("exp", decay=1e-3, generator=generator, validate=False),
        "Local, threshold": lm.LocalMixup("threshold", eps=40.0, generator=generator, validate=False),
        "Local, kNN": lm.LocalMixup("knn", k=16, generator=generator, validate=False),
    }

    def step(mix: lm.LocalMixup) -> None:
        batch = mix(x, y)
        loss = lm.mixup_loss(model(batch.x), batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    def timed(work, mix: lm.LocalMixup, repeats: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = clock()
        for _ in range(repeats):
            work(mix)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (clock() - start) / repeats

    def mixing(mix: lm.LocalMixup) -> None:
        mix(x, y)

    for mix in methods.values():  # warm-up
        step(mix)
    seconds = {name: [] for name in methods}
    mixing_seconds = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, mix in methods.items():
            seconds[name].append(timed(step, mix, args.steps))
            mixing_seconds[name].append(timed(mixing, mix, 5 * args.steps))
    base = statistics.median(seconds["Mixup"])
    base_mixing = statistics.median(mixing_seconds["Mixup"])
    print(f"device: {lp.device_name(device)}, torch {torch.__version__}, batch {args.batch}, "
          f"{args.rounds} rounds x {args.steps} steps, {clock.__name__}, commit {lp.git_commit()}")
    print("cost vs Mixup: whole steps timed against each other; from mixing: 1 + (its mixing - Mixup's mixing) / Mixup's step,")
    print("the same overhead measured on the mixing alone (less noise: the network's time is left out)")
    print(f"{'method':<28}{'steps/s':>10}{'cost vs Mixup':>16}{'mixing ms':>12}{'from mixing':>14}")
    for name, values in seconds.items():
        median, mixing_median = statistics.median(values), statistics.median(mixing_seconds[name])
        print(f"{name:<28}{1 / median:>10.1f}{median / base:>15.3f}x{1000 * mixing_median:>12.2f}"
              f"{1 + (mixing_median - base_mixing) / base:>13.3f}x")

def large_batches(sizes: list[int], device: torch.device, clock, rounds: int) -> None:
    """Mixing alone, (B, 3, 32, 32) batches of each size, median of ``rounds`` interleaved calls, in ms and
    as a ratio to torchvision's MixUp (or to Mixup where torchvision is missing)."""
    try:
        from torchvision.transforms import v2
    except ImportError:
        v2 = None
    print(f"device: {lp.device_name(device)}, torch {torch.__version__}, mixing alone on (B, 3, 32, 32), "
          f"median of {rounds} rounds, {clock.__name__}, commit {lp.git_commit()}")
    generator = torch.Generator(device).manual_seed(0)
    methods = {
        "Mixup (none, permutation)": lm.LocalMixup("none", pairing="permutation", generator=generator, validate=False),
        "Local exp, permutation": lm.LocalMixup("exp", decay=0.02, pairing="permutation", generator=generator, validate=False),
        "Local threshold, permutation": lm.LocalMixup("threshold", eps=75.0, pairing="permutation", generator=generator, validate=False),
        "Local exp, graph (B x B)": lm.LocalMixup("exp", decay=0.02, generator=generator, validate=False),
    }
    calls = {name: (lambda mix: lambda x, y: mix(x, y))(mix) for name, mix in methods.items()}
    if v2 is not None:
        calls = {"torchvision v2.MixUp": (lambda mixup: lambda x, y: mixup(x, y))(v2.MixUp(alpha=1.0, num_classes=10)), **calls}
    base = next(iter(calls))
    print(f"{'B':>6}  {'method':<30}{'ms':>10}{'vs ' + base:>32}")
    for size in sizes:
        x = torch.randn(size, 3, 32, 32, device=device)
        y = torch.randint(0, 10, (size,), device=device)
        seconds = {name: [] for name in calls}
        for call in calls.values():  # warm-up
            call(x, y)
        for _ in range(rounds):
            for name, call in calls.items():
                start = clock()
                call(x, y)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds[name].append(clock() - start)
        reference = statistics.median(seconds[base])
        for name, values in seconds.items():
            median = statistics.median(values)
            print(f"{size:>6}  {name:<30}{1000 * median:>10.2f}{median / reference:>31.2f}x")


if __name__ == "__main__":
    main()
