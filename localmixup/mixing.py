"""Local Mixup as a batch transform: draw (lam, partners, pair weights), then apply the draw.

As in torchvision and timm, drawing the mixing parameters is apart from applying them:
``draw = mix.sample(x)`` gives a :class:`MixDraw`, ``mix.apply(draw, x, y)`` (or
:func:`apply_draw`) the :class:`MixedBatch`, and ``mix(x, y)`` does both. With a
:class:`~localmixup.rng.Streams` of R seeds as random source, every call handles R independent
runs at once: inputs (R, B, ...), one lam, one pairing and one batch per run.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch

from localmixup.graphs import GRAPHS, locality_weights, pair_weights
from localmixup.rng import Source, Streams, beta_from_uniforms, beta_uniforms, check_source, permutation, source_shape, uniform
from localmixup.transfer import to_device
from localmixup.checks import INDEX_DTYPES, check_batch, check_choice, check_integer, check_label_dtype, check_real, check_seed, check_tensor

PAIRINGS = ("graph", "permutation")
MIXUP_LIKE, NO_MIXING = 0.95, 0.05
"""Mean weights of a batch's distinct pairs at or above which the graph is Mixup, at or below which it mixes nothing."""
_BY_EPOCH, _BY_WORKER_SEED = 1, 2  # stream-path tags: keyed by set_epoch, or by the DataLoader worker's seed


class LocalityScaleWarning(UserWarning):
    """The locality graph's scale makes Local Mixup Mixup (every pair weighs ~1) or no mixing (~0)."""


class MixDraw(NamedTuple):
    """The random part of one Local Mixup step, for a batch of B samples (or R batches of B).

    Attributes:
        lam: float32 mixing coefficient in [0, 1], shape () (or (R,): one per run).
        partner: int64 (B,) (or (R, B)): sample i is mixed with sample ``partner[i]`` of its batch.
        weight: float32 (B,) (or (R, B)) in [0, 1]: the locality weight of each pair in the loss
            (W[i, partner[i]] with permutation pairing, 1 with graph pairing).
    """

    lam: torch.Tensor
    partner: torch.Tensor
    weight: torch.Tensor


class MixedBatch(NamedTuple):
    """A mixed batch: ``x = lam * x_i + (1 - lam) * x_partner(i)``.

    Attributes:
        x: mixed inputs, same shape and dtype as the input batch (B, ...) (or (R, B, ...)).
        y_a: targets of the samples themselves: (B,) class indices or (B, C) soft targets
            (a leading R for R runs).
        y_b: targets of the partners, same shape as ``y_a``.
        lam: mixing coefficient in [0, 1]: a float32 tensor of shape () (or (R,)); a Python
            float is accepted where a batch is built by hand.
        weight: float32 (B,) (or (R, B)) locality weight of each pair, >= 0.
    """

    x: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: float | torch.Tensor
    weight: torch.Tensor

    def soft_targets(self, num_classes: int | None = None) -> torch.Tensor:
        """Mixed targets ``lam * y_a + (1 - lam) * y_b`` as a float (B, C) tensor ((R, B, C) for R runs).

        Class indices are one-hot encoded with ``num_classes`` columns (required then,
        integer >= 1, above every label). This is the convention of torchvision's
        ``MixUp`` and timm's ``SoftTargetCrossEntropy``; multiply the per-sample loss
        by ``weight`` to keep the locality weighting.
        """
        runs = self.lam.ndim if isinstance(self.lam, torch.Tensor) else 0
        other = 1.0 - self.lam
        if isinstance(other, torch.Tensor):
            other = other.reshape(*other.shape, 1, 1)
        return _soft(self.y_a, num_classes, runs).lerp(_soft(self.y_b, num_classes, runs), other)

    def soft(self, num_classes: int | None = None) -> SoftMixedBatch:
        """The batch as ``(x, target, weight)``: mixed inputs, :meth:`soft_targets` and pair weights.

        Unpack all three (``x, target, weight = batch.soft(C)``): the weights are Eq. (2)'s; a loss
        that drops them is Mixup's. :func:`~localmixup.loss.mixup_loss` accepts this batch too.
        """
        return SoftMixedBatch(self.x, self.soft_targets(num_classes), self.weight)

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> MixedBatch:
        """The batch with every tensor on ``device`` (a Python float ``lam`` stays a float)."""
        return _moved(self, device, non_blocking)


