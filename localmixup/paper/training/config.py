"""What defines one image-classification run: :class:`TrainConfig`, checked when it is built."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from localmixup.paper.adamixup.method import ADAMIXUP_WEIGHTINGS
from localmixup.decay import RULES
from localmixup.mixing import PAIRINGS, LocalMixup
from localmixup.rng import Source
from localmixup.paper.data import spec
from localmixup.paper.models import MODELS, model_class
from localmixup.checks import check_choice, check_integer, check_real, check_seed

METHODS = ("baseline", "mixup", "local", "adamixup")
SCHEDULES = ("step", "multistep")
#: The locality graphs of the image trainer: the exponential decay W = exp(-decay D) of the paper's images.
IMAGE_GRAPHS = ("exp",)
#: Input side (pixels) of the networks that accept one size only.
FIXED_SIDE = {"lenet5": 32}


@dataclass
class TrainConfig:
    """Everything that defines one run (JSON-serialisable through :meth:`to_dict`).

    ``decay`` is the rate of the exponential locality graph ``W = exp(-decay D)`` (D: Euclidean
    distance between normalised images; ``method="local"`` only); ``decay_rule`` says how it was
    chosen: None (given), or the rule of :func:`localmixup.decay.auto_decay` that computed it
    from the training split (see :func:`~localmixup.paper.training.automatic_decay.automatic_decay`).
    ``alpha`` is the parameter of the Beta(alpha, alpha) law of the mixing coefficient lambda
    (Mixup and Local Mixup). ``adamixup_weighting`` (``method="adamixup"`` only; None: the
    module's default) is :class:`~localmixup.paper.adamixup.method.AdaMixup`'s ``weighting``. The learning
    rate follows ``schedule`` (see :func:`~localmixup.paper.training.optim.lr_at`). ``train_size`` /
    ``test_size`` (None = all) take a fixed random subset, the same for every seed and method;
    with ``subset_seed`` (an integer in [0, 2**64), with ``train_size``) the training subset is instead
    stratified (the same count of every class) and drawn from that seed: the studies across
    training-set sizes set it to the run's seed, so that every method of a seed trains on the same
    images and the seeds span draws of the data.
    ``augment`` None means the dataset's default (crop + flip for CIFAR). ``pad`` zero-pads every
    image by that many pixels on each side (2 turns 28x28 Fashion-MNIST into LeNet-5's 32x32).

    Every field is checked here: a bad value raises ``ValueError`` naming the field and the
    accepted range.
    """

    dataset: str
    method: str
    seed: int = 0
    profile: str = "custom"
    model: str = "densenet_bc"
    model_options: dict[str, Any] = field(default_factory=dict)
    graph: str = "exp"
    decay: float | None = None
    decay_rule: str | None = None
    alpha: float = 1.0
    pairing: str = "permutation"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "step"
    step_size: int = 10
    gamma: float = 0.1
    milestones: tuple[int, ...] = ()
    epochs: int = 1
    batch_size: int = 64
    train_size: int | None = None
    subset_seed: int | None = None
    test_size: int | None = None
    augment: bool | None = None
    pad: int = 0
    eval_batch: int = 1000
    adamixup_weighting: str | None = None

    def __post_init__(self) -> None:
        s = spec(self.dataset)
        check_choice("method", self.method, METHODS)
        check_seed("seed", self.seed)
        if not isinstance(self.profile, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*", self.profile):
            raise ValueError(f"profile must be a plain name (letters, digits, '_', '.', '+', '-'; a folder of the "
                             f"results), got {self.profile!r}")
        check_choice("model", self.model, MODELS)
        self._check_model_options()
        check_choice("graph", self.graph, IMAGE_GRAPHS)
        if self.method == "local":
            if self.decay is None:
                raise ValueError("decay (the rate of the exponential locality graph, a real number in [0, inf)) is "
                                 "needed for method='local'")
            check_real("decay", self.decay, low=0.0, high=math.inf, high_open=True)
        for name, method in (("decay", "local"), ("decay_rule", "local"), ("adamixup_weighting", "adamixup")):
            if self.method != method and getattr(self, name) is not None:
                raise ValueError(f"{name} applies to method={method!r} only (got method={self.method!r}, "
                                 f"{name}={getattr(self, name)!r})")
        if self.decay_rule is not None:
            check_choice("decay_rule", self.decay_rule, RULES)
        if self.adamixup_weighting is not None:
            check_choice("adamixup_weighting", self.adamixup_weighting, ADAMIXUP_WEIGHTINGS)
        check_real("alpha", self.alpha, low=0.0, low_open=True, high=math.inf, high_open=True)
        check_choice("pairing", self.pairing, PAIRINGS)
        check_real("lr", self.lr, low=0.0, low_open=True, high=math.inf, high_open=True)
        check_real("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_real("weight_decay", self.weight_decay, low=0.0, high=math.inf, high_open=True)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_integer("step_size", self.step_size, low=1)
        check_real("gamma", self.gamma, low=0.0, low_open=True, high=math.inf, high_open=True)
        if isinstance(self.milestones, (str, bytes)) or not hasattr(self.milestones, "__iter__"):
            raise ValueError(f"milestones must be a sequence of increasing epochs >= 1, got {self.milestones!r}")
        self.milestones = tuple(check_integer("milestones", m, low=1) for m in self.milestones)
        if list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"milestones must be strictly increasing epochs >= 1, got {list(self.milestones)}")
        check_integer("epochs", self.epochs, low=1)
        check_integer("batch_size", self.batch_size, low=2)
        for name, total in (("train_size", s.sizes[0]), ("test_size", s.sizes[1])):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), low=1, high=total)
        if self.subset_seed is not None:
            check_seed("subset_seed", self.subset_seed)
            if self.train_size is None:
                raise ValueError("subset_seed draws a training subset: it needs train_size (an integer in "
                                 f"[1, {s.sizes[0]}]), got train_size=None")
        train = s.sizes[0] if self.train_size is None else self.train_size
        if self.batch_size > train:
            raise ValueError(f"batch_size must be an integer in [2, {train}] (the training images), got {self.batch_size}")
        if self.augment is not None and not isinstance(self.augment, bool):
            raise ValueError(f"augment must be None (the dataset's default), True or False, got {self.augment!r}")
        check_integer("pad", self.pad, low=0)
        side = FIXED_SIDE.get(self.model)
        if side is not None and s.shape[1] + 2 * self.pad != side:
            need = (side - s.shape[1]) / 2
            hint = f": pass pad={int(need)}" if need >= 0 and need.is_integer() else ""
            raise ValueError(f"model {self.model!r} needs {side}x{side} inputs; dataset {self.dataset!r} with pad="
                             f"{self.pad} gives {s.shape[1] + 2 * self.pad}x{s.shape[2] + 2 * self.pad}{hint}")
        check_integer("eval_batch", self.eval_batch, low=1)

    def _check_model_options(self) -> None:
        if not isinstance(self.model_options, dict):
            raise ValueError(f"model_options must be a dict of the model's constructor options, got {self.model_options!r}")
        accepted = [n for n in inspect.signature(model_class(self.model)).parameters if n not in ("num_classes", "in_channels")]
        unknown = sorted(set(self.model_options) - set(accepted))
        if unknown:
            raise ValueError(f"model_options for model {self.model!r} accepts {', '.join(accepted) or 'nothing'}; "
                             f"got unknown {', '.join(map(str, unknown))}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the network sees (after ``pad``)."""
        c, h, w = spec(self.dataset).shape
        return c, h + 2 * self.pad, w + 2 * self.pad

    @property
    def num_classes(self) -> int:
        """Number of classes of the dataset (outputs of the network)."""
        return spec(self.dataset).num_classes

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values (``milestones`` as a list)."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """The configuration of a record's ``config`` (see :meth:`to_dict`)."""
        return cls(**d)

    @classmethod
    def as_recorded(cls, d: dict[str, Any]) -> dict[str, Any]:
        """A record's ``config`` with the fields added since it was written at their defaults (how
        it trained), as JSON values: what to compare with ``to_dict()`` of the run asked for. A
        dict that is no valid configuration is returned as it is (it then matches nothing)."""
        try:
            return json.loads(json.dumps(cls.from_dict(d).to_dict()))
        except (TypeError, ValueError):
            return d

    def mixer(self, generator: Source = None) -> LocalMixup | None:
        """The core's batch transform for this method, drawing from ``generator`` (a
        :class:`~localmixup.rng.Streams` of R seeds mixes R runs at once); None for the baseline and
        for AdaMixup, whose mixing is learned inside :class:`~localmixup.paper.adamixup.method.AdaMixup`."""
        if self.method in ("baseline", "adamixup"):
            return None
        if self.method == "mixup":
            return LocalMixup("none", alpha=self.alpha, pairing="permutation", generator=generator, validate=False)
        return LocalMixup(self.graph, decay=self.decay, alpha=self.alpha, pairing=self.pairing, generator=generator,
                          validate=False)

    @property
    def mixing(self) -> tuple[Any, ...]:
        """What decides how this run mixes (runs that share it can draw from one batched mixer)."""
        return self.method, self.graph, self.decay, self.alpha, self.pairing
