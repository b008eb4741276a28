"""Local Mixup as a batch transform: draw (lam, partners, pair weights), then apply the draw.

As in torchvision and timm, drawing the mixing parameters is apart from applying them:
``draw = mix.sample(x)`` gives a :class:`MixDraw`, ``mix.apply(draw, x, y)`` (or
:func:`apply_draw`) the :class:`MixedBatch`, and ``mix(x, y)`` does both. With a
:class:`~localmixup.rng.Streams` of R seeds as random source, every call handles R independent
runs at once: inputs (R, B, ...), one lam, one pairing and one batch per run.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from localmixup.graphs import GRAPHS, locality_weights, pair_weights
from localmixup.rng import Source, Streams, beta_from_uniforms, beta_uniforms, check_source, permutation, source_shape, uniform
from localmixup.transfer import to_device
from localmixup.validation import check_batch, check_choice, check_integer, check_real

PAIRINGS = ("graph", "permutation")


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


def apply_draw(draw: MixDraw, x: torch.Tensor, y: torch.Tensor, *, validate: bool = True) -> MixedBatch:
    """Mix the batch ``(x, y)`` with the draw ``draw``.

    Args:
        draw: a :class:`MixDraw` for this batch (lam () and partner (B,), or (R,) and (R, B)).
        x: floating-point inputs (B, ...) (or (R, B, ...)); integer images (uint8) raise a
            ``ValueError``: convert them to float first.
        y: (B,) class indices, (B, C) soft targets (float) or (B, C) integer one-hot targets
            (turned into float soft targets), with a leading R for R runs.
        validate: check values too (finite inputs, labels, partner indices); synchronises a GPU.

    Returns:
        The :class:`MixedBatch`; where ``partner[i] == i`` sample i is bit-identical to its input.
    """
    lam, partner = draw.lam, draw.partner
    runs = lam.ndim
    if runs > 1 or partner.ndim != runs + 1 or draw.weight.shape != partner.shape:
        raise ValueError(f"draw must hold lam (), partner (B,), weight (B,) or lam (R,), partner (R, B), weight (R, B); "
                         f"got {tuple(lam.shape)}, {tuple(partner.shape)}, {tuple(draw.weight.shape)}")
    size = check_batch(x, y, runs=runs) if validate else x.shape[runs]
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor to be mixed, got dtype {x.dtype}: convert integer images "
                         "first (for instance x.float() / 255)")
    if tuple(x.shape[: runs + 1]) != tuple(partner.shape) or tuple(y.shape[: runs + 1]) != tuple(partner.shape) or size != partner.shape[-1]:
        raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must start with the draw's shape {tuple(partner.shape)}")
    if validate and bool(((partner < 0) | (partner >= size)).any()):
        raise ValueError(f"draw.partner must hold indices in [0, {size - 1}]")
    if not y.is_floating_point() and y.ndim == runs + 2:
        y = y.float()  # integer one-hot rows are soft targets
    other = (1.0 - lam).to(x.device, x.dtype).reshape(*lam.shape, *[1] * (x.ndim - runs))
    # lerp is exact where the partner is the sample itself: x stays bit-identical.
    return MixedBatch(torch.lerp(x, _take(x, partner), other), y, _take(y, partner), lam, draw.weight)


class LocalMixup:
    """Mixup whose pairs are weighted (or drawn) by a locality graph on the inputs.

    Args:
        graph: ``"exp"``, ``"threshold"``, ``"knn"`` (see :func:`~.locality_weights`) or
            ``"none"`` for classical Mixup.
        k, eps, decay: the graph's parameter (k integer >= 0, eps in [0, inf],
            decay in [0, inf): W = exp(-decay * D)).
        alpha: lam ~ Beta(alpha, alpha), alpha > 0 (as in torchvision and timm; 1: uniform).
        pairing: ``"graph"`` draws the partner j of sample i with probability
            W[i, j] / sum_k W[i, k] (self included) and gives every pair weight 1;
            ``"permutation"`` pairs i with pi(i) for a uniform random permutation pi
            and gives the pair weight W[i, pi(i)]. Both estimate Eq. (2) of the paper.
        generator: the random source: a ``torch.Generator`` (reproducible; the draws are made
            on its device), a :class:`~localmixup.rng.Streams` (counter-based; with R seeds,
            every call mixes R runs at once: inputs (R, B, ...), each run drawn from its own
            seed; compiles with ``torch.compile(fullgraph=True)``), or None: torch's global RNG.
        seed: instead of ``generator``: a seed (integer >= 0) from which each process derives its
            own counter-based stream, on the device of the first batch: every DataLoader worker
            and every DDP rank (``torch.distributed``'s rank) draws differently, and the same seed
            in the same setting draws the same numbers. See the note on DDP below. Under
            ``torch.compile``, make one eager call first (``mix.source(device)``) in each process:
            compiled steps reuse that stream (the process checks cannot be traced).
        validate: check every batch (finite values, matching lengths, labels); switch off in a
            tuned GPU loop, since the checks synchronise the device.

    Calling the object on ``(x, y)`` with x of shape (B, ...) and y of shape (B,)
    (class indices) or (B, C) (soft or integer one-hot targets) returns a :class:`~.MixedBatch`;
    ``sample`` and ``apply`` are its two halves.

    A ``torch.Generator`` given to a mixer that is copied into DataLoader workers (or into the
    processes of a DDP job) is copied with it: every copy then draws the same numbers. Use
    ``seed=`` there. Under DDP each rank mixes its own batch, pairs only its own samples, and
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
        pairing: str = "graph",
        generator: Source = None,
        seed: int | None = None,
        validate: bool = True,
    ) -> None:
        self.graph = check_choice("graph", graph, GRAPHS)
        self.pairing = check_choice("pairing", pairing, PAIRINGS)
        self.alpha = check_real("alpha", alpha, low=0.0, low_open=True, high=float("inf"), high_open=True)
        # Validate the graph parameters now, on a one-point batch, rather than at the first step.
        locality_weights(torch.zeros(1, 1), self.graph, k=k, eps=eps, decay=decay)
        self.k, self.eps, self.decay = k, eps, decay
        if seed is not None and generator is not None:
            raise ValueError("give generator or seed, not both (seed derives one stream per process)")
        self.seed = None if seed is None else check_integer("seed", seed, low=0)
        self.generator = generator
        self.validate = validate
        self._derived: tuple[tuple[int, int], Streams] | None = None

    @property
    def generator(self) -> Source:
        """The random source given (None with ``seed=``; see :meth:`source`)."""
        return self._generator

    @generator.setter
    def generator(self, value: Source) -> None:
        self._generator = check_source("generator", value)

    def __repr__(self) -> str:
        parameter = {"knn": f"k={self.k}", "threshold": f"eps={self.eps}", "exp": f"decay={self.decay}"}.get(self.graph)
        options = ", ".join(o for o in (repr(self.graph), parameter, f"alpha={self.alpha}", f"pairing={self.pairing!r}") if o)
        return f"LocalMixup({options})"

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, B) locality weight matrix of this graph on batch ``x`` ((R, B, B) for R runs)."""
        runs = bool(source_shape(self.generator))
        return locality_weights(x, self.graph, k=self.k, eps=self.eps, decay=self.decay, batched=runs, validate=self.validate)

    def source(self, device: torch.device | str = "cpu") -> Source:
        """The random source of the next draw: the ``generator``, or with ``seed=`` this process's
        stream (made on ``device`` the first time; a new DataLoader worker or DDP rank derives its own)."""
        if self.seed is None:
            return self.generator
        if self._derived is not None and torch.compiler.is_compiling():
            return self._derived[1]  # the process's stream, derived by an eager call (class docstring)
        context = _process_context()
        if self._derived is None or self._derived[0] != context:
            self._derived = (context, Streams(self.seed, stream=context, device=device))
        return self._derived[1]

    def sample(self, x: torch.Tensor) -> MixDraw:
        """Draw lam, the partners and the pair weights for batch ``x`` (B, ...) ((R, B, ...) for R runs).

        The draws come in a fixed order: lam first, then the pairing.
        """
        return self._sample(x, validate=self.validate)

    def apply(self, draw: MixDraw, x: torch.Tensor, y: torch.Tensor) -> MixedBatch:
        """Mix ``(x, y)`` with ``draw`` (see :func:`apply_draw`)."""
        return apply_draw(draw, x, y, validate=self.validate)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> MixedBatch:
        """``self.apply(self.sample(x), x, y)``, the batch checked once."""
        if self.validate:
            check_batch(x, y, runs=len(source_shape(self.source(x.device))))
        return apply_draw(self._sample(x, validate=False), x, y, validate=False)

    def _sample(self, x: torch.Tensor, *, validate: bool) -> MixDraw:
        source = self.source(x.device)
        lead = source_shape(source)
        if validate:
            check_batch(x, runs=len(lead))
        if lead and (x.ndim < 2 or x.shape[0] != lead[0]):
            raise ValueError(f"x must hold one batch per stream of the generator, shape (R={lead[0]}, B, ...), got {tuple(x.shape)}")
        size = x.shape[len(lead)]
        lam = to_device(beta_from_uniforms(uniform(source, beta_uniforms(self.alpha)), self.alpha).float(), x.device)
        parameters = dict(k=self.k, eps=self.eps, decay=self.decay, batched=bool(lead), validate=False)
        if self.pairing == "permutation":  # only the B pairs drawn need a weight
            partner = to_device(permutation(source, size), x.device)
            return MixDraw(lam, partner, pair_weights(x, partner, self.graph, **parameters))
        w = locality_weights(x, self.graph, **parameters)
        partner = _graph_partners(w, to_device(uniform(source, size), x.device))
        return MixDraw(lam, partner, torch.ones(w.shape[:-1], device=x.device))


def _process_context() -> tuple[int, int]:
    """(DDP rank, DataLoader worker id + 1, or 0 outside a worker) of this process."""
    info = torch.utils.data.get_worker_info()
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return (torch.distributed.get_rank() if distributed else 0), (0 if info is None else info.id + 1)


def _graph_partners(w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    # Inverse-CDF sampling of each row of w with the uniforms u (..., B); a zero weight is never
    # drawn: the target stays strictly below the row total, even where u * total rounds up to it.
    cumulative = w.cumsum(dim=-1)
    total = cumulative[..., -1:]
    target = torch.minimum(u.to(w.dtype)[..., None] * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cumulative, target, right=True).squeeze(-1)


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
    if num_classes is None:
        raise ValueError("num_classes is needed to one-hot encode class-index targets (integer >= 1)")
    num_classes = check_integer("num_classes", num_classes, low=1)
    if y.numel() and int(y.max()) >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes - 1}] for num_classes={num_classes}, got {int(y.max())}")
    return torch.nn.functional.one_hot(y, num_classes).float()
