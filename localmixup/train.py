"""Training one image-classification run of the paper's Table 1 from a configuration.

Methods: ``baseline`` (plain cross-entropy), ``mixup`` (``LocalMixup("none",
pairing="permutation")`` + :func:`mixup_loss`) and ``local`` (``LocalMixup(graph, alpha=...)`` +
:func:`mixup_loss`). On CUDA the step runs under bf16 autocast with channels-last tensors and,
by default, is captured once in a CUDA graph and replayed (the mixing itself runs eagerly
before each replay); on the CPU everything is float32 and eager.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import torch
import torch.nn.functional as F

from .data import DeviceLoader, load_arrays, spec, subset
from .loss import mixup_loss
from .mixing import MixedBatch, LocalMixup
from .models import build_model, count_parameters
from .provenance import default_device, environment
from .validation import check_choice, check_integer, check_real

METHODS = ("baseline", "mixup", "local")
SCHEDULES = ("step", "multistep")


@dataclass
class TrainConfig:
    """Everything that defines one run (JSON-serialisable through :func:`dataclasses.asdict`).

    ``alpha`` is the decay rate of the exponential locality graph ``W = exp(-alpha D)`` (only for
    ``method="local"``); ``mix_alpha`` the Beta(mix_alpha, mix_alpha) law of lambda. The learning
    rate follows ``schedule``: ``"step"`` multiplies it by ``gamma`` every ``step_size`` epochs,
    ``"multistep"`` at each epoch of ``milestones``. ``train_size``/``test_size`` (None = all)
    take a fixed random subset, the same for every seed and method. ``augment`` None means the
    dataset's default (crop + flip for CIFAR).
    """

    dataset: str
    method: str
    seed: int = 0
    profile: str = "custom"
    model: str = "densenet_bc"
    model_options: dict[str, Any] = field(default_factory=dict)
    graph: str = "exp"
    alpha: float | None = None
    mix_alpha: float = 1.0
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
    test_size: int | None = None
    augment: bool | None = None
    eval_batch: int = 1000

    def __post_init__(self) -> None:
        spec(self.dataset)
        check_choice("method", self.method, METHODS)
        check_integer("seed", self.seed, low=0)
        check_integer("epochs", self.epochs, low=1)
        check_integer("batch_size", self.batch_size, low=2)
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_choice("schedule", self.schedule, SCHEDULES)
        self.milestones = tuple(self.milestones)
        if self.method == "local":
            if self.alpha is None:
                raise ValueError("alpha (the exp-decay rate of the locality graph) is needed for method='local'")
            check_real("alpha", self.alpha, low=0.0)
        for name in ("train_size", "test_size"):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), low=1)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return cls(**d)

    def lr_at(self, epoch: int) -> float:
        """Learning rate during epoch ``epoch`` (0-based)."""
        if self.schedule == "step":
            return self.lr * self.gamma ** (epoch // self.step_size)
        return self.lr * self.gamma ** sum(epoch >= m for m in self.milestones)

    def mixer(self, generator: torch.Generator | None = None) -> LocalMixup | None:
        """The core's batch transform for this method (None for the baseline)."""
        if self.method == "baseline":
            return None
        if self.method == "mixup":
            return LocalMixup("none", mix_alpha=self.mix_alpha, pairing="permutation", generator=generator, validate=False)
        return LocalMixup(self.graph, alpha=self.alpha, mix_alpha=self.mix_alpha, pairing=self.pairing, generator=generator, validate=False)


