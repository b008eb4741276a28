"""AdaMixup (Guo, Mao, Zhang, AAAI 2019), the adaptive Mixup the paper compares against.

AdaMixup learns the mixing policy instead of drawing ``lam ~ Beta(a, a)``. Three parts are
trained together, in one optimiser, on one loss:

* the **classifier**: any network of :mod:`localmixup.paper.models`, split into a *trunk* (the
  network without its final ``nn.Linear``) and its *head* (that layer);
* the **policy-region generator**: a second trunk of the same architecture with its own
  weights, then a policy head ``Linear(F, 100) -> Linear(100, 3) -> softmax`` whose three
  outputs are ``(start, width, unused)`` (``alpha`` and ``delta`` in the AdaMixup paper and
  code; renamed here, where ``alpha`` is Mixup's Beta parameter). Each mixed example gets
  ``lam = start + U(0, 1) * width``, so ``lam`` lies in ``[start, start + width]``, inside
  ``[0, 1]`` because the three softmax outputs sum to 1 (the unused third one is the slack
  ``1 - start - width``);
* the **intrusion discriminator**: the *classifier's* trunk (shared weights) then its own
  head ``Linear(F, 10) -> Linear(10, 2)``; class 1 = real sample (positive), class 0 = mixed
  sample (negative).

One training step (:meth:`AdaMixup.loss`), following the authors' TensorFlow code
(SITE5039/AdaMixUp, ``ResNet_Cifar_AdaMixup.build_graph``):

1. pairs come from a uniform random permutation ``pi`` of the batch;
2. with ``split_batch=True`` (the official code) the first ``ceil(B/2)`` samples are mixed
   (sample ``i`` with ``pi(i)``, a partner drawn from the whole batch) and the last
   ``floor(B/2)`` are "unseen": they only serve as extra real samples for the
   discriminator. With ``split_batch=False`` all B samples are mixed and are the originals;
3. the generator reads ``(m1 * x_i + m2 * x_pi(i)) / 2`` where ``m1`` and ``m2`` are
   elementwise noise masks of the input's shape, each entry drawn independently from a
   standard normal truncated to ``[-2, 2]`` (TensorFlow's ``truncated_normal(mean=0,
   stddev=1)`` of the official code);
4. ``x_mix = lam * x_i + (1 - lam) * x_pi(i)``, soft target
   ``lam * onehot(y_i) + (1 - lam) * onehot(y_pi(i))`` (``lam`` weights the sample itself, as
   in :class:`localmixup.MixedBatch`);
5. one pass of the classifier trunk over ``[x_mix, x_orig, x_unseen]`` gives the features of
   every sample; the classifier head scores ``x_mix`` (soft-label cross-entropy, the *mixing
   CE*) and ``x_orig`` (cross-entropy, the *original CE*); the discriminator head scores all
   of them (binary cross-entropy averaged over the samples, the *intrusion CE*);
6. the loss weighs the two classification terms by ``weighting``: ``"separate"`` (default)
   ``loss = mixing CE + original CE + intrusion CE`` (1 + 1), ``"official"``
   ``loss = (mixing CE + original CE) / 2 + intrusion CE``: the official code takes *one* mean of
   the cross-entropy over the union of the mixed and original samples (``ce_cost1``), which,
   with as many of each, is exactly the average of the two terms (1/2 + 1/2). Weight decay is
   left to the optimiser. Every part minimises this same loss: it is a cooperative game, not
   an adversarial one.

How the generator learns. ``lam`` is a differentiable function of the generator's outputs
(the reparameterisation ``start + U * width``), and ``lam`` enters the loss twice: through the
mixed input ``x_mix`` (seen by the classifier and by the discriminator) and through the soft
target. Autograd therefore carries to the generator (policy head and its own trunk) the
gradients of the mixing CE and of the intrusion CE; the original CE does not depend on it.
The mixing CE alone would push the policy to the degenerate ``lam -> 0 or 1`` (the mixed
point becomes a real one, whose label is easy). The intrusion CE is what prevents this: a
mixed sample that the discriminator takes for a real one (a *manifold intrusion*: it
collides with the data) costs ``-log p(mixed)``, large, and its gradient moves ``lam``
towards policies whose mixed points the discriminator recognises as synthetic. The official
code lets both gradients flow (no stop-gradient anywhere); so does this module.

Deviations from the official code: the classifier trunk runs once over the mixed, original
and unseen samples together (the official graph runs it twice, once for the classifier on
``[x_mix, x_orig]`` and once for the discriminator on ``[x_orig, x_unseen, x_mix]``); with
BatchNorm the batch statistics are thus those of the union (a network without BatchNorm or
dropout, such as LeNet-5, gives the same features, hence the same loss and gradients, either
way). By default (``weighting="separate"``) the two classification terms weigh 1 + 1, twice the
official weight relative to the intrusion term; ``weighting="official"`` restores it. The
training recipe (optimiser, schedule, epochs) is the caller's. Kept from the official code: both heads
start from ``N(0, 1e-3)`` weights and zero biases (option ``head_init_std``), and neither has
a non-linearity between its two linear layers; the classifier's own head keeps the
backbone's initialisation.

Observed behaviour (tests and toy runs): the game has a degenerate fixed point. If the
generator reaches ``lam = 0`` or ``1`` (softmax saturated) before the discriminator has learned
anything, mixed points *are* real points, the discriminator stays at chance and nothing pulls
the policy back. With the official ``1e-3`` initialisation the discriminator's two stacked
linear layers start at a saddle point and learn slowly, which makes this more likely in short
runs.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from localmixup.loss import per_sample_cross_entropy
from localmixup.paper.models import MODELS, build_model, count_parameters
from localmixup.transfer import to_device
from localmixup.checks import check_batch, check_choice, check_integer, check_real

POLICY_HIDDEN = 100  # FC(100) of the policy-region generator's head
DISCRIMINATOR_HIDDEN = 10  # FC(10) of the intrusion discriminator's head (CLASS_NUM in the official code)
HEAD_INIT_STD = 1e-3  # std of the N(0, std) initialisation of both heads' weights (official code)
ADAMIXUP_WEIGHTINGS = ("separate", "official")  # weights 1 + 1 or 1/2 + 1/2 of the mixing and original CE


def split_model(model: nn.Module, num_classes: int | None = None) -> tuple[nn.Module, int, nn.Linear]:
    """Split a classifier into ``(trunk, feature_dim, head)`` without touching ``model``.

    The head is the *last registered* ``nn.Linear`` of ``model`` (searched recursively, in
    :meth:`~torch.nn.Module.named_modules` order): ``linear`` for ResNet-18 and DenseNet-BC,
    ``fc3`` for LeNet-5. The trunk is a deep copy of ``model`` in which that layer is replaced
    by ``nn.Identity``, so ``trunk(x)`` has shape (B, feature_dim) and ``head(trunk(x))``
    equals ``model(x)`` whenever the model's forward ends with that layer (true for every
    network of :mod:`localmixup.paper.models`; checked by the tests). The head returned is the copy's
    layer (its own parameters, initialised as in ``model``).

    Args:
        model: the classifier, an ``nn.Module``.
        num_classes: if given, the head's ``out_features`` must equal it.

    Raises:
        ValueError: if ``model`` is not a module, has no ``nn.Linear``, or its last one does
            not output ``num_classes`` scores.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"model must end with an nn.Linear classifier layer to be split into trunk and head; "
                         f"{type(model).__name__} has none")
    name = linears[-1]
    trunk = copy.deepcopy(model)
    *path, attribute = name.split(".")
    parent = trunk.get_submodule(".".join(path)) if path else trunk
    head = getattr(parent, attribute)
    if num_classes is not None and head.out_features != num_classes:
        raise ValueError(f"the last nn.Linear of {type(model).__name__} ({name!r}) outputs {head.out_features} "
                         f"scores, not num_classes={num_classes}: it cannot be the classifier head")
    setattr(parent, attribute, nn.Identity())
    return trunk, head.in_features, head


