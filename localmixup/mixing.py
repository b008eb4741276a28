"""Local Mixup as a batch transform: pairs, mixing coefficient and pair weights."""

from __future__ import annotations

from typing import NamedTuple

import torch
from scipy.special import betaincinv

from localmixup.graphs import GRAPHS, locality_weights
from localmixup.transfer import to_device
from localmixup.validation import check_batch, check_choice, check_integer, check_real

PAIRINGS = ("graph", "permutation")


class MixedBatch(NamedTuple):
    """A mixed batch: ``x = lam * x_i + (1 - lam) * x_partner(i)``.

    Attributes:
        x: mixed inputs, same shape and dtype as the input batch (B, ...).
        y_a: targets of the samples themselves, shape (B,) class indices or (B, C) soft.
        y_b: targets of the partners, same shape as ``y_a``.
        lam: mixing coefficient in [0, 1], one per batch (a float; in a stacked batch of R
            runs, a (R,) tensor, see :func:`~localmixup.paper.engine.stacked.stack_batches`).
        weight: float32 (B,) locality weight of each pair, in [0, 1].
    """

    x: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: float | torch.Tensor
    weight: torch.Tensor

    def soft_targets(self, num_classes: int | None = None) -> torch.Tensor:
        """Mixed targets ``lam * y_a + (1 - lam) * y_b`` as a float (B, C) tensor.

        Class indices are one-hot encoded with ``num_classes`` columns (required then,
        integer >= 1, above every label). This is the convention of torchvision's
        ``MixUp`` and timm's ``SoftTargetCrossEntropy``; multiply the per-sample loss
        by ``weight`` to keep the locality weighting.
        """
        return _soft(self.y_a, num_classes).lerp(_soft(self.y_b, num_classes), 1.0 - self.lam)


class LocalMixup:
    """Mixup whose pairs are weighted (or drawn) by a locality graph on the inputs.

    Args:
        graph: ``"exp"``, ``"threshold"``, ``"knn"`` (see :func:`~.locality_weights`) or
            ``"none"`` for classical Mixup.
        k, eps, alpha: the graph's parameter (k integer >= 0, eps in [0, inf],
            alpha in [0, inf)).
        mix_alpha: parameter of the Beta(mix_alpha, mix_alpha) law of ``lam``, > 0.
        pairing: ``"graph"`` draws the partner j of sample i with probability
            W[i, j] / sum_k W[i, k] (self included) and gives every pair weight 1;
            ``"permutation"`` pairs i with pi(i) for a uniform random permutation pi
            and gives the pair weight W[i, pi(i)]. Both estimate Eq. (2) of the paper.
        generator: torch generator for reproducible draws (its device is used for the
            random numbers); ``None`` uses torch's global RNG.
        validate: check the batch (finite values, matching lengths) on every call;
            switch off in a tuned GPU loop, since the check synchronises the device.

    Calling the object on ``(x, y)`` with x of shape (B, ...) and y of shape (B,)
    (class indices) or (B, C) (soft targets) returns a :class:`~.MixedBatch`.
    """

    def __init__(
        self,
        graph: str = "exp",
        *,
        k: int | None = None,
        eps: float | None = None,
        alpha: float | None = None,
        mix_alpha: float = 1.0,
        pairing: str = "graph",
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> None:
        self.graph = check_choice("graph", graph, GRAPHS)
        self.pairing = check_choice("pairing", pairing, PAIRINGS)
        self.mix_alpha = check_real("mix_alpha", mix_alpha, low=0.0, low_open=True, high=float("inf"), high_open=True)
        # Validate the graph parameters now, on a one-point batch, rather than at the first step.
        locality_weights(torch.zeros(1, 1), self.graph, k=k, eps=eps, alpha=alpha)
        self.k, self.eps, self.alpha = k, eps, alpha
        self.generator = generator
        self.validate = validate

    def __repr__(self) -> str:
        parameter = {"knn": f"k={self.k}", "threshold": f"eps={self.eps}", "exp": f"alpha={self.alpha}"}.get(self.graph)
        options = ", ".join(o for o in (repr(self.graph), parameter, f"mix_alpha={self.mix_alpha}", f"pairing={self.pairing!r}") if o)
        return f"LocalMixup({options})"

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, B) locality weight matrix of this graph on batch ``x``."""
        return locality_weights(x, self.graph, k=self.k, eps=self.eps, alpha=self.alpha)

    def sample_lam(self) -> float:
        """One draw of lam ~ Beta(mix_alpha, mix_alpha), by inversion of a uniform draw."""
        u = torch.rand((), generator=self.generator, device=self._random_device()).item()
        return float(betaincinv(self.mix_alpha, self.mix_alpha, u))

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> MixedBatch:
        size = check_batch(x, y) if self.validate else x.shape[0]
        w = self.weights(x)
        lam = self.sample_lam()
        if self.pairing == "permutation":
            partner = to_device(torch.randperm(size, generator=self.generator, device=self._random_device()), x.device)
            weight = w.gather(1, partner[:, None]).squeeze(1)
        else:
            partner = self._draw_partners(w)
            weight = torch.ones(size, device=x.device)
        # lerp is exact where the partner is the sample itself: x stays bit-identical.
        mixed = torch.lerp(x, x[partner], 1.0 - lam) if x.is_floating_point() else x
        return MixedBatch(mixed, y, y[partner], lam, weight)

    def _draw_partners(self, w: torch.Tensor) -> torch.Tensor:
        # Inverse-CDF sampling of each row; a zero weight is never drawn.
        cumulative = w.cumsum(dim=1)
        u = to_device(torch.rand(w.shape[0], 1, generator=self.generator, device=self._random_device()), w.device)
        partner = torch.searchsorted(cumulative, u * cumulative[:, -1:], right=True)
        return partner.squeeze(1).clamp_max(w.shape[0] - 1)

    def _random_device(self) -> torch.device:
        return self.generator.device if self.generator is not None else torch.device("cpu")


def _soft(y: torch.Tensor, num_classes: int | None) -> torch.Tensor:
    if y.is_floating_point():
        return y
    if num_classes is None:
        raise ValueError("num_classes is needed to one-hot encode class-index targets (integer >= 1)")
    num_classes = check_integer("num_classes", num_classes, low=1)
    if y.numel() and int(y.max()) >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes - 1}] for num_classes={num_classes}, got {int(y.max())}")
    return torch.nn.functional.one_hot(y, num_classes).float()