class SoftMixedBatch(NamedTuple):
    """A mixed batch with soft targets, as torchvision's ``MixUp`` returns it, plus the pair weights.

    Attributes:
        x: mixed inputs (B, ...) (or (R, B, ...)).
        target: float (B, C) mixed soft targets ``lam * y_a + (1 - lam) * y_b`` (or (R, B, C)).
        weight: float32 (B,) (or (R, B)) locality weight of each pair, >= 0: Eq. (2) weighs the
            per-sample loss with it and divides by its sum.
    """

    x: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> SoftMixedBatch:
        """The batch with every tensor on ``device``."""
        return _moved(self, device, non_blocking)


def apply_draw(draw: MixDraw, x: torch.Tensor, y: torch.Tensor, *, validate: bool = True) -> MixedBatch:
    """Mix the batch ``(x, y)`` with the draw ``draw``.

    Args:
        draw: a :class:`MixDraw` for this batch (lam () and partner (B,), or (R,) and (R, B)):
            lam and weight floating-point tensors, partner an integer tensor.
        x: floating-point inputs (B, ...) (or (R, B, ...)); integer images (uint8) raise a
            ``ValueError``: convert them to float first.
        y: (B,) class indices, (B, C) soft targets (float) or (B, C) integer one-hot targets
            (turned into float soft targets), with a leading R for R runs. A (B, 1) integer column
            is read as (B,) class indices; a (B, 1) float column raises a ``ValueError``. Integer
            labels are int8 to int64 or uint8; bool labels raise a ``ValueError`` (use ``y.long()``).
        validate: check values too (finite inputs, labels, partner indices); synchronises a GPU.

    Returns:
        The :class:`MixedBatch`; where ``partner[i] == i`` sample i is bit-identical to its input.
    """
    lam, partner, weight = _checked_draw(draw)
    runs = lam.ndim
    x, y = check_tensor("x", x), _label_column(check_tensor("y", y), runs)
    if tuple(x.shape[: runs + 1]) != tuple(partner.shape) or tuple(y.shape[: runs + 1]) != tuple(partner.shape):
        raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must start with the draw's shape {tuple(partner.shape)} "
                         f"({'R runs of B samples' if runs else 'one batch of B samples'})")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor to be mixed, got dtype {x.dtype}: convert integer images "
                         "first (for instance x.float() / 255)")
    check_label_dtype("y", y, soft=y.ndim == runs + 2)
    size = check_batch(x, y, runs=runs) if validate else x.shape[runs]
    if validate and bool(((partner < 0) | (partner >= size)).any()):
        raise ValueError(f"draw.partner must hold indices in [0, {size - 1}]")
    if not y.is_floating_point() and y.ndim == runs + 2:
        y = y.float()  # integer one-hot rows are soft targets
    other = (1.0 - lam).to(x.device, x.dtype).reshape(*lam.shape, *[1] * (x.ndim - runs))
    try:
        x_b, y_b = _take(x, partner), _take(y, partner)
    except IndexError:  # validate=False on the CPU (on a GPU, out-of-range indices are a device-side assert)
        raise ValueError(f"draw.partner must hold indices in [0, {size - 1}]") from None
    # lerp is exact where the partner is the sample itself: x stays bit-identical.
    return MixedBatch(torch.lerp(x, x_b, other), y, y_b, lam, weight)


