"""Several runs of one recipe trained at once, as one stacked model.

At the paper's small batches a GPU spends its time launching kernels, not computing. R runs
that share an architecture and a training recipe (and differ only in their seed, method,
locality graph or alpha) are trained here as one model: their parameters and BatchNorm
buffers are stacked along a new leading dimension and the forward pass is vectorised over it
with :func:`torch.func.vmap` (convolutions become grouped convolutions), so one step launches
the kernels of one run for all R runs. Each run keeps everything of its own: initial weights,
data order, augmentation and mixing draws come from the same seeds as :func:`~.train_run`, so
a stacked run follows the same trajectory as the run trained alone, up to floating-point
rounding (tested), and writes the same record.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.func import functional_call, stack_module_state, vmap

from localmixup.paper.data import spec
from localmixup.loss import mixup_loss
from localmixup.mixing import MixedBatch
from localmixup.paper.models import count_parameters
from localmixup.paper.provenance import default_device
from localmixup.paper.engine.train import (SGD, CapturedStep, TrainConfig, add_epoch, close_record, device_autocast, epoch_bar, new_record,
                    optimiser_step, prepare, resume, run_generators, save_checkpoint, test_error)
from localmixup.transfer import to_device
from localmixup.validation import check_integer

#: The settings in which the runs of one stack may differ; every other setting is shared.
STACKABLE = ("seed", "method", "graph", "alpha", "mix_alpha", "pairing")


def stack_key(config: TrainConfig) -> str:
    """What runs trained in one stack must share: every setting but those of :data:`~.STACKABLE`."""
    d = config.to_dict()
    for name in STACKABLE:
        d.pop(name)
    return json.dumps(d, sort_keys=True)


def check_stackable(configs: Sequence[TrainConfig]) -> None:
    """Raise ``ValueError`` unless ``configs`` (at least one) may be trained as one stack."""
    if not configs:
        raise ValueError("configs must hold at least one run to stack")
    if any(c.method == "adamixup" for c in configs):
        raise ValueError("method='adamixup' cannot be stacked (its mixing is part of the differentiated graph); "
                         "stack baseline, mixup and local runs")
    first = json.loads(stack_key(configs[0]))
    for c in configs[1:]:
        other = json.loads(stack_key(c))
        if other != first:
            differ = sorted(k for k in first if first[k] != other[k])
            raise ValueError(f"runs of one stack may differ only in {', '.join(STACKABLE)}; "
                             f"these also differ in {', '.join(differ)}")


class StackedModels:
    """R models of one architecture evaluated as one: parameters and buffers stacked (R, ...).

    Calling it on inputs (R, B, ...) gives logits (R, B, C), run r seeing only its own batch;
    with ``shared=True`` the input (B, ...) is seen by every run. BatchNorm statistics and
    running buffers stay per run. ``parameters()`` are the stacked leaves to optimise.
    """

    def __init__(self, models: Sequence[torch.nn.Module]) -> None:
        self.params, self.buffers = stack_module_state(list(models))
        self.template = copy.deepcopy(models[0]).to("meta")
        self.runs = len(models)

    def _forward(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor, *, shared: bool = False) -> torch.Tensor:
        return vmap(self._forward, in_dims=(0, 0, None if shared else 0))(self.params, self.buffers, x)

    def train(self, mode: bool = True) -> None:
        self.template.train(mode)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def state(self) -> list[torch.Tensor]:
        """Every tensor a training step modifies (parameters and buffers)."""
        return [*self.params.values(), *self.buffers.values()]


def stacked_loss(stack: StackedModels, batch: MixedBatch) -> torch.Tensor:
    """Eq. (2) loss of each run, (R,), for a stacked mixed batch (fields with a leading R; ``lam`` (R,))."""
    with device_autocast(batch.x.device):
        logits = stack(batch.x)
    return vmap(lambda out, b: mixup_loss(out, b, validate=False))(logits, batch)


def stack_batches(batches: Sequence[MixedBatch]) -> MixedBatch:
    """One stacked :class:`~.MixedBatch` (leading dimension R) from R runs' batches."""
    x = torch.stack([b.x for b in batches])
    lam = to_device(torch.tensor([float(b.lam) for b in batches]), x.device)
    return MixedBatch(x, torch.stack([b.y_a for b in batches]), torch.stack([b.y_b for b in batches]), lam,
                      torch.stack([b.weight for b in batches]))


