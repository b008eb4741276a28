"""Image-classification runs: R >= 1 runs trained from their configurations, one record per run.

One run trains alone (its own model; AdaMixup only this way) or R runs of one recipe train as
one stacked model (:mod:`~localmixup.paper.training.stacked`); either way the epochs run in
:func:`~localmixup.paper.training.loop.train_epochs`, with checkpoints, one record per run. Methods: ``baseline`` (plain cross-entropy), ``mixup`` and ``local``
(the core's :class:`~localmixup.mixing.LocalMixup` and Eq. (2) loss) and ``adamixup``
(:func:`~localmixup.paper.adamixup.method.adamixup_step`). On CUDA the step runs under bf16
autocast with channels-last tensors and, by default, is captured once in a CUDA graph and
replayed (the mixing runs eagerly before each replay; AdaMixup always runs eagerly).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple

import torch

from localmixup.paper.adamixup.method import adamixup_step
from localmixup.intrusion import intruders
from localmixup.mixing import LocalMixup, MixedBatch
from localmixup.paper.data import DeviceLoader
from localmixup.paper.training.checkpoints import Checkpoint, resume, save_checkpoint
from localmixup.paper.training.config import TrainConfig
from localmixup.paper.training.evaluate import test_error
from localmixup.paper.training.loop import EpochResult, Trainee, train_epochs
from localmixup.paper.training.memory import SavedTensorBytes
from localmixup.paper.training.optim import SGD, lr_at
from localmixup.paper.training.prepare import Prepared, prepare, resolve_device
from localmixup.paper.run_record import RunRecord
from localmixup.paper.training.seeding import run_streams
from localmixup.paper.training.stacked import StackedModels, check_stackable, stack_batches
from localmixup.paper.training.step import CapturedStep, eager_step, model_loss, optimiser_step, unmixed
from localmixup.paper.models import count_parameters
from localmixup.paper.provenance import environment
from localmixup.rng import Streams

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]


class _Runs(NamedTuple):
    """What the image loop needs of its runs, whether one alone or R stacked."""

    optimizer: SGD
    state: list[torch.Tensor]  # every tensor a step modifies
    generators: list[torch.Generator | Streams]  # every random source the training draws from
    # one step on the runs' batches [(x, y)] * R, adding its statistics to the epoch's totals; returns
    # the detached losses, (R,) or a scalar for one run (not synchronised)
    step: Callable[[Batches, "_Totals"], torch.Tensor]
    errors: Callable[[], list[float]]  # test error of each run, percent


class _Totals(dict):
    """An epoch's sums of step statistics, reported divided by the epoch's steps; those measured on
    some steps only (:meth:`sample`) are divided by their own count."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: dict[str, int] = {}

    def sample(self, key: str, value: torch.Tensor) -> None:
        self[key] = self[key] + value if key in self else value
        self.samples[key] = self.samples.get(key, 0) + 1

    def means(self, steps: int) -> dict[str, float]:
        return {k: v.item() / self.samples.get(k, steps) for k, v in self.items() if k != "loss"}


class _MixingStats:
    """What a run's mixing does, per epoch: the mean pair weight of its batches, and the manifold
    intrusion of the first batch of the epoch (the share of virtual points whose nearest training
    image has another class than their dominant label; the same share weighted by the pair weights,
    i.e. of Eq. (2)'s loss; and the mean weight of those intruders). Reads the batch only: the run
    trains bit for bit as without it."""

    def __init__(self, train: DeviceLoader) -> None:
        self.x, self.y = train.normalise(train.x), train.y

    def __call__(self, batch: MixedBatch, totals: _Totals) -> MixedBatch:
        totals.sample("pair_weight", batch.weight.mean())
        if "intrusion_rate" not in totals:  # the epoch's first batch
            dominant = torch.where(torch.as_tensor(batch.lam) >= 0.5, batch.y_a, batch.y_b)
            bad = intruders(batch.x, dominant, self.x, self.y).float()
            totals.sample("intrusion_rate", bad.mean())
            totals.sample("weighted_intrusion_rate", (bad * batch.weight).sum() / batch.weight.sum())
            if bad.any():
                totals.sample("intruder_weight", batch.weight[bad.bool()].mean())
        return batch