def _checked_draw(draw: MixDraw) -> MixDraw:
    """``draw`` with its types, dtypes and shapes checked (no value is read); the partners as int64."""
    if not isinstance(draw, MixDraw):
        raise TypeError(f"draw must be a MixDraw (lam, partner, weight), got {type(draw).__name__}")
    lam, partner, weight = (check_tensor(f"draw.{name}", t) for name, t in zip(draw._fields, draw))
    if not (lam.is_floating_point() and weight.is_floating_point()) or partner.dtype not in INDEX_DTYPES:
        raise ValueError(f"draw must hold a floating-point lam and weight and integer partner indices, got lam {lam.dtype}, "
                         f"partner {partner.dtype}, weight {weight.dtype}")
    runs = lam.ndim
    if runs > 1 or partner.ndim != runs + 1 or weight.shape != partner.shape or tuple(lam.shape) != tuple(partner.shape[:runs]):
        raise ValueError(f"draw must hold lam (), partner (B,), weight (B,) or lam (R,), partner (R, B), weight (R, B); "
                         f"got {tuple(lam.shape)}, {tuple(partner.shape)}, {tuple(weight.shape)}")
    return MixDraw(lam, partner.long(), weight)


class LocalMixup:
    """Mixup whose pairs are weighted (or drawn) by a locality graph on the inputs.

    Args:
        graph: ``"exp"``, ``"threshold"``, ``"knn"`` (see :func:`~.locality_weights`) or
            ``"none"``: every pair weighs 1; with ``pairing="permutation"`` this is classical Mixup.
        k, eps, decay: the graph's parameter (k integer >= 0, eps in [0, inf],
            decay in [0, inf): W = exp(-decay * D)). eps and decay are in units of the input
            distances D (Euclidean, between flattened samples as the mixer sees them):
            ``decay=auto_decay(x_train, y_train)`` chooses the rate from the data.
        alpha: lam ~ Beta(alpha, alpha), alpha > 0 (as in torchvision and timm; 1: uniform).
        p: probability of mixing a batch, in [0, 1] (timm's ``mixup_prob``); a batch left unmixed
            (each run decides alone) is returned with lam 1, every sample its own partner, weight 1.
        pairing: ``"graph"`` draws the partner j of sample i with probability
            W[i, j] / sum_k W[i, k] (self included) and gives every pair weight 1;
            ``"permutation"`` pairs i with pi(i) for a uniform random permutation pi
            and gives the pair weight W[i, pi(i)]. Both estimate Eq. (2) of the paper.
        generator: the random source: a ``torch.Generator`` (reproducible; the draws are made
            on its device), a :class:`~localmixup.rng.Streams` (counter-based; with R seeds,
            every call mixes R runs at once: inputs (R, B, ...), each run drawn from its own
            seed; compiles with ``torch.compile(fullgraph=True)``), or None: torch's global RNG.
            A generator is the caller's: it is copied into DataLoader workers as it is, so every
            worker (and, without persistent workers, every epoch) draws the same numbers; a mixer
            called in a worker with a generator warns once. Use ``seed=`` there.
        seed: instead of ``generator``: a seed (integer in [0, 2**64)) from which each process derives its
            own counter-based stream, on the device of the first batch. See "Seeds" below.
        validate: check every batch (finite values, matching lengths, labels) and warn once
            (:class:`LocalityScaleWarning`) if a batch's distinct pairs weigh on average at least
            ``MIXUP_LIKE`` (0.95: this is Mixup) or at most ``NO_MIXING`` (0.05: no mixing). Switch
            it off in a tuned GPU loop, since the checks synchronise the device.

    Calling the object on ``(x, y)`` with x of shape (B, ...) and y of shape (B,)
    (class indices of dtype int8 to int64 or uint8; a (B, 1) integer column is read as (B,); bool
    labels raise a ``ValueError``: use ``y.long()``) or (B, C) (soft or integer one-hot targets) returns a :class:`~.MixedBatch`; ``sample`` and ``apply`` are its two halves and
    :meth:`soft` gives torchvision's ``(x, soft target)`` plus the pair weights.
    :meth:`eval` makes it return every batch unmixed (:meth:`train` mixes again).

    Seeds. With ``seed=``, the stream of a process is derived from (seed, DDP rank, DataLoader
    worker, epoch), so that every rank and every worker draws differently:

    * after ``mix.set_epoch(epoch)`` (call it at the start of each epoch, before iterating the
      loader, as ``DistributedSampler.set_epoch``), each worker's stream starts afresh from
      (seed, rank, worker, epoch): the draws of an epoch depend on these alone, whatever came
      before (a resumed run draws what the uninterrupted one did), with or without
      ``persistent_workers`` (the epoch is held in shared memory, so persistent workers see it);
    * without ``set_epoch``, a DataLoader worker keys its stream on its own seed
      (``torch.initial_seed()`` in the worker), which torch draws anew from the main process's RNG
      each time workers start: fresh draws every epoch, reproducible under ``torch.manual_seed``;
      the main process (``num_workers=0``) keeps one stream from (seed, rank) for the whole run.

    Under ``torch.compile``, make one eager call first (``mix.source(device)``) in each process
    and after each ``set_epoch``: compiled steps reuse that stream (the process checks cannot
    be traced).

    Under DDP each rank mixes its own batch, pairs only its own samples, and
    :func:`~localmixup.loss.mixup_loss` normalises by the rank's own weight sum: the averaged
    gradient is the mean over ranks of each rank's ratio ``sum w l / sum w``, not the ratio of
    the global sums (they agree when every rank's weight sum is the same, for instance with
    graph pairing, where every weight is 1). For the global ratio, use
    ``mixup_loss(..., normalize="size") * B * world_size / total`` with ``total`` the weight sum
    all-reduced over the ranks.
    """

    def __init__(
        self,
        graph: str = "exp",
        *,
        k: int | None = None,
        eps: float | None = None,
        decay: float | None = None,
        alpha: float = 1.0,
        p: float = 1.0,
        pairing: str = "graph",
        generator: Source = None,
        seed: int | None = None,
        validate: bool = True,
    ) -> None:
        self.graph = check_choice("graph", graph, GRAPHS)
        self.pairing = check_choice("pairing", pairing, PAIRINGS)
        self.alpha = check_real("alpha", alpha, low=0.0, low_open=True, high=float("inf"), high_open=True)
        self.p = check_real("p", p, low=0.0, high=1.0)
        # Validate the graph parameters now, on a one-point batch, rather than at the first step.
        locality_weights(torch.zeros(1, 1), self.graph, k=k, eps=eps, decay=decay)
        self.k, self.eps, self.decay = k, eps, decay
        if seed is not None and generator is not None:
            raise ValueError("give generator or seed, not both (seed derives one stream per process)")
        self.seed = None if seed is None else check_seed("seed", seed)
        self.generator = generator
        self.validate = validate
        self.training = True
        # the epoch (-1: none set), shared with the DataLoader workers the mixer is copied into
        self._epoch = None if seed is None else torch.full((), -1, dtype=torch.int64).share_memory_()
        self._derived: tuple[tuple[int, ...], Streams] | None = None
        self._warned: set[str] = set()

    @property
    def generator(self) -> Source:
        """The random source given (None with ``seed=``; see :meth:`source`)."""
        return self._generator

    @generator.setter
    def generator(self, value: Source) -> None:
        self._generator = check_source("generator", value)

    def __repr__(self) -> str:
        options = (repr(self.graph), self._parameter(), f"alpha={self.alpha}", f"pairing={self.pairing!r}",
                   f"p={self.p}" if self.p < 1.0 else "")
        return f"LocalMixup({', '.join(o for o in options if o)})"

    def _parameter(self) -> str:
        """The graph's parameter as ``name=value`` ("" for ``graph="none"``)."""
        return {"knn": f"k={self.k}", "threshold": f"eps={self.eps}", "exp": f"decay={self.decay}"}.get(self.graph, "")

    def train(self, mode: bool = True) -> LocalMixup:
        """Mix batches (``mode=True``, the default) or return them unmixed (False); returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be a bool (True: mix, False: return batches unmixed), got {type(mode).__name__}")
        self.training = mode
        return self

    def eval(self) -> LocalMixup:
        """Return every batch unmixed (lam 1, every sample its own partner, weight 1): ``train(False)``."""
        return self.train(False)

    def set_epoch(self, epoch: int) -> None:
        """Key the draws of the coming epoch on ``epoch`` (integer >= 0); needs ``seed=``.

        Call it before iterating the DataLoader of each epoch, in the main process: every worker
        (persistent or not) and every rank then draws from (seed, rank, worker, epoch), afresh.
        """
        if self._epoch is None:
            raise ValueError("set_epoch needs a mixer made with seed= (integer >= 0); a generator given "
                             "with generator= is the caller's to reseed")
        self._epoch.fill_(check_integer("epoch", epoch, low=0))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, B) locality weight matrix of this graph on batch ``x`` ((R, B, B) for R runs)."""
        runs = bool(source_shape(self.generator))
        return locality_weights(x, self.graph, k=self.k, eps=self.eps, decay=self.decay, batched=runs, validate=self.validate)

    def source(self, device: torch.device | str = "cpu") -> Source:
        """The random source of the next draw: the ``generator``, or with ``seed=`` this process's
        stream for its rank, worker and epoch (made on ``device`` whenever one of them changes)."""
        if self.seed is None:
            if self.generator is not None and not torch.compiler.is_compiling() and torch.utils.data.get_worker_info():
                self._warn_once("worker", "a generator given to LocalMixup is copied into every DataLoader worker "
                                "as it is: every worker, and without persistent_workers every epoch, draws the same "
                                "numbers; give seed= instead (and call set_epoch each epoch)", UserWarning, stacklevel=4)
            return self.generator
        if self._derived is not None and torch.compiler.is_compiling():
            return self._derived[1]  # the process's stream, derived by an eager call (class docstring)
        path = self._stream_path()
        if self._derived is None or self._derived[0] != path:
            self._derived = (path, Streams(self.seed, stream=path, device=device))
        return self._derived[1]

    def _stream_path(self) -> tuple[int, ...]:
        """The :func:`~localmixup.rng.derive_seed` path of this process's stream (class docstring, "Seeds")."""
        rank, worker, worker_seed = _process_context()
        epoch = int(self._epoch)
        if epoch >= 0:
            return (rank, worker, _BY_EPOCH, epoch)
        if worker_seed is not None:
            return (rank, worker, _BY_WORKER_SEED, worker_seed)
        return (rank, worker)

    def sample(self, x: torch.Tensor) -> MixDraw:
        """Draw lam, the partners and the pair weights for batch ``x`` (B, ...) ((R, B, ...) for R runs).

        The draws come in a fixed order: lam first, then the pairing, then (if ``p < 1``) one
        uniform per run that decides whether the batch is mixed. In eval mode nothing is drawn:
        lam is 1 and every sample its own partner, with weight 1.
        """
        return self._sample(x, validate=self.validate)

    def apply(self, draw: MixDraw, x: torch.Tensor, y: torch.Tensor) -> MixedBatch:
        """Mix ``(x, y)`` with ``draw`` (see :func:`apply_draw`)."""
        return apply_draw(draw, x, y, validate=self.validate)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> MixedBatch:
        """``self.apply(self.sample(x), x, y)``, the batch checked once."""
        if self.validate:
            runs = len(source_shape(self.source(check_tensor("x", x).device)))
            check_batch(x, _label_column(y, runs), runs=runs)
        return apply_draw(self._sample(x, validate=False), x, y, validate=False)

    def soft(self, x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None) -> SoftMixedBatch:
        """``self(x, y).soft(num_classes)``: ``x, target, weight = mix.soft(x, y, C)``, as torchvision's
        ``x, target = MixUp(...)(x, y)`` with the pair weights of Eq. (2) (see :meth:`MixedBatch.soft`)."""
        return self(x, y).soft(num_classes)

    def _sample(self, x: torch.Tensor, *, validate: bool) -> MixDraw:
        source = self.source(check_tensor("x", x).device)
        lead = source_shape(source)
        if validate:
            check_batch(x, runs=len(lead))
        if lead and (x.ndim < 2 or x.shape[0] != lead[0]):
            raise ValueError(f"x must hold one batch per stream of the generator, shape (R={lead[0]}, B, ...), got {tuple(x.shape)}")
        if x.ndim <= len(lead) or x.shape[len(lead)] == 0:
            raise ValueError(f"x must be a batch (B, ...) of at least one sample, got shape {tuple(x.shape)}")
        size = x.shape[len(lead)]
        if not self.training:
            return _unmixed_draw(lead, size, x.device)
        lam = to_device(beta_from_uniforms(uniform(source, beta_uniforms(self.alpha)), self.alpha).float(), x.device)
        parameters = dict(k=self.k, eps=self.eps, decay=self.decay, batched=bool(lead), validate=False)
        # an exact extreme (eps 0 or inf, decay 0, k 0) is asked for: no scale to doubt
        explicit = self.eps in (0.0, math.inf) or self.decay == 0.0 or self.k == 0
        check_scale = self.validate and self.graph != "none" and not explicit and "scale" not in self._warned
        if self.pairing == "permutation":  # only the B pairs drawn need a weight
            partner = to_device(permutation(source, size), x.device)
            draw = MixDraw(lam, partner, pair_weights(x, partner, self.graph, **parameters))
            if check_scale:
                self._check_scale(draw.weight[partner != torch.arange(size, device=x.device)])
        else:
            w = locality_weights(x, self.graph, **parameters)
            partner = _graph_partners(w, to_device(uniform(source, size), x.device))
            draw = MixDraw(lam, partner, torch.ones(w.shape[:-1], device=x.device))
            if check_scale:
                self._check_scale(w[..., ~torch.eye(size, dtype=torch.bool, device=x.device)])
        if self.p < 1.0:
            mixed = to_device(uniform(source, 1), x.device)[..., 0] < self.p
            draw = _where(mixed, draw, _unmixed_draw(lead, size, x.device))
        return draw

    def _check_scale(self, distinct: torch.Tensor) -> None:
        """Warn (once) if the weights ``distinct`` of a batch's distinct pairs are all about 1 or all about 0."""
        if distinct.numel() == 0:
            return
        mean = distinct.float().mean().item()
        if NO_MIXING < mean < MIXUP_LIKE:
            return
        verdict = (f"this is Mixup (at least {MIXUP_LIKE}: every pair counts about fully)" if mean >= MIXUP_LIKE else
                   f"this is no mixing (at most {NO_MIXING}: almost every pair weighs ~0, training on the samples themselves)")
        unit = {"knn": "a number of neighbours in the batch", "threshold": "in units of the input distances"}.get(
            self.graph, "in inverse units of the input distances")
        self._warn_once("scale", f"{self!r}: the distinct pairs of this batch weigh {mean:.3g} on average: {verdict}. "
                        f"{self._parameter()} is {unit}; graph='exp' with decay=lm.auto_decay(x_train, y_train) "
                        "chooses the scale from the training data", LocalityScaleWarning, stacklevel=5)

    def _warn_once(self, key: str, message: str, category: type[Warning], stacklevel: int) -> None:
        """Warn ``message`` the first time this mixer meets ``key`` (``stacklevel``: frames up to the caller's line)."""
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, category, stacklevel=stacklevel)


