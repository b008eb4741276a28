"""Training-step speed: the plain eager loop against the fast path(s) of localmixup.paper.engine.

Printed, all in the same run and as ratios against the plain loop:
1. DenseNet-BC (Fashion-MNIST shape 1x28x28) at the paper's batch 64, Local Mixup step:
   plain eager loop (torch.optim.SGD, validating LocalMixup, integer labels) / the eager step of
   ``fit`` / the CUDA-graph step of ``fit`` (CUDA only) / ``--procs`` CUDA-graph
   processes at once (aggregate steps per second = runs per hour, CUDA only) / ``--stack`` runs
   stacked into one model (localmixup.paper.engine.stacked; captured in one CUDA graph on CUDA), as a runs/hour
   ratio: ``stack x plain / stacked step``.
2. Mixup versus Local Mixup cost with the fastest single-process step.
3. ResNet-18 at batch ``--big-batch`` (512): images per second of the fastest step.

Synthetic data already on the device (as the GPU-resident loader provides). Examples::

    python benchmarks/bench_train.py                       # CUDA if visible; full sizes
    python benchmarks/bench_train.py --device cpu --steps 3 --batch 32 --big-batch 64 --small
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import torch

import localmixup as lm
import localmixup.paper as lp
from localmixup.mixing import LocalMixup
from localmixup.paper.models import build_model
from localmixup.paper.engine.optim import SGD
from localmixup.paper.engine.stacked import StackedModels
from localmixup.paper.engine.step import CapturedStep, eager_step, model_loss, optimiser_step
from localmixup.rng import Streams


def _model(name: str, device: torch.device, small: bool) -> torch.nn.Module:
    if name == "densenet_bc":
        model = build_model("densenet_bc", 10, 1, **({"blocks": (2, 2, 2, 2), "growth": 8} if small else {}))
    else:
        model = build_model("resnet18", 10, 3, **({"widths": (16, 32, 64, 128)} if small else {}))
    return model.to(device, memory_format=torch.channels_last)  # the layout of the library's loop, on every device


def _data(name: str, batch: int, device: torch.device):
    shape = (1, 28, 28) if name == "densenet_bc" else (3, 32, 32)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shape, generator=g).to(device).contiguous(memory_format=torch.channels_last)
    return x, torch.randint(0, 10, (batch,), generator=g).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interleaved(cases: dict[str, object], steps: int, device: torch.device, rounds: int, warmup: int = 3) -> dict[str, float]:
    """Seconds per step of each case: median over ``rounds`` rounds, each case in turn taking ``steps``
    timed steps per round, so that the drifts of a shared machine fall on every case alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            _sync(device)
            times[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(t) for name, t in times.items()}


def plain_step_fn(name, batch, device, small, method="local", decay=5e-4):
    """The plain loop: what a user writes first (validating mixer, torch's SGD, autocast on CUDA)."""
    torch.manual_seed(0)
    model = _model(name, device, small)
    opt = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9, weight_decay=5e-4)
    mixer = LocalMixup("exp", decay=decay, pairing="permutation") if method == "local" else LocalMixup("none", pairing="permutation")
    x, y = _data(name, batch, device)

    def step():
        opt.zero_grad()
        b = mixer(x, y)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(b.x)
        lm.mixup_loss(logits, b).backward()
        opt.step()
    return step


def fast_step_fn(name, batch, device, small, method="local", decay=5e-4, graph=True):
    """The step of ``fit``: eager (CPU) or captured in a CUDA graph (CUDA, ``graph``)."""
    torch.manual_seed(0)
    model = _model(name, device, small)
    opt = SGD(model.parameters(), 0.01, 0.9, 5e-4)
    gen = Streams(0, device=device)
    mixer = (LocalMixup("exp", decay=decay, pairing="permutation", generator=gen, validate=False) if method == "local"
             else LocalMixup("none", pairing="permutation", generator=gen, validate=False))
    x, y = _data(name, batch, device)
    if device.type == "cuda" and graph:
        captured = CapturedStep.for_model(model, opt, tuple(x.shape), 10, device)
        return lambda: captured(mixer(x, y))
    return lambda: eager_step(model, opt, x, y, mixer)


def stacked_step_fn(name, batch, device, small, runs, graph=True):
    """``runs`` Local Mixup runs (own weights, own mixing draws) in one stacked step of localmixup.paper.engine.stacked."""
    models = []
    for seed in range(runs):
        torch.manual_seed(seed)
        models.append(_model(name, device, small))
    stack = StackedModels(models)
    opt = SGD(stack.parameters(), 0.01, 0.9, 5e-4)
    mixer = LocalMixup("exp", decay=5e-4, pairing="permutation", generator=Streams(list(range(runs)), device=device),
                       validate=False)  # the R runs' draws at once, as fit mixes a stack of alike runs
    x, y = _data(name, batch, device)
    xs, ys = x.expand(runs, *x.shape), y.expand(runs, *y.shape)
    loss_of = lambda b: model_loss(stack, b)  # noqa: E731
    if device.type == "cuda" and graph:
        captured = CapturedStep(loss_of, opt, stack.state(), tuple(x.shape), 10, device, runs=runs)
        return lambda: captured(mixer(xs, ys))
    return lambda: optimiser_step(loss_of, opt, mixer(xs, ys))