def train_stacked(configs: Sequence[TrainConfig], device: torch.device | str | None = None, *, fast: bool | None = None,
                  progress: bool = False, download: bool | None = None, checkpoint: str | Path | None = None,
                  checkpoint_every: float = 60.0) -> list[dict[str, Any]]:
    """Train R runs of one recipe as one stacked model; return their R records, in order.

    Args:
        configs: the runs; they may differ only in :data:`~.STACKABLE` settings (seed, method among
            baseline/mixup/local, graph, alpha, mix_alpha, pairing). Each is built from its seed
            exactly as :func:`~localmixup.paper.engine.train.train_run` builds it.
        device: default CUDA if visible, else CPU.
        fast: capture the stacked step in one CUDA graph (default: on CUDA); ignored on the CPU.
        progress: tqdm bar over epochs.
        download: passed to :func:`localmixup.paper.data.load_arrays`.
        checkpoint, checkpoint_every: the stack's checkpoint file, as in
            :func:`~localmixup.paper.engine.train.train_run` (it resumes only the same runs on the same device type).

    Returns:
        One record per run, as :func:`~localmixup.paper.engine.train.train_run`'s, plus ``"stack": {"runs": R,
        "position": r}``; ``train_seconds`` is the wall-clock time of the whole stack (R runs in
        that time), and ``memory["saved_for_backward_bytes"]`` is None (the step is shared). A run
        whose mean loss turns NaN or infinite is marked failed at that epoch; the others go on.

    In float32 a stacked run and the same run trained alone drift apart after some steps: the
    grouped kernels round differently, and a pre-activation that rounds to the other side of a
    ReLU's kink changes a gradient by a finite amount, which training then amplifies. In float64
    the stacked step gives each run's gradient to 1e-12 (tested).
    """
    configs = list(configs)
    check_stackable(configs)
    device = torch.device(device) if device is not None else default_device()
    cuda = device.type == "cuda"
    fast = cuda if fast is None else (fast and cuda)
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    runs = [prepare(c, device, download=download) for c in configs]
    models = [r[0] for r in runs]
    loaders = [r[2] for r in runs]
    mixers = [r[4] for r in runs]
    generators = [g for r in runs for g in run_generators(r[2], r[4])]
    test = runs[0][3]
    first = configs[0]
    s = spec(first.dataset)
    stack = StackedModels(models)
    optimizer = SGD(stack.parameters(), first.lr, first.momentum, first.weight_decay)
    ones = torch.ones(first.batch_size, device=device)
    parameters = count_parameters(models[0])
    del models, runs  # the stack holds copies of the weights: free the originals
    records = [new_record(c, parameters, fast) for c in configs]
    for r, record in enumerate(records):
        record["stack"] = {"runs": len(configs), "position": r}

    def loss_of(batch: MixedBatch) -> torch.Tensor:
        return stacked_loss(stack, batch)

    step = CapturedStep(loss_of, optimizer, stack.state(), (first.batch_size, *s.shape), s.num_classes, device,
                        runs=len(configs)) if fast else None
    keeper, start_epoch, elapsed, extra = resume(checkpoint, checkpoint_every, configs, device, records, stack.state(),
                                                 optimizer, generators)
    alive = extra.get("alive", [True] * len(configs))
    start = time.perf_counter()
    bar = epoch_bar(f"{first.dataset}: {len(configs)} stacked runs", start_epoch, first.epochs, progress)
    for epoch in bar:
        t0 = time.perf_counter()
        lr = first.lr_at(epoch)
        optimizer.set_lr(lr)
        total = torch.zeros(len(configs), device=device)
        for pairs in zip(*loaders):
            batch = stack_batches([m(x, y) if m is not None else MixedBatch(x, y, y, 1.0, ones)
                                   for m, (x, y) in zip(mixers, pairs)])
            total += optimiser_step(loss_of, optimizer, batch) if step is None else step(batch)
        losses = (total / len(loaders[0])).tolist()
        errors = test_error(stack, test, shared=True)
        seconds = time.perf_counter() - t0
        for r, record in enumerate(records):
            if alive[r]:
                alive[r] = add_epoch(record, epoch, losses[r], errors[r], lr, seconds)
        if not any(alive):
            break
        bar.set_postfix(best_error=f"{min(e for e, a in zip(errors, alive) if a):.2f}%")
        if epoch + 1 < first.epochs and keeper.due():
            save_checkpoint(keeper, epoch + 1, records, elapsed + time.perf_counter() - start, stack.state(), optimizer,
                            generators, alive=alive)
    bar.close()
    seconds = elapsed + time.perf_counter() - start
    parameter_bytes = sum(p[0].numel() * p.element_size() for p in stack.parameters())
    return [close_record(record, seconds, device, None, parameter_bytes) for record in records]


def stacks(configs: Sequence[TrainConfig], size: int) -> list[list[TrainConfig]]:
    """Group runs into stacks of at most ``size`` runs sharing a recipe (order kept within a recipe;
    AdaMixup runs alone)."""
    size = check_integer("stack", size, low=1)
    groups: dict[str, list[TrainConfig]] = {}
    out: list[list[TrainConfig]] = []
    for c in configs:
        if c.method == "adamixup" or size == 1:
            out.append([c])
        else:
            groups.setdefault(stack_key(c), []).append(c)
    for group in groups.values():
        out.extend(group[i:i + size] for i in range(0, len(group), size))
    return out