def _process_context() -> tuple[int, int, int | None]:
    """(DDP rank, DataLoader worker id + 1 or 0 outside a worker, the worker's seed or None) of this
    process. A worker's seed (its ``torch.initial_seed()``) is the loader's base seed plus its id,
    the base seed drawn from the main process's RNG each time the loader starts its workers."""
    info = torch.utils.data.get_worker_info()
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if distributed else 0
    return (rank, 0, None) if info is None else (rank, info.id + 1, info.seed)


def _unmixed_draw(lead: tuple[int, ...], size: int, device: torch.device) -> MixDraw:
    """The draw that leaves a batch as it is: lam 1, every sample its own partner, weight 1."""
    partner = torch.arange(size, device=device).expand(*lead, size)
    return MixDraw(torch.ones(lead, device=device), partner, torch.ones(*lead, size, device=device))


def _where(mixed: torch.Tensor, draw: MixDraw, unmixed: MixDraw) -> MixDraw:
    """``draw`` for the runs where ``mixed`` (bool, lam's shape) holds, ``unmixed`` for the others."""
    return MixDraw(torch.where(mixed, draw.lam, unmixed.lam), torch.where(mixed[..., None], draw.partner, unmixed.partner),
                   torch.where(mixed[..., None], draw.weight, unmixed.weight))