class PolicyDraw(NamedTuple):
    """Mixed samples drawn from the generator's policy regions (n = number of mixed pairs).

    Attributes:
        x: (n, ...) mixed inputs ``lam * x1 + (1 - lam) * x2``.
        lam: (n,) float32 mixing coefficients, in ``[start, start + width]``, within [0, 1].
        start: (n,) float32 lower end of each policy region.
        width: (n,) float32 width of each policy region (``start + width <= 1``).
    """

    x: torch.Tensor
    lam: torch.Tensor
    start: torch.Tensor
    width: torch.Tensor


class AdaMixup(nn.Module):
    """Classifier + policy-region generator + intrusion discriminator (see the module docstring).

    Args:
        model: a name of :data:`localmixup.paper.models.MODELS` (``"resnet18"``, ``"densenet_bc"``,
            ``"lenet5"``), or a factory called as
            ``model(num_classes=num_classes, in_channels=in_channels, **model_options)`` that
            returns a fresh classifier ending with an ``nn.Linear`` head (e.g. a model class).
            It is built twice: once for the classifier, once (independent initialisation, from
            torch's global RNG: seed it first) for the generator's trunk.
        num_classes: number of classes, integer >= 2.
        in_channels: input channels (for a custom factory, whatever it takes), integer >= 1.
        split_batch: hold the second half of each batch out of the mixing, as extra real
            samples for the discriminator (official code; see the module docstring).
        weighting: ``"separate"``: ``loss = mixing CE + original CE + intrusion CE``;
            ``"official"``: ``loss = (mixing CE + original CE) / 2 + intrusion CE``, the official
            code's one mean over the mixed and original samples (see the module docstring).
        head_init_std: the policy and discriminator heads' weights start from ``N(0, head_init_std)``
            and their biases from 0 (official code: 1e-3, so every policy starts at
            ``start = width = 1/3``); None keeps PyTorch's default ``nn.Linear`` initialisation.
            With 1e-3 the discriminator's two stacked linear layers start at a saddle point
            (each layer's gradient is proportional to the other's tiny weights) and it takes
            many steps to leave it; until then the generator, driven by the mixing CE alone,
            can drift to the degenerate ``lam = 1`` (see the tests).
        validate: check each batch (finite values, label range): switch off in a tuned GPU
            loop, since the checks synchronise the device.
        model_options: constructor options of the backbone (e.g. ``blocks``, ``growth``).

    Attributes:
        trunk, head: the classifier (``forward(x) = head(trunk(x))``); the discriminator shares
            ``trunk``.
        policy_trunk, policy_head: the generator.
        discriminator_head: the discriminator's own layers.
        feature_dim: width F of the trunk's features.
    """

    def __init__(self, model: str | Callable[..., nn.Module], num_classes: int, in_channels: int, *,
                 split_batch: bool = True, weighting: str = "separate", head_init_std: float | None = HEAD_INIT_STD,
                 validate: bool = True, **model_options: Any) -> None:
        super().__init__()
        self.num_classes = check_integer("num_classes", num_classes, low=2)
        in_channels = check_integer("in_channels", in_channels, low=1)
        if isinstance(model, str):
            if model not in MODELS:
                listed = ", ".join(repr(m) for m in MODELS)
                raise ValueError(f"model must be one of {listed} or a model factory, got {model!r}")
            factory = lambda: build_model(model, num_classes, in_channels, **model_options)  # noqa: E731
        elif callable(model) and not isinstance(model, nn.Module):
            factory = lambda: model(num_classes=num_classes, in_channels=in_channels, **model_options)  # noqa: E731
        else:
            raise ValueError(f"model must be a model name ({', '.join(MODELS)}) or a factory returning a fresh "
                             f"nn.Module, got {type(model).__name__}")
        self.split_batch = bool(split_batch)
        self.weighting = check_choice("weighting", weighting, ADAMIXUP_WEIGHTINGS)
        self.validate = bool(validate)
        self.trunk, self.feature_dim, self.head = split_model(factory(), self.num_classes)
        self.policy_trunk, policy_dim, _ = split_model(factory(), self.num_classes)
        if policy_dim != self.feature_dim:
            raise ValueError(f"the model factory built two networks with different feature sizes "
                             f"({self.feature_dim} and {policy_dim})")
        self.policy_head = nn.Sequential(nn.Linear(self.feature_dim, POLICY_HIDDEN), nn.Linear(POLICY_HIDDEN, 3))
        self.discriminator_head = nn.Sequential(nn.Linear(self.feature_dim, DISCRIMINATOR_HIDDEN),
                                                nn.Linear(DISCRIMINATOR_HIDDEN, 2))
        if head_init_std is not None:
            head_init_std = check_real("head_init_std", head_init_std, low=0.0, low_open=True)
            for layer in (*self.policy_head, *self.discriminator_head):
                nn.init.normal_(layer.weight, std=head_init_std)
                nn.init.zeros_(layer.bias)

    # --- the three parts --------------------------------------------------------------------

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier-trunk features, (B, feature_dim)."""
        out = self.trunk(x)
        if out.ndim != 2 or out.shape[1] != self.feature_dim:
            raise ValueError(f"the classifier trunk must return (B, {self.feature_dim}) features once its last "
                             f"nn.Linear is removed, got {tuple(out.shape)}: the model's forward does not end "
                             f"with that layer")
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier logits (B, num_classes), for evaluation: the generator and discriminator are unused."""
        return self.head(self.features(x))

    def intrusion_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Discriminator logits (B, 2): column 1 scores "real sample", column 0 "mixed sample"."""
        return self.discriminator_head(self.features(x))

    def policy(self, gate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy regions ``(start, width)``, two float32 (n,) tensors, from the generator's input
        ``gate = (m1 * x1 + m2 * x2) / 2``; ``start, width >= 0`` and ``start + width <= 1``."""
        scores = self.policy_head(self.policy_trunk(gate)).float()
        p = scores.softmax(dim=1)
        return p[:, 0], p[:, 1]

    def mix(self, x1: torch.Tensor, x2: torch.Tensor, generator: torch.Generator | None = None) -> PolicyDraw:
        """Mix ``x1`` with ``x2`` (both (n, ...)) with per-example ``lam`` drawn from the generator's
        policy regions. Random numbers (noise masks, uniforms) come from ``generator`` on its
        device (torch's global RNG on ``x1``'s device if None) and are moved to ``x1``'s device."""
        if x1.shape != x2.shape:
            raise ValueError(f"x1 and x2 must have the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}")
        device = _random_device(generator, x1)
        m1 = _truncated_normal(x1.shape, generator, device).to(x1.device, x1.dtype)
        m2 = _truncated_normal(x2.shape, generator, device).to(x1.device, x1.dtype)
        start, width = self.policy((m1 * x1 + m2 * x2) / 2)
        u = torch.rand(x1.shape[0], generator=generator, device=device).to(x1.device)
        lam = start + u * width
        w = lam.view(-1, *([1] * (x1.ndim - 1))).to(x1.dtype)
        return PolicyDraw(x2 + w * (x1 - x2), lam, start, width)

    # --- one training step ------------------------------------------------------------------

    def loss(self, x: torch.Tensor, y: torch.Tensor,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The joint loss of one training step on batch ``x`` (B, ...) with labels ``y``.

        Args:
            x: float inputs, B >= 2 (a pair needs two samples).
            y: (B,) class indices in [0, num_classes - 1], or (B, num_classes) soft targets.
            generator: torch generator for the permutation, noise masks and uniforms (its
                device is used for the draws); None uses torch's global RNG.

        Returns:
            ``(loss, stats)``: ``loss`` (:meth:`~.AdaMixup.total` of the terms: ``mixing_ce +
            original_ce + intrusion_ce``, or with ``weighting="official"``
            ``(mixing_ce + original_ce) / 2 + intrusion_ce``), a scalar with
            gradients for every part; ``stats`` holds detached 0-dim float32 tensors (no device
            synchronisation; ``float()`` them to log): ``loss``, ``mixing_ce``, ``original_ce``,
            ``intrusion_ce``, ``lam_mean``, ``start_mean``, ``width_mean`` and
            ``discriminator_accuracy`` (balanced: the mean of its accuracy on the real samples and
            on the mixed samples of this step, so chance is 0.5).
        """
        terms, stats = self.terms(x, y, generator)
        return self.total(terms), stats

    def total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss from the three terms of :meth:`~.AdaMixup.terms`, weighted by ``self.weighting``."""
        classification = terms["mixing_ce"] + terms["original_ce"]
        if self.weighting == "official":
            classification = classification / 2  # one mean over n mixed and n original samples
        return classification + terms["intrusion_ce"]

    def terms(self, x: torch.Tensor, y: torch.Tensor,
              generator: torch.Generator | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The three terms of :meth:`~.AdaMixup.loss`, each a scalar that keeps its graph:
        ``{"mixing_ce", "original_ce", "intrusion_ce"}``, and the detached ``stats``."""
        size = check_batch(x, y) if self.validate else x.shape[0]
        if size < 2:
            raise ValueError(f"x must hold at least 2 samples for AdaMixup (a pair needs two), got {size}")
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
        target = self._targets(y)
        n = (size + 1) // 2 if self.split_batch else size
        device = _random_device(generator, x)
        partner = to_device(torch.randperm(size, generator=generator, device=device), x.device)[:n]
        draw = self.mix(x[:n], x[partner], generator)
        lam = draw.lam[:, None]
        soft = lam * target[:n] + (1.0 - lam) * target[partner]

        features = self.features(torch.cat([draw.x, x]))  # [x_mix (n), x_orig (n), x_unseen (size - n)]
        logits = self.head(features[: 2 * n])
        mixing_ce = per_sample_cross_entropy(logits[:n], soft).mean()
        original_ce = per_sample_cross_entropy(logits[n:], target[:n]).mean()
        scores = self.discriminator_head(features).float()
        real = torch.ones(n + size, dtype=torch.long, device=x.device)
        real[:n] = 0
        intrusion_ce = F.cross_entropy(scores, real)

        terms = {"mixing_ce": mixing_ce, "original_ce": original_ce, "intrusion_ce": intrusion_ce}
        with torch.no_grad():
            correct = (scores.argmax(dim=1) == real).float()
            stats = {
                "loss": self.total(terms).detach(), "mixing_ce": mixing_ce.detach(),
                "original_ce": original_ce.detach(), "intrusion_ce": intrusion_ce.detach(),
                "lam_mean": draw.lam.mean().detach(), "start_mean": draw.start.mean().detach(),
                "width_mean": draw.width.mean().detach(),
                "discriminator_accuracy": (correct[:n].mean() + correct[n:].mean()) / 2,
            }
        return terms, stats

    def _targets(self, y: torch.Tensor) -> torch.Tensor:
        """Float (B, C) targets: soft targets as given, class indices one-hot encoded."""
        if y.is_floating_point():
            if y.ndim != 2 or y.shape[1] != self.num_classes:
                raise ValueError(f"soft targets y must have shape (B, {self.num_classes}), got {tuple(y.shape)}")
            return y.float()
        if y.ndim != 1:
            raise ValueError(f"y must be (B,) class indices or (B, {self.num_classes}) soft targets, got {tuple(y.shape)}")
        if self.validate and int(y.max()) >= self.num_classes:
            raise ValueError(f"labels must be in [0, {self.num_classes - 1}] for num_classes={self.num_classes}, "
                             f"got {int(y.max())}")
        # scatter_ never checks the range on the host, so it does not synchronise the device
        return torch.zeros(y.shape[0], self.num_classes, device=y.device).scatter_(1, y[:, None].long(), 1.0)

    # --- bookkeeping ------------------------------------------------------------------------

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of each part.

        ``classifier`` = trunk + head (the backbone alone, what a baseline trains);
        ``generator`` = its own trunk + policy head; ``discriminator`` = its head only (its trunk
        is the classifier's); ``total`` = their sum = every parameter of the module.
        """
        classifier = count_parameters(self.trunk) + count_parameters(self.head)
        generator = count_parameters(self.policy_trunk) + count_parameters(self.policy_head)
        discriminator = count_parameters(self.discriminator_head)
        return {"classifier": classifier, "generator": generator, "discriminator": discriminator,
                "total": classifier + generator + discriminator}


def adamixup_step(module: AdaMixup, optimizer: Any, x: torch.Tensor, y: torch.Tensor,
                  generator: torch.Generator | None = None,
                  totals: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """One eager optimisation step of AdaMixup; returns the loss (a detached scalar tensor, not
    synchronised), like ``localmixup.paper.training.step.eager_step``.

    ``optimizer`` (anything with ``zero_grad()`` and ``step()``, e.g. ``train.SGD`` or a
    ``torch.optim`` optimiser) must hold ``module.parameters()``: classifier, generator and
    discriminator are optimised jointly. On CUDA the forward runs under bf16 autocast (the
    losses and the policy softmax are computed in float32); on the CPU in float32.

    ``totals``, if given, is a dict to which this step's ``stats`` (see :meth:`AdaMixup.terms`)
    are added key by key, as device tensors (no synchronisation): divide by the number of steps
    to get per-epoch means of ``lam_mean``, ``discriminator_accuracy``, etc.
    """
    optimizer.zero_grad()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        loss, stats = module.loss(x, y, generator)
    loss.backward()
    optimizer.step()
    if totals is not None:
        for key, value in stats.items():
            totals[key] = totals[key] + value if key in totals else value.clone()
    return loss.detach()


def _random_device(generator: torch.Generator | None, x: torch.Tensor) -> torch.device:
    return generator.device if generator is not None else x.device


_LOW = 0.5 * (1.0 + math.erf(-2.0 / math.sqrt(2.0)))  # standard normal CDF at -2


def _truncated_normal(shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard normal truncated to [-2, 2] (TensorFlow's ``truncated_normal``), by inverse CDF."""
    u = torch.rand(shape, generator=generator, device=device)
    p = _LOW + (1.0 - 2.0 * _LOW) * u
    return (math.sqrt(2.0) * torch.erfinv(2.0 * p - 1.0)).clamp_(-2.0, 2.0)


__all__ = ["ADAMIXUP_WEIGHTINGS", "AdaMixup", "PolicyDraw", "adamixup_step", "split_model"]
