"""Many independent small MLPs trained at once with Local Mixup (the spirals of Figure 3).

The R runs of a call share a protocol (:class:`~localmixup.paper.spirals.config.ManyRunsConfig`) and nothing else. They are
built, trained and recorded as the image runs are: one stacked model
(:class:`~localmixup.paper.training.stacked.StackedModels`), the epoch loop
:func:`~localmixup.paper.training.loop.train_epochs`, one
:class:`~localmixup.paper.run_record.RunRecord` per run, random numbers from the streams of
each run's seed (:func:`~localmixup.paper.training.seeding.run_streams`: ``init``, ``order`` and
``mix``, independent of the other runs of the call). The method is the library's: every step
draws lam, the partners and the pair weights with :meth:`~localmixup.mixing.LocalMixup.sample`,
mixes with :meth:`~localmixup.mixing.LocalMixup.apply`, and the loss is
:func:`~localmixup.loss.mixup_loss` (one loss per run).

Two paths compute the same updates (tested against each other and against a plain
``nn.Module`` loop, :func:`~localmixup.paper.spirals.reference.train_single`):

* on a CPU, a compiled kernel (:mod:`~localmixup.paper.spirals.mlp_kernel`) trains each run
  for a whole epoch while its parameters stay in the core's cache. The loss it minimises is
  ``sum_i c_i CE(o_i, t_i)``, where the soft targets ``t`` are the batch's
  (:meth:`~localmixup.mixing.MixedBatch.soft_targets`) and the coefficients ``c`` are read off
  ``mixup_loss`` by autograd (:func:`loss_coefficients`): Eq. (2) is computed by the library only;
* elsewhere (CUDA, or no C compiler), the stacked model's forward pass, autograd through
  ``mixup_loss`` and ``torch.optim.Adam``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch

from localmixup.loss import mixup_loss
from localmixup.mixing import LocalMixup, MixedBatch
from localmixup.paper.spirals import mlp_kernel
from localmixup.paper.training.loop import EpochResult, Trainee, train_epochs
from localmixup.paper.run_record import RunRecord
from localmixup.paper.training.seeding import run_streams
from localmixup.paper.training.stacked import StackedModels
from localmixup.paper.provenance import environment
from localmixup.paper.spirals.config import TRAINER_BACKENDS, ManyRunsConfig
from localmixup.paper.spirals.data import Split
from localmixup.paper.spirals.networks import init_mlps, stacked_layers
from localmixup.checks import check_batch, check_choice, check_integer, check_seed


class ManyRuns(NamedTuple):
    """What :func:`train_many` returns, one entry per run in the order of the seeds.

    Attributes:
        records: one :class:`~localmixup.paper.run_record.RunRecord` per run: ``config`` is
            the protocol and the run's ``seed``; the epochs of ``curve_every`` hold the mean
            training loss, the test error (percent) and ``pair_weight``, the mean pair weight of
            that epoch's batches (permutation pairing: the fraction of pairs kept; graph
            pairing: 1); ``final_train_error_pct`` is set.
        models: the trained networks, stacked.
    """

    records: list[RunRecord]
    models: StackedModels


def curve_epochs(epochs: int, curve_every: int) -> list[int]:
    """Epochs at which the learning curve is measured: every ``curve_every`` (0: only the last)."""
    curve_every = check_integer("curve_every", curve_every, low=0)
    if curve_every == 0:
        return [epochs]
    points = list(range(curve_every, epochs + 1, curve_every))
    return points if points and points[-1] == epochs else [*points, epochs]


def loss_batch(batch: MixedBatch, config: ManyRunsConfig) -> MixedBatch:
    """The batch as the loss of ``config`` sees it: unchanged for Eq. (2); for the authors'
    batch weighting, every pair weighted by the batch's mean weight (with ``normalize="size"``,
    ``mixup_loss`` is then the mean loss times the fraction of kept pairs)."""
    if config.weighting == "pair":
        return batch
    return batch._replace(weight=batch.weight.mean(dim=-1, keepdim=True).expand_as(batch.weight))


def normalize(config: ManyRunsConfig) -> str:
    """The ``normalize`` argument of :func:`~localmixup.loss.mixup_loss` for ``config``."""
    return "weights" if config.weighting == "pair" else "size"


def loss_coefficients(batch: MixedBatch, config: ManyRunsConfig) -> torch.Tensor:
    """The coefficient c_i of each sample's cross-entropy in the loss of ``config``: (R, B).

    ``mixup_loss`` is a weighted sum of per-sample cross-entropies of the soft targets; its
    derivative with respect to logits (0, s_i) at s = 0, every target being class 0, is c_i / 2.
    Reading c off the library's loss (rather than rewriting its normalisation) keeps one Eq. (2).
    """
    probe = loss_batch(batch, config)
    s = torch.zeros(probe.weight.shape, device=probe.weight.device, requires_grad=True)
    zero = torch.zeros(probe.weight.shape, dtype=torch.int64, device=probe.weight.device)
    loss = mixup_loss(torch.stack([torch.zeros_like(s), s], dim=-1), probe._replace(y_a=zero, y_b=zero), normalize=normalize(config), validate=False)
    (grad,) = torch.autograd.grad(loss.sum(), s)
    return 2.0 * grad


def epoch_batches(x: torch.Tensor, y: torch.Tensor, order: torch.Tensor, config: ManyRunsConfig,
                  mixer: LocalMixup | None) -> Iterator[MixedBatch]:
    """The mixed batches of one epoch of R runs: ``order`` (R, n) is each run's data order; each
    batch of ``config.batch_size`` consecutive samples (the last one may be smaller) is mixed by
    ``mixer`` (None: the authors' no-mixup branch, unmixed batches with weight 1)."""
    xs, ys = x[order], y[order]
    for first in range(0, x.shape[0], config.batch_size):
        xb, yb = xs[:, first : first + config.batch_size], ys[:, first : first + config.batch_size]
        if mixer is None:
            yield MixedBatch(xb, yb, yb, torch.ones(xb.shape[0], device=xb.device), torch.ones(yb.shape, device=xb.device))
        else:
            yield mixer.apply(mixer.sample(xb), xb, yb)


def error_pct(labels: torch.Tensor, y: torch.Tensor) -> float | list[float]:
    """Classification error in percent of predicted ``labels`` (N,) or (R, N) against ``y`` (N,): a
    float, or one per run."""
    return (100.0 * (labels != y).double().mean(dim=-1)).tolist()


def check_split(split: Split) -> None:
    check_batch(split.x_train, split.y_train)
    check_batch(split.x_test, split.y_test)


def train_many(
    split: Split,
    seeds: Sequence[int],
    config: ManyRunsConfig,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    curve_every: int = 0,
    progress: bool = False,
    backend: str = "auto",
    threads: int = 1,
) -> ManyRuns:
    """Train one MLP per seed, all at once, with Local Mixup on the threshold graph.

    Args:
        split: the data (:func:`~localmixup.paper.spirals.data.make_spirals`); inputs (N, d), labels (N,).
        seeds: distinct integer run seeds >= 0 (R of them).
        config: the protocol (:class:`~localmixup.paper.spirals.config.ManyRunsConfig`).
        device: where to train (default CPU).
        dtype: torch.float32 (default) or torch.float64 (for exactness checks).
        curve_every: also record the epoch (loss, test error, pair weight) every this many epochs
            (0: only the last).
        progress: show a tqdm bar over the epochs.
        backend: ``"kernel"`` (the compiled CPU kernel), ``"torch"`` (torch operations) or
            ``"auto"`` (the kernel on a CPU where it compiles, else torch).
        threads: kernel backend: runs are split into this many groups trained in parallel.

    Each run shuffles the training set every epoch, cuts it into batches of ``batch_size``
    (last partial batch kept), mixes each batch (lam then the pairing, from its ``mix`` stream)
    and takes one Adam step on the loss of ``config``. Runs do not interact: run r's numbers
    depend on its seed only (up to float rounding of the batched kernels).
    """
    if not isinstance(config, ManyRunsConfig):
        raise ValueError(f"config must be a ManyRunsConfig, got {type(config).__name__}")
    seeds = [check_seed("seed", s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one run seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct (two runs with one seed would be the same run)")
    check_split(split)
    check_choice("backend", backend, TRAINER_BACKENDS)
    threads = check_integer("threads", threads, low=1)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    lib = mlp_kernel.load(dtype) if backend != "torch" and device.type == "cpu" else None
    if backend == "kernel" and lib is None:
        raise RuntimeError("backend='kernel' needs a CPU device and a working C compiler (see the warning above)")
    points = curve_epochs(config.epochs, curve_every)

    x_train, y_train = split.x_train.to(device, dtype), split.y_train.to(device)
    x_test, y_test = split.x_test.to(device, dtype), split.y_test.to(device)
    n, classes = x_train.shape[0], int(max(split.y_train.max(), split.y_test.max())) + 1
    sizes = config.sizes(x_train.shape[1], classes)
    models = StackedModels(init_mlps(seeds, sizes, dtype=dtype, device=device))
    order = run_streams(seeds, "order", device)
    mixer = None
    if config.mixing:
        mixer = LocalMixup("threshold", eps=config.eps, alpha=config.alpha, pairing=config.pairing,
                           generator=run_streams(seeds, "mix", device), validate=False)
    step = _KernelStep(lib, models, config, sizes, threads) if lib is not None else _TorchStep(models, config)
    steps = math.ceil(n / config.batch_size)

    def epoch(index: int) -> EpochResult:
        batches = list(epoch_batches(x_train, y_train, order.permutation(n), config, mixer))
        weight = torch.stack([b.weight.mean(dim=-1) for b in batches]).mean(dim=0)
        return EpochResult(step.epoch(batches, index * steps).tolist(), config.lr, {"pair_weight": weight.tolist()})

    parameters = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    records = [RunRecord({**config.as_dict(), "seed": seed}, parameters=parameters, fast_path=False,
                         threads=threads if device.type == "cpu" else None, stack={"runs": len(seeds), "position": r})
               for r, seed in enumerate(seeds)]
    start = time.perf_counter()
    train_epochs(Trainee(epoch, lambda: step.errors(x_test, y_test)), records, config.epochs, record_at=points,
                 description=f"eps={config.eps:g}, {len(seeds)} runs", progress=progress)
    for record, error in zip(records, step.errors(x_train, y_train)):
        if record.ok:
            record.final_train_error_pct = error
    step.finish()
    memory = {"saved_for_backward_bytes": None, "parameter_bytes": parameters * x_train.element_size(),
              "cuda_peak_allocated_bytes": None}
    env = environment(device)
    return ManyRuns([record.close(time.perf_counter() - start, memory, env) for record in records], models)


class _KernelStep:
    """Epochs with the compiled kernel on the models' packed parameters: the loss's soft targets and
    coefficients come from the library."""

    def __init__(self, lib, models: StackedModels, config: ManyRunsConfig, sizes: Sequence[int], threads: int) -> None:
        self.lib, self.models, self.config, self.sizes, self.threads = lib, models, config, sizes, threads
        self.classes = sizes[-1]
        self.fan_in, self.fan_out = mlp_kernel.layout(self.sizes)
        with torch.no_grad():
            self.params = mlp_kernel.pack(stacked_layers(models))
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.params), torch.zeros_like(self.params)

    def epoch(self, batches: list[MixedBatch], done: int) -> torch.Tensor:
        dtype, runs = self.params.dtype, self.params.shape[0]
        parts = [batches[:-1], batches[-1:]] if batches[-1].weight.shape != batches[0].weight.shape else [batches]
        x, targets, coefficients = [], [], []
        for part in filter(None, parts):  # batches of one size, as one batch of runs * steps "runs"
            batch = MixedBatch(*(torch.stack([getattr(b, f) for b in part], dim=1).flatten(0, 1) for f in MixedBatch._fields))
            x.append(batch.x.view(runs, -1, batch.x.shape[-1]))
            targets.append(batch.soft_targets(self.classes).view(runs, -1, self.classes))
            coefficients.append(loss_coefficients(batch, self.config).view(runs, -1))
        return mlp_kernel.epoch(
            self.lib, self.params, self.exp_avg, self.exp_avg_sq, self.fan_in, self.fan_out, self.classes,
            torch.cat(x, dim=1).contiguous(), torch.cat(targets, dim=1).to(dtype).contiguous(), torch.cat(coefficients, dim=1).to(dtype).contiguous(),
            batch_size=self.config.batch_size, softmax_output=self.config.output == "softmax",
            lr=self.config.lr, betas=(0.9, 0.999), eps=1e-8, step=done, threads=self.threads,
        )  # fmt: skip

    def errors(self, x: torch.Tensor, y: torch.Tensor) -> list[float]:
        """Error of each run on (x (N, inputs), y (N,)), percent."""
        return error_pct(mlp_kernel.predict(self.lib, self.params, self.fan_in, self.fan_out, self.classes, x, threads=self.threads), y)

    @torch.no_grad()
    def finish(self) -> None:
        """Copy the trained parameters back into the stacked models."""
        for (weight, bias), (w, b) in zip(stacked_layers(self.models), mlp_kernel.unpack(self.params, self.sizes)):
            weight.copy_(w)
            bias.copy_(b)


class _TorchStep:
    """Epochs with torch operations: the stacked forward pass, autograd through ``mixup_loss``, ``torch.optim.Adam``."""

    def __init__(self, models: StackedModels, config: ManyRunsConfig) -> None:
        self.models, self.config = models, config
        device = models.parameters()[0].device
        self.optimizer = torch.optim.Adam(models.parameters(), lr=config.lr, fused=device.type == "cuda")

    def epoch(self, batches: list[MixedBatch], done: int) -> torch.Tensor:
        total = torch.zeros(self.models.runs, dtype=torch.float64, device=batches[0].x.device)
        for batch in batches:
            output = self.models(batch.x)
            if self.config.output == "softmax":
                output = output.softmax(dim=-1)
            loss = mixup_loss(output, loss_batch(batch, self.config), normalize=normalize(self.config), validate=False)
            self.optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            self.optimizer.step()
            total += loss.detach()
        return total / len(batches)

    @torch.no_grad()
    def errors(self, x: torch.Tensor, y: torch.Tensor) -> list[float]:
        """Error of each run on (x (N, inputs), y (N,)), percent."""
        return error_pct(self.models(x, shared=True).argmax(dim=-1), y)

    def finish(self) -> None:
        """Nothing to do: the stacked models are the trained parameters."""