def _worker(args):
    name, batch, device, small, steps, barrier, queue = args
    device = torch.device(device)
    step = fast_step_fn(name, batch, device, small)
    for _ in range(3):
        step()
    _sync(device)
    barrier.wait()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    queue.put((start, time.perf_counter()))


def aggregate_rate(name, batch, device, small, steps, procs) -> float:
    """Steps per second of ``procs`` processes each running its own captured training run."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=((name, batch, str(device), small, steps, barrier, queue),)) for _ in range(procs)]
    for w in workers:
        w.start()
    spans = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    return procs * steps / (max(e for _, e in spans) - min(s for s, _ in spans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=str(lp.default_device()))
    parser.add_argument("--steps", type=int, help="timed steps per case and round (default 50 on CUDA, 3 on CPU)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each case's median is printed")
    parser.add_argument("--batch", type=int, default=64, help="batch of the launch-bound DenseNet-BC case")
    parser.add_argument("--big-batch", type=int, default=512, help="batch of the ResNet-18 throughput case")
    parser.add_argument("--procs", type=int, help="concurrent CUDA-graph processes (default 4 on CUDA, 0 = skip)")
    parser.add_argument("--stack", type=int, help="runs stacked into one model (default 8 on CUDA, 4 on CPU; 0 = skip)")
    parser.add_argument("--small", action="store_true", help="small networks (default on CPU): DenseNet-BC 2-2-2-2 growth 8, ResNet-18 widths/4")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    small = args.small or not cuda
    steps = args.steps or (50 if cuda else 3)
    procs = (4 if cuda else 0) if args.procs is None else args.procs
    stack = (8 if cuda else 4) if args.stack is None else args.stack
    if cuda:
        torch.backends.cudnn.benchmark = True
    env = lp.environment(device)
    print(f"device {env['device']}, torch {env['torch']}, torchvision {env['torchvision']}, commit {env['commit']}, "
          f"{'small' if small else 'full-size'} networks, median of {args.rounds} interleaved rounds of {steps} steps")

    net = "densenet_bc"
    cases = {"plain": plain_step_fn(net, args.batch, device, small),
             "eager": fast_step_fn(net, args.batch, device, small, graph=False),
             "mixup": fast_step_fn(net, args.batch, device, small, method="mixup", graph=cuda)}
    if cuda:
        cases["graph"] = fast_step_fn(net, args.batch, device, small)
    if stack > 1:
        cases["stacked"] = stacked_step_fn(net, args.batch, device, small, stack, graph=cuda)
    t = _interleaved(cases, steps, device, args.rounds)
    plain, local = t["plain"], t["graph" if cuda else "eager"]
    rows = [(f"DenseNet-BC b{args.batch} Local Mixup: plain eager loop", plain, 1.0),
            ("  fit's eager step", t["eager"], plain / t["eager"])]
    if cuda:
        rows.append(("  fit's CUDA-graph step", t["graph"], plain / t["graph"]))
    if procs > 1:
        rate = aggregate_rate(net, args.batch, device, small, steps, procs)
        rows.append((f"  {procs} processes at once (aggregate; runs/hour ratio)", 1.0 / rate, plain * rate))
    if stack > 1:
        rows.append((f"  {stack} runs stacked in one model (per stacked step; runs/hour ratio)", t["stacked"],
                     stack * plain / t["stacked"]))
    rows.append(("  fastest step, Mixup", t["mixup"], plain / t["mixup"]))
    rows.append((f"  fastest step, Local Mixup (cost vs Mixup {100 * (local / t['mixup'] - 1):+.1f}%)", local, plain / local))

    big = _interleaved({"plain": plain_step_fn("resnet18", args.big_batch, device, small),
                        "fast": fast_step_fn("resnet18", args.big_batch, device, small, graph=cuda)},
                       steps, device, args.rounds)
    rows.append((f"ResNet-18 b{args.big_batch} Local Mixup: plain eager loop ({args.big_batch / big['plain']:,.0f} img/s)",
                 big["plain"], 1.0))
    rows.append((f"  fastest step ({args.big_batch / big['fast']:,.0f} img/s)", big["fast"], big["plain"] / big["fast"]))

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'ms/step':>9}  {'vs plain':>8}")
    for name, seconds, ratio in rows:
        print(f"{name:<{width}}  {1000 * seconds:9.2f}  {ratio:7.2f}x")


if __name__ == "__main__":
    main()
