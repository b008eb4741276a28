"""Training-step speed: the plain eager loop against the fast path(s) of localmixup.paper.training.

Printed, all in the same run and as ratios against the plain loop:
1. DenseNet-BC (Fashion-MNIST shape 1x28x28) at the paper's batch 64, Local Mixup step:
   plain eager loop (torch.optim.SGD, validating LocalMixup, integer labels) / the eager step of
   ``fit`` / the CUDA-graph step of ``fit`` (CUDA only) / ``--procs`` CUDA-graph
   processes at once (aggregate steps per second = runs per hour, CUDA only) / ``--stack`` runs
   stacked into one model (localmixup.paper.training.stacked; captured in one CUDA graph on CUDA), as a runs/hour
   ratio: ``stack x plain / stacked step``.
2. Mixup versus Local Mixup cost with the fastest single-process step.
3. ResNet-18 at batch ``--big-batch`` (512): images per second of the fastest step.

Synthetic data already on the device (as the GPU-resident loader provides).

``--cpu-profile`` instead measures the cpu profile (LeNet-5 on Fashion-MNIST, batch 128, real
batches) on this machine's CPU, in CPU time (``time.process_time``, all threads of the process:
what a run costs whatever the load of other processes), as CPU-seconds per training epoch of
one run: the loop's step (channels-last, float32, 1 thread) against the default layout, bf16
autocast, 2 threads, R = 4 runs stacked with ``vmap`` (per run), each method; then 2 processes
of 1 thread training at once against 1 alone (the ``--jobs 2`` case). Examples::

    python benchmarks/bench_train.py                       # CUDA if visible; full sizes
    python benchmarks/bench_train.py --device cpu --steps 3 --batch 32 --big-batch 64 --small
    python benchmarks/bench_train.py --cpu-profile --steps 10 --rounds 5
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
from localmixup.paper.training.optim import SGD
from localmixup.paper.training.stacked import StackedModels
from localmixup.paper.training.step import CapturedStep, eager_step, model_loss, optimiser_step
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


def _interleaved(cases: dict[str, object], steps: int, device: torch.device, rounds: int, warmup: int = 3,
                 clock=time.perf_counter) -> dict[str, float]:
    """Seconds per step of each case (by ``clock``): median over ``rounds`` rounds, each case in turn
    taking ``steps`` timed steps per round, so that the drifts of a shared machine fall on every case alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            start = clock()
            for _ in range(steps):
                fn()
            _sync(device)
            times[name].append((clock() - start) / steps)
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
    """``runs`` Local Mixup runs (own weights, own mixing draws) in one stacked step of localmixup.paper.training.stacked."""
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


# --- the cpu profile on this CPU ------------------------------------------------------------------

def _cpu_run(method: str, seed: int = 0):
    from localmixup.paper.training.prepare import prepare
    from localmixup.paper.protocols import profile_config

    return prepare(profile_config("cpu", "fashion_mnist", method, seed), "cpu")


def _cycle(run, count: int = 8):
    batches = [b for _, b in zip(range(count), run.train)]
    state = {"i": 0}

    def next_batch():
        state["i"] += 1
        return batches[state["i"] % len(batches)]
    return next_batch