def _mixed(mixer: LocalMixup | None, x: torch.Tensor, y: torch.Tensor) -> MixedBatch:
    return mixer(x, y) if mixer is not None else unmixed(x, y)


def _alone(run: Prepared, config: TrainConfig, fast: bool, device: torch.device) -> _Runs:
    model, optimizer, mixer = run.model, run.optimizer, run.mixer
    stats = _MixingStats(run.train) if mixer is not None else None
    if config.method == "adamixup":
        def step(batches: Batches, totals: _Totals) -> torch.Tensor:
            return adamixup_step(model, optimizer, *batches[0], run.generators["mix"], totals)
    elif fast:
        captured = CapturedStep.for_model(model, optimizer, (config.batch_size, *config.input_shape),
                                          config.num_classes, device)

        def step(batches: Batches, totals: _Totals) -> torch.Tensor:
            batch = _mixed(mixer, *batches[0])
            return captured(stats(batch, totals) if stats is not None else batch)
    elif mixer is not None:
        def step(batches: Batches, totals: _Totals) -> torch.Tensor:
            return optimiser_step(lambda b: model_loss(model, b), optimizer, stats(mixer(*batches[0]), totals))
    else:
        def step(batches: Batches, totals: _Totals) -> torch.Tensor:
            return eager_step(model, optimizer, *batches[0], None)
    return _Runs(optimizer, [*model.parameters(), *model.buffers()], run.training_generators, step,
                    lambda: [test_error(model, run.test)])


def _stack_mixing(runs: Sequence[Prepared], configs: Sequence[TrainConfig],
                  device: torch.device) -> tuple[Callable[[Batches], MixedBatch], list[Streams]]:
    """How a stack mixes its runs' batches into one (R, B, ...) batch, and the streams it draws from.

    Runs that mix alike (same method, graph, decay, alpha, pairing) draw at once from one mixer over
    the streams of their R seeds; other stacks mix run by run. Either way run r's draws are those of
    its own seed (counter-based streams), as if it trained alone.
    """
    first = configs[0]
    if first.method != "baseline" and all(c.mixing == first.mixing for c in configs):
        streams = run_streams([c.seed for c in configs], "mix", device)
        mixer = first.mixer(streams)

        def together(batches: Batches) -> MixedBatch:
            return mixer(torch.stack([x for x, _ in batches]), torch.stack([y for _, y in batches]))

        return together, [streams]
    mixers = [run.mixer for run in runs]

    def one_by_one(batches: Batches) -> MixedBatch:
        return stack_batches([_mixed(m, x, y) for m, (x, y) in zip(mixers, batches)])

    return one_by_one, [run.generators["mix"] for run in runs]


def _stacked(runs: Sequence[Prepared], configs: Sequence[TrainConfig], fast: bool, device: torch.device) -> _Runs:
    config = configs[0]
    stack = StackedModels([run.model for run in runs])
    optimizer = SGD(stack.parameters(), config.lr, config.momentum, config.weight_decay)
    mix, sources = _stack_mixing(runs, configs, device)
    test = runs[0].test

    def loss_of(batch: MixedBatch) -> torch.Tensor:
        return model_loss(stack, batch)

    captured = CapturedStep(loss_of, optimizer, stack.state(), (config.batch_size, *config.input_shape),
                            config.num_classes, device, runs=len(runs)) if fast else None

    def step(batches: Batches, totals: _Totals) -> torch.Tensor:
        batch = mix(batches)
        return optimiser_step(loss_of, optimizer, batch) if captured is None else captured(batch)

    return _Runs(optimizer, stack.state(), [run.generators["order"] for run in runs] + sources, step,
                    lambda: test_error(stack, test, shared=True))


