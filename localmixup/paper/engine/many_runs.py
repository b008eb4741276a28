"""Many independent small MLPs trained at once with Local Mixup (the spirals of Figure 3).

The R runs are stacked: every layer holds an (R, out, in) weight tensor and the
forward pass is a batched matrix product, so one optimiser step trains all runs.
The sum of the R per-run losses is minimised with a single ``torch.optim.Adam``:
Adam is elementwise, and the gradient of a sum of losses that share no parameter is
each run's own gradient, so this is exactly R independent Adam optimisers.

Each run owns three CPU random generators derived from its seed (see
:func:`~.run_generators`): ``init`` (initial weights), ``order`` (one data shuffle per
epoch) and ``mix`` (the draws of :class:`~localmixup.mixing.LocalMixup`: per batch
lam first, then the pairing). They are consumed in exactly the order a plain
single-model loop with ``LocalMixup(generator=mix)`` + ``mixup_loss`` consumes them
(:func:`~.train_single` is that loop), so R = 1 reproduces it and a run's numbers
depend on its own seed only. The draws are made on the CPU, whatever the device,
so they are the same on CPU and CUDA.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from localmixup.graphs import locality_weights
from localmixup.loss import mixup_loss, per_sample_cross_entropy
from localmixup.mixing import PAIRINGS, LocalMixup
from localmixup.rng import beta_from_uniforms, beta_uniforms, uniform
from localmixup.paper.spirals import Split
from localmixup.validation import check_batch, check_choice, check_integer, check_real

VARIANTS = ("eq2", "authors")
"""The two loss weightings. ``"eq2"`` is the paper's Eq. (2) as :func:`~localmixup.loss.mixup_loss`
computes it (each pair's loss weighted by W[i, partner], normalised by the sum of the
weights); ``"authors"`` is what the authors' spirals code does (the mean loss of the
batch multiplied by the mean weight of its pairs, so far pairs still train, and an
explicit no-mixup branch at eps = 0)."""

_STREAMS = {"init": 0, "order": 1, "mix": 2}


@dataclasses.dataclass(frozen=True)
class ManyRunsConfig:
    """One training protocol of the spirals experiment (all runs of a call share it).

    Attributes:
        eps: threshold of the locality graph W[i, j] = 1{D[i, j] <= eps}, in [0, inf)
            (0: vanilla training with ``pairing="graph"``; above the largest distance
            between two training points: Mixup).
        batch_size: integer >= 1 (the last partial batch of an epoch is kept).
        epochs: integer >= 1.
        lr: Adam learning rate, > 0.
        hidden: widths of the hidden layers (ReLU); input 2 and output 2 are added.
        pairing: ``"graph"`` (partner drawn among the neighbours) or ``"permutation"``
            (partner pi(i), pair weighted by W[i, pi(i)]); see :class:`~.LocalMixup`.
        variant: ``"eq2"`` or ``"authors"`` (see :data:`~.VARIANTS`; ``"authors"``
            needs ``pairing="permutation"``, as in the authors' code).
        mix_alpha: lam ~ Beta(mix_alpha, mix_alpha), > 0.
    """

    eps: float
    batch_size: int
    epochs: int = 200
    lr: float = 0.01
    hidden: tuple[int, ...] = (100, 100, 100)
    pairing: str = "graph"
    variant: str = "eq2"
    mix_alpha: float = 1.0

    def __post_init__(self) -> None:
        check_real("eps", self.eps, low=0.0, high=float("inf"), high_open=True)
        check_integer("batch_size", self.batch_size, low=1)
        check_integer("epochs", self.epochs, low=1)
        check_real("lr", self.lr, low=0.0, low_open=True)
        if not isinstance(self.hidden, tuple) or not self.hidden:
            raise ValueError(f"hidden must be a non-empty tuple of layer widths (integers >= 1), got {self.hidden!r}")
        for width in self.hidden:
            check_integer("hidden width", width, low=1)
        check_choice("pairing", self.pairing, PAIRINGS)
        check_choice("variant", self.variant, VARIANTS)
        if self.variant == "authors" and self.pairing != "permutation":
            raise ValueError("variant='authors' rescales permutation pairs, it needs pairing='permutation', got pairing='graph'")
        check_real("mix_alpha", self.mix_alpha, low=0.0, low_open=True, high=float("inf"), high_open=True)
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def mixing(self) -> bool:
        """False only for the authors' explicit no-mixup branch (variant 'authors', eps = 0)."""
        return not (self.variant == "authors" and self.eps == 0.0)

    def sizes(self, inputs: int = 2, classes: int = 2) -> tuple[int, ...]:
        """Layer widths from input to output."""
        return (inputs, *self.hidden, classes)

    def as_dict(self) -> dict:
        """Plain JSON-able dict (for run records)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def run_generators(seed: int) -> dict[str, torch.Generator]:
    """The three CPU generators ``init``, ``order`` and ``mix`` of the run with this seed.

    Their seeds come from ``numpy.random.SeedSequence([seed, stream])``: independent
    streams, and two runs with different seeds share nothing.
    """
    seed = check_integer("seed", seed, low=0)
    generators = {}
    for name, stream in _STREAMS.items():
        state = np.random.SeedSequence([seed, stream]).generate_state(2, np.uint32)
        generators[name] = torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))
    return generators


def init_mlp(sizes: Sequence[int], generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Initial (weight (out, in), bias (out,)) of each layer, float32 on the CPU.

    Same law as ``torch.nn.Linear``'s default: both uniform on [-1/sqrt(in), 1/sqrt(in)],
    drawn from ``generator`` layer by layer, weight before bias.
    """
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        weight = torch.rand(fan_out, fan_in, generator=generator) * (2 * bound) - bound
        bias = torch.rand(fan_out, generator=generator) * (2 * bound) - bound
        layers.append((weight, bias))
    return layers


def mlp_module(layers: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.nn.Sequential:
    """A plain ``nn.Sequential`` MLP (Linear, ReLU, ..., Linear) holding copies of ``layers``."""
    modules: list[torch.nn.Module] = []
    for index, (weight, bias) in enumerate(layers):
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        modules.append(linear)
        if index < len(layers) - 1:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


class StackedMLP:
    """R MLPs of the same shape, stacked: layer l holds weights (R, in, out) (the
    transpose of ``nn.Linear.weight``, so that gradients come out contiguous) and
    biases (R, out).

    Calling it on x of shape (R, N, in) (one input batch per run) or (N, in) (the same
    inputs for every run) returns logits of shape (R, N, out).
    """

    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> None:
        self.weights, self.biases = weights, biases

    @classmethod
    def from_layers(cls, runs: Sequence[Sequence[tuple[torch.Tensor, torch.Tensor]]], device: torch.device | str = "cpu") -> StackedMLP:
        """Stack per-run layer lists of (weight (out, in), bias (out,)) as :func:`~.init_mlp` returns."""
        depth = len(runs[0])
        weights = [torch.stack([run[l][0].t() for run in runs]).contiguous().to(device) for l in range(depth)]
        biases = [torch.stack([run[l][1] for run in runs]).to(device) for l in range(depth)]
        return cls(weights, biases)

    @property
    def runs(self) -> int:
        return self.weights[0].shape[0]

    def parameters(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def run(self, index: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The layers of run ``index`` as (weight (out, in), bias (out,)) pairs, detached copies."""
        return [(w[index].detach().t().clone(), b[index].detach().clone()) for w, b in zip(self.weights, self.biases)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            if h.ndim == 2:
                h = torch.matmul(h, weight) + bias[:, None, :]
            else:
                h = torch.baddbmm(bias[:, None, :], h, weight)
            if index < last:
                h = torch.relu(h)
        return h

    @torch.no_grad()
    def error(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Classification error of each run on (x (N, in), y (N,)): float tensor (R,) in [0, 1]."""
        return (self(x).argmax(dim=-1) != y).float().mean(dim=1)


class ManyRunsResult(NamedTuple):
    """What :func:`~.train_many` returns; arrays have one row per run, in the order of the seeds.

    Attributes:
        seeds: the run seeds.
        test_error, train_error: final errors in [0, 1], numpy (R,).
        pair_fraction: mean over the training steps of the fraction of in-batch pairs
            (i, j), self-pairs included, with W[i, j] = 1, numpy (R,).
        curve_epochs: epochs at which the test error was measured (list of ints).
        curve: test error at those epochs, numpy (R, len(curve_epochs)).
        model: the trained :class:`~.StackedMLP`.
    """

    seeds: list[int]
    test_error: np.ndarray
    train_error: np.ndarray
    pair_fraction: np.ndarray
    curve_epochs: list[int]
    curve: np.ndarray
    model: StackedMLP


def _check_split(split: Split) -> None:
    check_batch(split.x_train, split.y_train)
    check_batch(split.x_test, split.y_test)


def _curve_epochs(epochs: int, curve_every: int) -> list[int]:
    curve_every = check_integer("curve_every", curve_every, low=0)
    if curve_every == 0:
        return [epochs]
    points = list(range(curve_every, epochs + 1, curve_every))
    return points if points and points[-1] == epochs else [*points, epochs]


def train_many(
    split: Split,
    seeds: Sequence[int],
    config: ManyRunsConfig,
    *,
    device: torch.device | str | None = None,
    curve_every: int = 0,
    progress: bool = False,
    fused: bool = True,
) -> ManyRunsResult:
    """Train one MLP per seed, all at once, with Local Mixup on the threshold graph.

    Args:
        split: the data (:func:`~localmixup.paper.spirals.make_spirals`); inputs (N, d), labels (N,).
        seeds: distinct integer run seeds >= 0 (R of them).
        config: the protocol (:class:`~.ManyRunsConfig`).
        device: where to train (default CPU); random draws are always made on the CPU.
        curve_every: also measure the test error every this many epochs (0: only at the end).
        progress: show a tqdm bar over the epochs.
        fused: use the fused Adam kernel (same update, several times faster on the
            CPU; results equal the default Adam up to float rounding).

    Each run shuffles the training set every epoch, cuts it into batches of
    ``batch_size`` (last partial batch kept) and for each batch draws lam then its
    pairs like ``LocalMixup("threshold", eps=eps, pairing=..., generator=mix)``; the
    loss is :func:`~localmixup.loss.mixup_loss` (variant "eq2") or the authors'
    batch scaling (variant "authors"). Runs do not interact: run r's numbers depend on
    its seed only (up to float rounding of the batched kernels).
    """
    if not isinstance(config, ManyRunsConfig):
        raise ValueError(f"config must be a ManyRunsConfig, got {type(config).__name__}")
    seeds = [check_integer("seed", s, low=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one run seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct (two runs with one seed would be the same run)")
    _check_split(split)
    device = torch.device(device) if device is not None else torch.device("cpu")
    curve_epochs = _curve_epochs(config.epochs, curve_every)

    runs = len(seeds)
    generators = [run_generators(s) for s in seeds]
    x_train, y_train = split.x_train.to(device, torch.float32), split.y_train.to(device)
    x_test, y_test = split.x_test.to(device, torch.float32), split.y_test.to(device)
    n, inputs = x_train.shape[0], x_train.shape[1]
    classes = int(max(split.y_train.max(), split.y_test.max())) + 1
    sizes = config.sizes(inputs, classes)
    model = StackedMLP.from_layers([init_mlp(sizes, g["init"]) for g in generators], device)
    params = model.parameters()
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=config.lr, fused=bool(fused))

    batch = config.batch_size
    starts = list(range(0, n, batch))
    steps = len(starts)
    pair_sum = torch.zeros(runs, device=device)
    curve = []
    for epoch in tqdm(range(1, config.epochs + 1), desc=f"eps={config.eps:g}, {runs} runs", disable=not progress, leave=False):
        order = torch.stack([torch.randperm(n, generator=g["order"]) for g in generators]).to(device)
        if config.mixing:
            lam, draws = _epoch_draws(generators, config, n, starts)
            lam_t = torch.from_numpy(1.0 - lam).to(device, torch.float32)  # (R, steps): weight of the partner
            draws = draws.to(device)
        xs, ys = x_train[order], y_train[order]
        for step, start in enumerate(starts):
            xb, yb = xs[:, start : start + batch], ys[:, start : start + batch]
            size = xb.shape[1]
            w = locality_weights(xb, "threshold", eps=config.eps, batched=True)
            pair_sum += w.mean(dim=(1, 2))
            if not config.mixing:
                logits = model(xb)
                loss = F.cross_entropy(logits.reshape(-1, classes), yb.reshape(-1), reduction="none").view(runs, size).mean(dim=1)
            else:
                drawn = draws[:, start : start + size]
                if config.pairing == "permutation":
                    partner = drawn.long()
                    weight = w.gather(2, partner[:, :, None]).squeeze(2)
                else:
                    cumulative = w.cumsum(dim=2)
                    partner = torch.searchsorted(cumulative, drawn[:, :, None] * cumulative[:, :, -1:], right=True)
                    partner = partner.squeeze(2).clamp_max(size - 1)
                    weight = torch.ones(runs, size, device=device)
                other = lam_t[:, step]
                x_mix = torch.lerp(xb, xb.gather(1, partner[:, :, None].expand(-1, -1, inputs)), other[:, None, None])
                logits = model(x_mix)
                flat = logits.reshape(-1, classes)
                ce_a = F.cross_entropy(flat, yb.reshape(-1), reduction="none").view(runs, size)
                ce_b = F.cross_entropy(flat, yb.gather(1, partner).reshape(-1), reduction="none").view(runs, size)
                per_sample = ce_a + other[:, None] * (ce_b - ce_a)
                if config.variant == "eq2":
                    loss = (weight * per_sample).sum(dim=1) / weight.sum(dim=1).clamp_min(torch.finfo(per_sample.dtype).tiny)
                else:
                    loss = weight.mean(dim=1) * per_sample.mean(dim=1)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
        if epoch in curve_epochs:
            curve.append(model.error(x_test, y_test))

    for p in params:
        p.requires_grad_(False)
    return ManyRunsResult(
        seeds=seeds,
        test_error=curve[-1].cpu().numpy().astype(np.float64),
        train_error=model.error(x_train, y_train).cpu().numpy().astype(np.float64),
        pair_fraction=(pair_sum / (steps * config.epochs)).cpu().numpy().astype(np.float64),
        curve_epochs=curve_epochs,
        curve=torch.stack(curve, dim=1).cpu().numpy().astype(np.float64),
        model=model,
    )


def _epoch_draws(generators: list[dict[str, torch.Generator]], config: ManyRunsConfig, n: int, starts: list[int]) -> tuple[np.ndarray, torch.Tensor]:
    """One epoch of LocalMixup draws for every run, in LocalMixup's order (per batch:
    lam, then the pairing). Returns lam (R, steps) float64 and the pairing draws
    (R, n): the permutation of each batch, or the uniforms of the graph pairing,
    concatenated along the epoch."""
    runs, steps = len(generators), len(starts)
    u = np.empty((runs, steps))
    permutation = config.pairing == "permutation"
    draws = torch.empty(runs, n, dtype=torch.int64 if permutation else torch.float32)
    for r, g in enumerate(generators):
        mix = g["mix"]
        for step, start in enumerate(starts):
            size = min(config.batch_size, n - start)
            u[r, step] = beta_from_uniforms(uniform(mix, beta_uniforms(config.mix_alpha)), config.mix_alpha).item()  # LocalMixup.sample
            if permutation:
                draws[r, start : start + size] = torch.randperm(size, generator=mix)
            else:
                draws[r, start : start + size] = uniform(mix, size)
    return u, draws


def train_single(
    split: Split,
    seed: int,
    config: ManyRunsConfig,
    *,
    device: torch.device | str | None = None,
) -> tuple[float, torch.nn.Sequential]:
    """Reference: one run as an ordinary loop on an ``nn.Module`` with
    :class:`~localmixup.mixing.LocalMixup` and :func:`~localmixup.loss.mixup_loss`.

    Same protocol and same random draws as run ``seed`` of :func:`~.train_many`.
    Returns (final test error in [0, 1], trained model).
    """
    if not isinstance(config, ManyRunsConfig):
        raise ValueError(f"config must be a ManyRunsConfig, got {type(config).__name__}")
    _check_split(split)
    device = torch.device(device) if device is not None else torch.device("cpu")
    g = run_generators(seed)
    x_train, y_train = split.x_train.to(device, torch.float32), split.y_train.to(device)
    x_test, y_test = split.x_test.to(device, torch.float32), split.y_test.to(device)
    n = x_train.shape[0]
    classes = int(max(split.y_train.max(), split.y_test.max())) + 1
    model = mlp_module(init_mlp(config.sizes(x_train.shape[1], classes), g["init"])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    mix = LocalMixup("threshold", eps=config.eps, alpha=config.mix_alpha, pairing=config.pairing, generator=g["mix"], validate=False)
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=g["order"]).to(device)
        for start in range(0, n, config.batch_size):
            index = order[start : start + config.batch_size]
            xb, yb = x_train[index], y_train[index]
            if not config.mixing:
                loss = per_sample_cross_entropy(model(xb), yb).mean()
            else:
                batch = mix(xb, yb)
                logits = model(batch.x)
                if config.variant == "eq2":
                    loss = mixup_loss(logits, batch)
                else:
                    ce_a = per_sample_cross_entropy(logits, batch.y_a)
                    ce_b = per_sample_cross_entropy(logits, batch.y_b)
                    loss = batch.weight.mean() * (ce_a + (1.0 - batch.lam) * (ce_b - ce_a)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        error = float((model(x_test).argmax(dim=1) != y_test).float().mean())
    return error, model