def _moved(batch: MixedBatch | SoftMixedBatch, device: torch.device | str, non_blocking: bool) -> MixedBatch | SoftMixedBatch:
    """``batch`` with each tensor field on ``device`` (other fields as they are)."""
    return batch._make(f.to(device, non_blocking=non_blocking) if isinstance(f, torch.Tensor) else f for f in batch)


def _label_column(y: torch.Tensor, runs: int) -> torch.Tensor:
    """``y`` with a (B, 1) integer column (a leading R for R runs) read as (B,) class indices."""
    if not isinstance(y, torch.Tensor) or y.ndim != runs + 2 or y.shape[-1] != 1:
        return y
    if y.is_floating_point():
        raise ValueError(f"y of shape {tuple(y.shape)} is one float column: soft targets need one column per class "
                         "(C >= 2); class indices are integers, (B,) or a (B, 1) column")
    return y.squeeze(-1)


def _graph_partners(w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    # Inverse-CDF sampling of each row of w with the uniforms u (..., B); a zero weight is never
    # drawn: the target stays strictly below the row total, even where u * total rounds up to it.
    # The clamp changes nothing for finite weights; a NaN row (x not finite, validate=False) draws
    # an index in range rather than B (no host check: the mixed sample is NaN anyway).
    cumulative = w.cumsum(dim=-1)
    total = cumulative[..., -1:]
    target = torch.minimum(u.to(w.dtype)[..., None] * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cumulative, target, right=True).squeeze(-1).clamp_max_(w.shape[-1] - 1)


def _take(t: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """``t[i, partner[i]]`` along the batch dimension: t (B, ...) with partner (B,), or t (R, B, ...) with (R, B)."""
    if partner.ndim == 1:
        return t[partner]
    return t[torch.arange(partner.shape[0], device=partner.device)[:, None], partner]


def _soft(y: torch.Tensor, num_classes: int | None, runs: int) -> torch.Tensor:
    if y.is_floating_point():
        return y
    if y.ndim == runs + 2:
        return y.float()  # integer one-hot rows
    check_label_dtype("y_a and y_b", y, soft=False)
    if num_classes is None:
        raise ValueError("num_classes is needed to one-hot encode class-index targets (integer >= 1)")
    num_classes = check_integer("num_classes", num_classes, low=1)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes - 1}] for num_classes={num_classes}, got {int(y.min())}..{int(y.max())}")
    return torch.nn.functional.one_hot(y.long(), num_classes).float()