def fit(configs: Sequence[TrainConfig], device: torch.device | str | None = None, *, stacked: bool | None = None,
        fast: bool | None = None, progress: bool = False, download: bool | None = None,
        checkpoint: str | Path | None = None, checkpoint_every: float = 60.0) -> list[RunRecord]:
    """Train R >= 1 runs and return their records, in order.

    Args:
        configs: the runs, each built from its seed by :func:`~localmixup.paper.training.prepare.prepare`.
        device: default CUDA if visible, else CPU.
        stacked: train the runs as one stacked model (they may differ only in
            :data:`~localmixup.paper.training.stacked.STACKABLE` settings; not AdaMixup); default: when
            there are several. ``False`` trains one run alone.
        fast: capture the step in a CUDA graph (default: on CUDA); ignored on the CPU and for
            ``adamixup`` (always eager).
        progress: show a tqdm bar over epochs.
        download: passed to :func:`localmixup.paper.data.load_arrays`.
        checkpoint: file where the runs' state is saved at the end of an epoch (at most every
            ``checkpoint_every`` seconds; 0: every epoch) and, if it exists, resumed from: the runs
            then continue exactly where they stopped. A checkpoint of other runs (other
            configurations, device type or stacking) is refused. The caller deletes it once the
            records are safe (see :func:`localmixup.paper.sweep.images.run_group`).

    Returns:
        One :class:`~localmixup.paper.run_record.RunRecord` per run. A run whose mean training
        loss over an epoch is not finite is marked failed at that epoch; the others go on.
    """
    configs = list(configs)
    stacked = len(configs) > 1 if stacked is None else stacked
    if stacked:
        check_stackable(configs)
    elif len(configs) != 1:
        raise ValueError(f"runs trained together are stacked: pass stacked=True, or one run (got {len(configs)} runs)")
    first = configs[0]
    device = resolve_device(device)
    cuda = device.type == "cuda"
    fast = (cuda if fast is None else bool(fast) and cuda) and first.method != "adamixup"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    runs = [prepare(c, device, download=download) for c in configs]
    training = _stacked(runs, configs, fast, device) if stacked else _alone(runs[0], first, fast, device)
    threads = torch.get_num_threads() if device.type == "cpu" else None
    records = [RunRecord(c.to_dict(), parameters=count_parameters(runs[0].model), fast_path=fast, threads=threads,
                         parameter_counts=runs[0].model.parameter_counts() if c.method == "adamixup" else None,
                         stack={"runs": len(configs), "position": r} if stacked else None)
               for r, c in enumerate(configs)]
    parameter_bytes = sum(p.numel() * p.element_size() for p in runs[0].model.parameters())
    loaders = [run.train for run in runs]
    del runs  # a stack holds copies of the weights: free the originals
    keeper = Checkpoint(checkpoint, {"configs": [c.to_dict() for c in configs], "device": device.type,
                                     "stacked": stacked}, checkpoint_every)
    start_epoch, elapsed, extra = resume(keeper, records, training.state, training.optimizer, training.generators)
    probe = SavedTensorBytes(exclude=training.optimizer.params) if not fast and start_epoch == 0 else None

    def saved_bytes() -> int | None:
        return probe.bytes if probe is not None else extra.get("saved_bytes")

    start = time.perf_counter()

    def epoch(index: int) -> EpochResult:
        lr = lr_at(first, index)
        training.optimizer.set_lr(lr)
        total = torch.zeros(len(configs), device=device)
        totals = _Totals()
        for i, batches in enumerate(zip(*loaders)):
            with probe if probe is not None and index == 0 and i == 0 else nullcontext():
                total += training.step(batches, totals)
        steps = len(loaders[0])
        return EpochResult((total / steps).tolist(), lr, {k: [v] * len(configs) for k, v in totals.means(steps).items()})

    def save(done: int, alive: list[bool]) -> None:
        if keeper.due():
            save_checkpoint(keeper, done, records, elapsed + time.perf_counter() - start, training.state,
                            training.optimizer, training.generators, alive=alive, saved_bytes=saved_bytes())

    name = f"{first.dataset} {first.method} seed {first.seed}" if len(configs) == 1 else \
        f"{first.dataset}: {len(configs)} stacked runs"
    train_epochs(Trainee(epoch, training.errors), records, first.epochs, first=start_epoch, alive=extra.get("alive"),
                 after_epoch=save, description=name, progress=progress)
    memory = {"saved_for_backward_bytes": saved_bytes(), "parameter_bytes": parameter_bytes,
              "cuda_peak_allocated_bytes": int(torch.cuda.max_memory_allocated(device)) if cuda else None}
    env = environment(device)
    seconds = elapsed + time.perf_counter() - start
    return [record.close(seconds, memory, env) for record in records]


def train_run(config: TrainConfig, device: torch.device | str | None = None, **options: Any) -> RunRecord:
    """Train one run alone and return its record (:func:`~.fit` with ``stacked=False``; same ``options``)."""
    return fit([config], device, stacked=False, **options)[0]