class SGD:
    """SGD with momentum and L2 weight decay, the update of ``torch.optim.SGD`` (dampening 0,
    no Nesterov): ``g += wd p; buf = momentum buf + g; p -= lr buf``.

    The learning rate lives in a device tensor (``set_lr``), so a CUDA graph that captured
    :meth:`step` follows the schedule without re-capture; torch's SGD keeps it a Python float.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr = torch.tensor(float(lr), device=self.params[0].device)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.buffers = [torch.zeros_like(p) for p in self.params]

    def set_lr(self, lr: float) -> None:
        self.lr.fill_(lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if self.weight_decay:
            grads = torch._foreach_add(grads, self.params, alpha=self.weight_decay)
        if self.momentum:
            torch._foreach_mul_(self.buffers, self.momentum)
            torch._foreach_add_(self.buffers, grads)
            grads = self.buffers
        torch._foreach_sub_(self.params, torch._foreach_mul(grads, self.lr))

    def reset(self) -> None:
        for b in self.buffers:
            b.zero_()


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _one_hot(y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # scatter never checks the label range on the host, so it does not synchronise the GPU
    return out.zero_().scatter_(1, y[:, None], 1.0)


class CapturedStep:
    """One training step (forward, Eq. (2) loss, backward, SGD update) captured in a CUDA graph.

    Calling it copies a mixed batch into static buffers and replays the graph: one launch per
    step instead of hundreds. Targets enter as one-hot rows (the loss's soft-target branch,
    which needs no host check), lambda as a device scalar. The warm-up iterations needed before
    capture are undone (parameters, BatchNorm buffers and momentum restored), so the run starts
    from exactly the initial weights.
    """

    def __init__(self, model: torch.nn.Module, optimizer: SGD, x_shape: tuple[int, ...], num_classes: int,
                 device: torch.device, channels_last: bool = True) -> None:
        self.model, self.optimizer = model, optimizer
        b = x_shape[0]
        self.x = torch.zeros(x_shape, device=device)
        if channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y_a = torch.zeros(b, num_classes, device=device)
        self.y_b = torch.zeros(b, num_classes, device=device)
        self.lam = torch.ones((), device=device)
        self.weight = torch.ones(b, device=device)
        saved = [t.detach().clone() for t in chain(model.parameters(), model.buffers())]
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step()
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = self._step()
        with torch.no_grad():
            for t, s in zip(chain(model.parameters(), model.buffers()), saved):
                t.copy_(s)
        optimizer.reset()

    def _step(self) -> torch.Tensor:
        self.optimizer.zero_grad()
        with _autocast(self.x.device):
            logits = self.model(self.x)
        loss = mixup_loss(logits, MixedBatch(self.x, self.y_a, self.y_b, self.lam, self.weight))
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def __call__(self, batch: MixedBatch) -> torch.Tensor:
        self.x.copy_(batch.x)
        _one_hot(batch.y_a, self.y_a)
        _one_hot(batch.y_b, self.y_b)
        self.lam.fill_(batch.lam)
        self.weight.copy_(batch.weight)
        self.graph.replay()
        return self.loss


def eager_step(model: torch.nn.Module, optimizer: SGD, x: torch.Tensor, y: torch.Tensor, mixer: LocalMixup | None) -> torch.Tensor:
    """One eager training step; returns the loss (a detached scalar tensor, not synchronised)."""
    optimizer.zero_grad()
    if mixer is None:
        with _autocast(x.device):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
    else:
        batch = mixer(x, y)
        with _autocast(x.device):
            logits = model(batch.x)
        loss = mixup_loss(logits, batch)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def test_error(model: torch.nn.Module, loader: DeviceLoader) -> float:
    """Test error in percent of ``model`` (put back in training mode afterwards)."""
    model.eval()
    wrong = torch.zeros((), dtype=torch.int64, device=loader.device)
    for x, y in loader:
        with _autocast(loader.device):
            wrong += (model(x).argmax(1) != y).sum()
    model.train()
    return 100.0 * wrong.item() / loader.x.shape[0]


def prepare(config: TrainConfig, device: torch.device | str | None = None, *, download: bool | None = None):
    """Model, optimiser, loaders and mixer of a run, built from its seed (not trained)."""
    device = torch.device(device) if device is not None else default_device()
    s = spec(config.dataset)
    arrays = load_arrays(config.dataset, download=download)
    x_train, y_train = subset(arrays.x_train, arrays.y_train, config.train_size)
    x_test, y_test = subset(arrays.x_test, arrays.y_test, config.test_size)
    cuda = device.type == "cuda"
    torch.manual_seed(config.seed)  # model initialisation
    model = build_model(config.model, s.num_classes, s.shape[0], **config.model_options).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    data_gen = torch.Generator(device=device).manual_seed(1000 * config.seed + 1)
    mix_gen = torch.Generator().manual_seed(1000 * config.seed + 2)  # on the CPU: lambda is read on the host anyway
    augment = s.augment if config.augment is None else config.augment
    train = DeviceLoader(x_train, y_train, config.batch_size, mean=s.mean, std=s.std, device=device, shuffle=True,
                         augment=augment, drop_last=True, generator=data_gen, channels_last=cuda)
    test = DeviceLoader(x_test, y_test, config.eval_batch, mean=s.mean, std=s.std, device=device, channels_last=cuda)
    if len(train) == 0:
        raise ValueError(f"batch_size={config.batch_size} is larger than the {x_train.shape[0]} training images")
    optimizer = SGD(model.parameters(), config.lr, config.momentum, config.weight_decay)
    return model, optimizer, train, test, config.mixer(mix_gen)


def train_run(config: TrainConfig, device: torch.device | str | None = None, *, fast: bool | None = None,
              progress: bool = False, download: bool | None = None) -> dict[str, Any]:
    """Train one run and return its record (a JSON-serialisable dict).

    Args:
        config: the run.
        device: default CUDA if visible, else CPU.
        fast: capture the step in a CUDA graph (default: on CUDA); ignored on the CPU.
        progress: show a tqdm bar over epochs.
        download: passed to :func:`localmixup.data.load_arrays`.

    Returns:
        ``{"config", "status" ("ok" or "failed"), "failed_epoch" (1-based, or None), "epochs"
        (per epoch: train_loss, test_error_pct, lr, seconds), "final_test_error_pct" (None if
        failed), "train_seconds", "parameters", "fast_path", "environment"}``. A NaN or infinite
        mean training loss stops the run at the end of that epoch and marks it failed.
    """
    from tqdm.auto import tqdm

    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    fast = (device.type == "cuda") if fast is None else (fast and device.type == "cuda")
    model, optimizer, train, test, mixer = prepare(config, device, download=download)
    s = spec(config.dataset)
    step = CapturedStep(model, optimizer, (config.batch_size, *s.shape), s.num_classes, device) if fast else None
    ones = torch.ones(config.batch_size, device=device)

    record: dict[str, Any] = {
        "config": config.to_dict(), "status": "ok", "failed_epoch": None, "epochs": [],
        "final_test_error_pct": None, "parameters": count_parameters(model), "fast_path": fast,
    }
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc=f"{config.dataset} {config.method} seed {config.seed}", unit="epoch",
               leave=False, disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        lr = config.lr_at(epoch)
        optimizer.set_lr(lr)
        total = torch.zeros((), device=device)
        for x, y in train:
            if step is None:
                total += eager_step(model, optimizer, x, y, mixer)
            else:
                batch = mixer(x, y) if mixer is not None else MixedBatch(x, y, y, 1.0, ones)
                total += step(batch)
        train_loss = total.item() / len(train)
        if not math.isfinite(train_loss):
            record.update(status="failed", failed_epoch=epoch + 1)
            record["epochs"].append({"epoch": epoch + 1, "train_loss": train_loss, "test_error_pct": None, "lr": lr,
                                     "seconds": time.perf_counter() - t0})
            break
        error = test_error(model, test)
        record["epochs"].append({"epoch": epoch + 1, "train_loss": train_loss, "test_error_pct": error, "lr": lr,
                                 "seconds": time.perf_counter() - t0})
        bar.set_postfix(loss=f"{train_loss:.3f}", error=f"{error:.2f}%")
    bar.close()
    if record["status"] == "ok":
        record["final_test_error_pct"] = record["epochs"][-1]["test_error_pct"]
    record["train_seconds"] = time.perf_counter() - start
    record["environment"] = environment(device)
    return record


# --- profiles ---------------------------------------------------------------------------------

_QUICK_MODEL = {"blocks": [2, 2, 2, 2], "growth": 8}

PAPER_SETTINGS: dict[str, dict[str, Any]] = {
    "fashion_mnist": dict(model="densenet_bc", lr=0.001, momentum=0.9, weight_decay=5e-4, schedule="step", step_size=10,
                          gamma=0.9, epochs=40, batch_size=64, alpha=5e-4, pairing="permutation", augment=False),
    "cifar10": dict(model="resnet18", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="multistep", milestones=(100, 200, 300),
                    gamma=0.1, epochs=350, batch_size=64, alpha=1e-3, pairing="graph", augment=True),
    "cifar100": dict(model="resnet18", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="multistep", milestones=(100, 200, 300),
                     gamma=0.1, epochs=350, batch_size=64, alpha=1e-3, pairing="graph", augment=True),
    "svhn": dict(model="lenet5", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="multistep", milestones=(20, 30),
                 gamma=0.1, epochs=40, batch_size=64, alpha=1e-3, pairing="graph", augment=False),
    "mnist": dict(model="densenet_bc", lr=0.001, momentum=0.9, weight_decay=5e-4, schedule="step", step_size=10,
                  gamma=0.9, epochs=40, batch_size=64, alpha=5e-4, pairing="permutation", augment=False),
}

# The quick profile: the paper's recipe shrunk to run on a CPU in seconds per run. NOT the paper's protocol.
QUICK_SETTINGS: dict[str, dict[str, Any]] = {
    name: {**settings, "epochs": 4, "train_size": 2000, "test_size": 1000, "lr": 0.02, "schedule": "step", "step_size": 10,
           "gamma": 0.9, "milestones": (),
           **({"model_options": _QUICK_MODEL} if settings["model"] == "densenet_bc" else {})}
    for name, settings in PAPER_SETTINGS.items()
}

PAPER_CHOICES: dict[str, str] = {
    "mix_alpha": "lambda ~ Beta(1, 1) for Mixup and Local Mixup on every dataset: the paper does not print it; 1 is the "
                 "value of the Mixup paper for CIFAR and of the authors' spirals code.",
    "fashion_mnist": "DenseNet-BC 6-12-24-16, growth 12, stem 1->24; SGD lr 0.001, momentum 0.9, wd 5e-4, StepLR(10, 0.9), "
                     "40 epochs, batch 64, normalise (0.5, 0.5), no augmentation; Local Mixup: W = exp(-5e-4 ||x_i - x_pi(i)||) "
                     "on normalised pixels with permutation pairing, loss normalised by the sum of weights (authors' script, "
                     "with the weight actually applied).",
    "cifar10": "ResNet-18 (3x3 stem, no max-pool), batch 64, crop 4 + flip, SGD momentum 0.9, wd 5e-4, lr 0.1/0.01/0.001/0.0001 "
               "for 100/100/100/50 epochs (authors' code); Local Mixup draws the partner from the row of exp(-1e-3 D) "
               "(graph pairing, as the authors' code).",
    "cifar100": "Not stated by the paper: the CIFAR-10 protocol unchanged (same network, schedule, alpha = 1e-3 and graph "
                "pairing), with the CIFAR-100 channel statistics; 100 output classes.",
    "svhn": "No SVHN code exists: LeNet-5 (ReLU, max-pool) on the 73,257 'train' images (not 'extra'), batch 64, SGD lr 0.01, "
            "momentum 0.9, wd 5e-4, 40 epochs with lr x0.1 at epochs 20 and 30 (LeNet converges in a few tens of epochs), no "
            "augmentation (flips change digits), SVHN channel statistics; alpha = 1e-3 with graph pairing as for CIFAR "
            "(same 3x32x32 inputs, so the same distance scale).",
    "last_batch": "The last incomplete batch of each epoch is dropped (e.g. 60000 = 937 x 64 + 32 on Fashion-MNIST) so that every "
                  "step has the same shape and can replay one CUDA graph; the order is reshuffled every epoch.",
    "evaluation": "Test error of the last epoch (no early stopping, no model selection on the test set).",
}


def profile_config(profile: str, dataset: str, method: str, seed: int = 0, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a profile (``"paper"`` or ``"quick"``) for one run.

    ``overrides`` replace settings (e.g. ``epochs=1``, ``alpha=0.1``); ``alpha`` is dropped for
    methods other than ``local``.
    """
    check_choice("profile", profile, ("paper", "quick"))
    spec(dataset)
    settings = dict((PAPER_SETTINGS if profile == "paper" else QUICK_SETTINGS)[dataset])
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValueError(f"unknown training settings {sorted(unknown)}")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if method != "local":
        settings["alpha"] = None
    return TrainConfig(dataset=dataset, method=method, seed=seed, profile=profile, **settings)
