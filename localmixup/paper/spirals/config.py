"""The protocol of a set of spirals runs trained together (:class:`ManyRunsConfig`), and the
authors' setting (:data:`AUTHORS`)."""

from __future__ import annotations

import dataclasses

from localmixup.checks import check_choice, check_integer, check_real
from localmixup.mixing import PAIRINGS

LOSS_WEIGHTINGS = ("pair", "batch")
"""How the pair weights enter the loss. ``"pair"``: Eq. (2) as :func:`~localmixup.loss.mixup_loss`
computes it (each pair's loss weighted by its weight, normalised by the sum of the weights).
``"batch"``: what the authors' spirals code does: the batch's mean loss multiplied by the mean
weight of its pairs (far pairs still train; the threshold only rescales each batch), with an
explicit no-mixup branch at eps = 0."""

OUTPUTS = ("logits", "softmax")
"""What the network outputs. ``"logits"``: the last linear layer, as usual. ``"softmax"``: the
authors' network, which ends with a softmax that the cross-entropy applies again (it takes the
softmax outputs for logits)."""

TRAINER_BACKENDS = ("auto", "kernel", "torch")


@dataclasses.dataclass(frozen=True)
class ManyRunsConfig:
    """One training protocol of the spirals experiment (all runs of a call share it).

    Attributes:
        eps: threshold of the locality graph W[i, j] = 1{D[i, j] <= eps}, in [0, inf)
            (0: vanilla training with ``pairing="graph"``; above the largest distance
            between two training points: Mixup).
        batch_size: integer >= 1 (the last partial batch of an epoch is kept).
        epochs: integer >= 1.
        lr: Adam learning rate, > 0 (betas (0.9, 0.999), eps 1e-8: torch's defaults).
        hidden: widths of the hidden layers (ReLU); the input and output widths come from the data.
        pairing: ``"graph"`` (partner drawn among the neighbours) or ``"permutation"``
            (partner pi(i), pair weighted by W[i, pi(i)]); see :class:`~localmixup.mixing.LocalMixup`.
        weighting: ``"pair"`` or ``"batch"`` (see :data:`LOSS_WEIGHTINGS`; ``"batch"`` needs
            ``pairing="permutation"``, as in the authors' code).
        output: ``"logits"`` or ``"softmax"`` (see :data:`OUTPUTS`).
        alpha: lam ~ Beta(alpha, alpha), > 0.
    """

    eps: float
    batch_size: int
    epochs: int = 200
    lr: float = 0.01
    hidden: tuple[int, ...] = (100, 100, 100)
    pairing: str = "graph"
    weighting: str = "pair"
    output: str = "logits"
    alpha: float = 1.0

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
        check_choice("weighting", self.weighting, LOSS_WEIGHTINGS)
        check_choice("output", self.output, OUTPUTS)
        if self.weighting == "batch" and self.pairing != "permutation":
            raise ValueError("weighting='batch' rescales permutation pairs, it needs pairing='permutation', got pairing='graph'")
        check_real("alpha", self.alpha, low=0.0, low_open=True, high=float("inf"), high_open=True)
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def mixing(self) -> bool:
        """False only for the authors' explicit no-mixup branch (weighting 'batch', eps = 0)."""
        return not (self.weighting == "batch" and self.eps == 0.0)

    def sizes(self, inputs: int, classes: int) -> tuple[int, ...]:
        """Layer widths from input to output."""
        return (inputs, *self.hidden, classes)

    def as_dict(self) -> dict:
        """Plain JSON-able dict (for run records)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


AUTHORS = {"pairing": "permutation", "weighting": "batch", "output": "softmax"}
"""The authors' setting (their spirals code, NOTES §5), with the defaults of :class:`ManyRunsConfig`
(Adam lr 0.01, 200 epochs, lam ~ Beta(1, 1) once per batch, last partial batch kept):
``ManyRunsConfig(eps, batch_size, **AUTHORS)``."""