def cpu_profile_cases(stack: int) -> dict[str, object]:
    """One training step of each case of the cpu profile; stacked cases return the stack's step."""
    from localmixup.paper.adamixup.method import adamixup_step
    from localmixup.paper.training.seeding import stream_path

    cases: dict[str, object] = {}
    for method in ("local", "baseline", "mixup"):
        run = _cpu_run(method)
        batch = _cycle(run)
        cases[f"{method}: the loop's step"] = lambda r=run, b=batch: eager_step(r.model, r.optimizer, *b(), r.mixer)
    nchw = _cpu_run("local")
    nchw.model.to(memory_format=torch.contiguous_format)
    nbatch = _cycle(nchw)
    cases["local: default layout (NCHW)"] = lambda: eager_step(nchw.model, nchw.optimizer, *[t.contiguous() for t in nbatch()],
                                                               nchw.mixer)
    bf16 = _cpu_run("local")
    bbatch = _cycle(bf16)

    def bf16_step():
        x, y = bbatch()

        def loss_of(b):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = bf16.model(b.x)
            return lm.mixup_loss(logits, b, validate=False)
        return optimiser_step(loss_of, bf16.optimizer, bf16.mixer(x, y))
    cases["local: bf16 autocast"] = bf16_step
    runs = [_cpu_run("local", seed) for seed in range(stack)]
    stacked = StackedModels([r.model for r in runs])
    opt = SGD(stacked.parameters(), 0.05, 0.9, 5e-4)
    mixer = LocalMixup("exp", decay=5e-4, pairing="permutation", validate=False,
                       generator=Streams(list(range(stack)), stream=stream_path("mix")))  # as fit mixes alike runs
    feeds = [_cycle(r) for r in runs]

    def stacked_step():
        xs, ys = zip(*(f() for f in feeds))
        return optimiser_step(lambda b: model_loss(stacked, b), opt, mixer(torch.stack(xs), torch.stack(ys)))
    cases[f"local: {stack} runs stacked (vmap)"] = stacked_step
    ada = _cpu_run("adamixup")
    abatch = _cycle(ada)
    cases["adamixup (official weighting): the loop's step"] = lambda: adamixup_step(ada.model, ada.optimizer, *abatch(),
                                                                                    ada.generators["mix"])
    return cases


def _jobs_worker(args):
    steps, barrier, queue = args
    torch.set_num_threads(1)
    run = _cpu_run("local")
    batch = _cycle(run)
    for _ in range(3):
        eager_step(run.model, run.optimizer, *batch(), run.mixer)
    barrier.wait()
    c0 = time.process_time()
    for _ in range(steps):
        eager_step(run.model, run.optimizer, *batch(), run.mixer)
    queue.put((time.process_time() - c0) / steps)


def jobs_cpu_per_step(procs: int, steps: int) -> float:
    """CPU-seconds per step of the loop's step in each of ``procs`` 1-thread processes training at once (mean)."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=_jobs_worker, args=((steps, barrier, queue),)) for _ in range(procs)]
    for w in workers:
        w.start()
    per_step = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    return statistics.mean(per_step)


def cpu_profile(steps: int, rounds: int, stack: int) -> None:
    """Print the cpu profile's cost table (see the module docstring)."""
    from localmixup.paper.training.evaluate import test_error

    env = lp.environment("cpu")
    print(f"cpu profile (LeNet-5, Fashion-MNIST, batch 128, 468 steps per epoch) on {env['device']}, torch {env['torch']}, "
          f"commit {env['commit']}; CPU time, median of {rounds} interleaved rounds of {steps} steps")
    cases = cpu_profile_cases(stack)
    cases["local: the loop's step, 2 threads"] = cases["local: the loop's step"]

    def threaded(name, fn):
        threads = 2 if name.endswith("2 threads") else 1

        def call():
            torch.set_num_threads(threads)
            return fn()
        return call
    t = _interleaved({n: threaded(n, f) for n, f in cases.items()}, steps, torch.device("cpu"), rounds,
                     clock=time.process_time)
    torch.set_num_threads(1)
    run = _cpu_run("local")
    c0 = time.process_time()
    test_error(run.model, run.test)
    evaluation = time.process_time() - c0
    alone = jobs_cpu_per_step(1, 4 * steps)
    together = jobs_cpu_per_step(2, 4 * steps)
    base = t["local: the loop's step"]
    rows = [(name, seconds / (stack if "stacked" in name else 1)) for name, seconds in t.items()]
    rows += [("local: 1 process of 1 thread (spawned)", alone), ("local: 2 processes of 1 thread at once, each", together)]
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'CPU ms/step':>11}  {'CPU s/epoch':>11}  {'vs loop':>7}")
    for name, seconds in rows:
        print(f"{name:<{width}}  {1000 * seconds:11.2f}  {468 * seconds:11.2f}  {seconds / base:6.2f}x")
    print(f"evaluation of the 10,000 test images: {evaluation:.2f} CPU-s per epoch")


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
    parser.add_argument("--cpu-profile", action="store_true", help="measure the cpu profile on this CPU instead (see above)")
    args = parser.parse_args()
    if args.cpu_profile:
        cpu_profile(args.steps or 10, args.rounds, args.stack or 4)
        return
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
