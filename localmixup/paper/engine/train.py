"""Training one image-classification run of the paper's Table 1 from a configuration.

Methods: ``baseline`` (plain cross-entropy), ``mixup`` (``LocalMixup("none",
pairing="permutation")`` + :func:`~.mixup_loss`), ``local`` (``LocalMixup(graph, alpha=...)`` +
:func:`~.mixup_loss`) and ``adamixup`` (:class:`~localmixup.baselines.adamixup.AdaMixup` built on the
configured backbone, trained by :func:`~localmixup.baselines.adamixup.adamixup_step`). On CUDA the step
runs under bf16 autocast with channels-last tensors and, by default, is captured once in a CUDA
graph and replayed (the mixing itself runs eagerly before each replay; AdaMixup always runs
eagerly: its mixing is part of the differentiated graph); on the CPU everything is float32 and
eager.

Every record also says what one training step costs in memory (:class:`~.SavedTensorBytes`,
and the CUDA allocator's peak on a GPU); see :func:`~.train_run`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from localmixup.baselines.adamixup import AdaMixup, adamixup_step
from localmixup.paper.engine.checkpoints import Checkpoint, restore_training_state, training_state
from localmixup.paper.data import DeviceLoader, load_arrays, spec, subset
from localmixup.loss import mixup_loss
from localmixup.mixing import MixedBatch, LocalMixup
from localmixup.paper.models import build_model, count_parameters
from localmixup.paper.provenance import default_device, environment
from localmixup.validation import check_choice, check_integer, check_real

METHODS = ("baseline", "mixup", "local", "adamixup")
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
        """The core's batch transform for this method (None for the baseline and for AdaMixup, whose
        mixing is learned inside :class:`~localmixup.baselines.adamixup.AdaMixup`)."""
        if self.method in ("baseline", "adamixup"):
            return None
        if self.method == "mixup":
            return LocalMixup("none", alpha=self.mix_alpha, pairing="permutation", generator=generator, validate=False)
        return LocalMixup(self.graph, decay=self.alpha, alpha=self.mix_alpha, pairing=self.pairing, generator=generator, validate=False)


class SGD:
    """SGD with momentum and L2 weight decay, the update of ``torch.optim.SGD`` (dampening 0,
    no Nesterov): ``g += wd p; buf = momentum buf + g; p -= lr buf``.

    The learning rate lives in a device tensor (``set_lr``), so a CUDA graph that captured
    :meth:`~.step` follows the schedule without re-capture; torch's SGD keeps it a Python float.
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


def device_autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op context elsewhere (the CPU trains in float32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _one_hot(y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # scatter never checks the label range on the host, so it does not synchronise the GPU
    return out.zero_().scatter_(-1, y[..., None], 1.0)


def model_loss(model, batch: MixedBatch) -> torch.Tensor:
    """Eq. (2) loss of ``model`` on a mixed batch, the forward under bf16 autocast on CUDA; no host check."""
    with device_autocast(batch.x.device):
        logits = model(batch.x)
    return mixup_loss(logits, batch, validate=False)


def optimiser_step(loss_of, optimizer: SGD, batch: MixedBatch) -> torch.Tensor:
    """One update on ``batch``: the gradient of ``loss_of(batch)`` (summed, if it holds one loss per
    run), then ``optimizer.step()``; returns the detached loss (not synchronised)."""
    optimizer.zero_grad()
    loss = loss_of(batch)
    loss.sum().backward()
    optimizer.step()
    return loss.detach()


class CapturedStep:
    """One training step (forward, Eq. (2) loss, backward, SGD update) captured in a CUDA graph.

    Calling it copies a mixed batch into static buffers and replays the graph: one launch per
    step instead of hundreds. Targets enter as one-hot rows (the loss's soft-target branch,
    which needs no host check), lambda as a device tensor. The warm-up iterations needed before
    capture are undone (``state``, typically parameters and BatchNorm buffers, and momentum
    restored), so the run starts from exactly the initial weights.

    Args:
        loss_of: the loss of a :class:`~.MixedBatch` (a scalar, or one loss per run for a stack
            of runs; their sum is differentiated).
        optimizer: the :class:`~.SGD` over the trained parameters.
        state: every tensor the step modifies, restored after the warm-up; the static buffers
            take the dtype of the first one.
        x_shape: shape of one batch of inputs (B, ...).
        runs: None for one run; R for R stacked runs, whose batches enter as (R, B, ...) inputs,
            (R,) lambdas and (R, B) weights.
        channels_last: keep the static input channels-last (one run only).
        capture: False runs the same steps (warm-up and restore included) eagerly from the static
            buffers, on any device: what the graph replays, checkable on a CPU.
    """

    def __init__(self, loss_of, optimizer: SGD, state, x_shape: tuple[int, ...], num_classes: int,
                 device: torch.device, *, runs: int | None = None, channels_last: bool = True,
                 capture: bool = True) -> None:
        self.loss_of, self.optimizer = loss_of, optimizer
        state = list(state)
        dtype = state[0].dtype
        lead = () if runs is None else (runs,)
        b = x_shape[0]
        self.x = torch.zeros(*lead, *x_shape, device=device, dtype=dtype)
        if channels_last and runs is None:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y_a = torch.zeros(*lead, b, num_classes, device=device, dtype=dtype)
        self.y_b = torch.zeros(*lead, b, num_classes, device=device, dtype=dtype)
        self.lam = torch.ones(lead, device=device, dtype=dtype)
        self.weight = torch.ones(*lead, b, device=device, dtype=dtype)
        saved = [t.detach().clone() for t in state]
        self.graph = None
        if capture:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._step()
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.loss = self._step()
        else:
            for _ in range(3):
                self._step()
        with torch.no_grad():
            for t, s in zip(state, saved):
                t.copy_(s)
        optimizer.reset()

    @classmethod
    def for_model(cls, model: torch.nn.Module, optimizer: SGD, x_shape: tuple[int, ...], num_classes: int,
                  device: torch.device, *, capture: bool = True) -> "CapturedStep":
        """The captured step of one run of ``model`` (its parameters and buffers are the state)."""
        return cls(lambda b: model_loss(model, b), optimizer, chain(model.parameters(), model.buffers()), x_shape,
                   num_classes, device, capture=capture)

    def _step(self) -> torch.Tensor:
        return optimiser_step(self.loss_of, self.optimizer, MixedBatch(self.x, self.y_a, self.y_b, self.lam, self.weight))

    def __call__(self, batch: MixedBatch) -> torch.Tensor:
        self.x.copy_(batch.x)
        _one_hot(batch.y_a, self.y_a)
        _one_hot(batch.y_b, self.y_b)
        if isinstance(batch.lam, torch.Tensor):
            self.lam.copy_(batch.lam)
        else:
            self.lam.fill_(batch.lam)
        self.weight.copy_(batch.weight)
        if self.graph is None:
            self.loss = self._step()
        else:
            self.graph.replay()
        return self.loss


def eager_step(model: torch.nn.Module, optimizer: SGD, x: torch.Tensor, y: torch.Tensor, mixer: LocalMixup | None) -> torch.Tensor:
    """One eager training step; returns the loss (a detached scalar tensor, not synchronised)."""
    if mixer is not None:
        return optimiser_step(lambda b: model_loss(model, b), optimizer, mixer(x, y))

    def cross_entropy(_) -> torch.Tensor:
        with device_autocast(x.device):
            logits = model(x)
        return F.cross_entropy(logits.float(), y)

    return optimiser_step(cross_entropy, optimizer, None)


@torch.no_grad()
def test_error(model, loader: DeviceLoader, **call: Any) -> float | list[float]:
    """Test error in percent of ``model`` (put back in training mode afterwards); ``call`` is passed
    to the model: a :class:`~.StackedModels` called with ``shared=True`` gives one error per run (a list)."""
    model.train(False)
    wrong = torch.zeros((), dtype=torch.int64, device=loader.device)
    for x, y in loader:
        with device_autocast(loader.device):
            wrong = wrong + (model(x, **call).argmax(-1) != y).sum(-1)
    model.train(True)
    errors = 100.0 * wrong.double() / loader.x.shape[0]
    return errors.item() if errors.ndim == 0 else errors.tolist()


class SavedTensorBytes:
    """Context manager: bytes of the distinct tensor storages that autograd saves for the backward
    pass while it is active (the activations a training step must keep in memory).

    Storages are counted once each (by address), at their full size; those of ``exclude``
    (typically the parameters, resident anyway) are left out. This is a device-independent
    measure of the step's activation memory, deterministic for a given configuration; it is not
    the process's peak memory (allocator caching, gradients, temporaries freed before the
    backward and the optimiser's buffers are not in it).
    """

    def __init__(self, exclude=()) -> None:
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.storages: dict[int, int] = {}

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        try:
            storage = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # tensors without a storage: nothing resident to count
            return t
        if storage.data_ptr() not in self.exclude:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return t

    def __enter__(self) -> "SavedTensorBytes":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def prepare(config: TrainConfig, device: torch.device | str | None = None, *, download: bool | None = None):
    """Model, optimiser, loaders and batch transform of a run, built from its seed (not trained).

    Returns ``(model, optimizer, train, test, transform)``. ``transform`` is the method's
    :class:`~localmixup.mixing.LocalMixup` (``mixup``, ``local``), None (``baseline``), or, for
    ``adamixup``, the ``torch.Generator`` (on ``device``) that :func:`~localmixup.baselines.adamixup.adamixup_step`
    draws the pairs, noise masks and uniforms from; ``model`` is then the whole
    :class:`~localmixup.baselines.adamixup.AdaMixup` module (classifier, generator and discriminator, all
    in ``optimizer``).
    """
    device = torch.device(device) if device is not None else default_device()
    s = spec(config.dataset)
    arrays = load_arrays(config.dataset, download=download)
    x_train, y_train = subset(arrays.x_train, arrays.y_train, config.train_size)
    x_test, y_test = subset(arrays.x_test, arrays.y_test, config.test_size)
    cuda = device.type == "cuda"
    torch.manual_seed(config.seed)  # model initialisation
    if config.method == "adamixup":
        model = AdaMixup(config.model, s.num_classes, s.shape[0], validate=False, **config.model_options).to(device)
    else:
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
    if config.method == "adamixup":
        return model, optimizer, train, test, torch.Generator(device=device).manual_seed(1000 * config.seed + 2)
    return model, optimizer, train, test, config.mixer(mix_gen)


def train_run(config: TrainConfig, device: torch.device | str | None = None, *, fast: bool | None = None,
              progress: bool = False, download: bool | None = None, checkpoint: str | Path | None = None,
              checkpoint_every: float = 60.0) -> dict[str, Any]:
    """Train one run and return its record (a JSON-serialisable dict).

    Args:
        config: the run.
        device: default CUDA if visible, else CPU.
        fast: capture the step in a CUDA graph (default: on CUDA); ignored on the CPU and for
            ``adamixup`` (always eager).
        progress: show a tqdm bar over epochs.
        download: passed to :func:`localmixup.paper.data.load_arrays`.
        checkpoint: file where the run's state is saved at the end of an epoch (at most every
            ``checkpoint_every`` seconds; 0: every epoch) and, if it exists, resumed from: the run
            then continues exactly where it stopped. The caller deletes it once the record is
            safe (see :func:`localmixup.paper.sweep.images.run_one`).

    Returns:
        ``{"config", "status" ("ok" or "failed"), "failed_epoch" (1-based, or None), "epochs"
        (per epoch: train_loss, test_error_pct, lr, seconds — wall-clock of the epoch's training
        and its evaluation), "final_test_error_pct" (None if failed), "train_seconds",
        "parameters" (trainable parameters of everything trained), "fast_path", "memory",
        "environment"}``, and ``"resumed_after_epochs"`` (the epochs after which it was resumed
        from its checkpoint) if it was. A NaN or infinite mean training loss stops the run at
        the end of that epoch and marks it failed.

        ``memory``: ``saved_for_backward_bytes`` (:class:`~.SavedTensorBytes` over the first
        training step; None on the CUDA-graph path, where the step is captured, not run eagerly),
        ``parameter_bytes`` (the parameters; SGD keeps as many bytes again of momentum), and
        ``cuda_peak_allocated_bytes`` (``torch.cuda.max_memory_allocated`` from just before the
        model is built to the end of training, which includes the datasets kept on the GPU;
        None on the CPU, where no comparable allocator statistic exists).

        For ``adamixup`` the record also holds ``parameter_counts`` (``classifier``,
        ``generator``, ``discriminator``, ``total``; see
        :meth:`~localmixup.baselines.adamixup.AdaMixup.parameter_counts`) and, in every epoch entry, the
        epoch means of the step statistics of :meth:`~localmixup.baselines.adamixup.AdaMixup.terms`
        (``lam_mean``, ``alpha_mean``, ``delta_mean``, ``discriminator_accuracy`` (balanced,
        chance = 0.5), ``mixing_ce``, ``original_ce``, ``intrusion_ce``).
    """
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    fast = (device.type == "cuda") if fast is None else (fast and device.type == "cuda")
    ada = config.method == "adamixup"
    fast = fast and not ada
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    model, optimizer, train, test, mixer = prepare(config, device, download=download)
    s = spec(config.dataset)
    step = CapturedStep.for_model(model, optimizer, (config.batch_size, *s.shape), s.num_classes, device) if fast else None
    ones = torch.ones(config.batch_size, device=device)
    saved = None if fast else SavedTensorBytes(exclude=model.parameters())

    record = new_record(config, count_parameters(model), fast)
    if ada:
        record["parameter_counts"] = model.parameter_counts()
    tensors, generators = [*model.parameters(), *model.buffers()], run_generators(train, mixer)
    keeper, first, elapsed, extra = resume(checkpoint, checkpoint_every, [config], device, [record], tensors, optimizer,
                                           generators)
    if first:  # the first step, where the saved tensors are measured, ran before the checkpoint
        saved = None

    def saved_bytes() -> int | None:
        return saved.bytes if saved is not None else extra.get("saved_bytes")

    start = time.perf_counter()
    bar = epoch_bar(f"{config.dataset} {config.method} seed {config.seed}", first, config.epochs, progress)
    for epoch in bar:
        t0 = time.perf_counter()
        lr = config.lr_at(epoch)
        optimizer.set_lr(lr)
        total = torch.zeros((), device=device)
        totals: dict[str, torch.Tensor] = {}
        for i, (x, y) in enumerate(train):
            if ada:
                if saved is not None and epoch == 0 and i == 0:
                    with saved:
                        total += adamixup_step(model, optimizer, x, y, mixer, totals)
                else:
                    total += adamixup_step(model, optimizer, x, y, mixer, totals)
            elif step is None:
                if saved is not None and epoch == 0 and i == 0:
                    with saved:
                        total += eager_step(model, optimizer, x, y, mixer)
                else:
                    total += eager_step(model, optimizer, x, y, mixer)
            else:
                batch = mixer(x, y) if mixer is not None else MixedBatch(x, y, y, 1.0, ones)
                total += step(batch)
        train_loss = total.item() / len(train)
        stats = {k: v.item() / len(train) for k, v in totals.items() if k != "loss"}
        error = test_error(model, test) if math.isfinite(train_loss) else None
        if not add_epoch(record, epoch, train_loss, error, lr, time.perf_counter() - t0, **stats):
            break
        bar.set_postfix(loss=f"{train_loss:.3f}", error=f"{error:.2f}%")
        if epoch + 1 < config.epochs and keeper.due():
            save_checkpoint(keeper, epoch + 1, [record], elapsed + time.perf_counter() - start, tensors, optimizer,
                            generators, saved_bytes=saved_bytes())
    bar.close()
    return close_record(record, elapsed + time.perf_counter() - start, device, saved_bytes(),
                        sum(p.numel() * p.element_size() for p in model.parameters()))


def run_generators(train: DeviceLoader, transform) -> list[torch.Generator]:
    """The random generators a run draws from while it trains: data order and augmentation, then
    mixing (a :class:`~.LocalMixup`'s, or AdaMixup's generator); what a checkpoint must keep."""
    mixing = transform if isinstance(transform, torch.Generator) else getattr(transform, "generator", None)
    return [g for g in (train.generator, mixing) if g is not None]


def resume(checkpoint: str | Path | None, every: float, configs: list[TrainConfig], device: torch.device,
           records: list[dict[str, Any]], tensors: list[torch.Tensor], optimizer: SGD,
           generators: list[torch.Generator]) -> tuple[Checkpoint, int, float, dict[str, Any]]:
    """The :class:`~.Checkpoint` of runs about to train and, if it exists, their restored state (in place;
    records replaced by the saved ones). Returns (the checkpoint, the epoch to start from, the seconds
    already trained, the saved ``extra`` of :func:`~.save_checkpoint`)."""
    keeper = Checkpoint(checkpoint, {"configs": [c.to_dict() for c in configs], "device": device.type}, every)
    state = keeper.load()
    if state is None:
        return keeper, 0, 0.0, {}
    restore_training_state(state, tensors, optimizer.buffers, generators)
    for record, saved in zip(records, state["records"]):
        record.clear()
        record.update(saved)
        record["resumed_after_epochs"] = [*saved.get("resumed_after_epochs", []), state["epoch"]]
    return keeper, state["epoch"], state["elapsed"], state["extra"]


def epoch_bar(description: str, first: int, epochs: int, progress: bool):
    """tqdm bar over the epochs ``first..epochs-1`` (a resumed run starts part-way)."""
    from tqdm.auto import tqdm

    return tqdm(range(first, epochs), desc=description, unit="epoch", leave=False, disable=not progress, total=epochs,
                initial=first)


def save_checkpoint(keeper: Checkpoint, epoch: int, records: list[dict[str, Any]], elapsed: float,
                    tensors: list[torch.Tensor], optimizer: SGD, generators: list[torch.Generator], **extra: Any) -> None:
    """Save the state of runs that have finished ``epoch`` epochs (see :func:`~.resume`)."""
    keeper.save({**training_state(tensors, optimizer.buffers, generators), "epoch": epoch, "records": records,
                 "elapsed": elapsed, "extra": extra})


def new_record(config: TrainConfig, parameters: int, fast: bool) -> dict[str, Any]:
    """The record of a run about to train (see :func:`~.train_run`), before its first epoch."""
    return {"config": config.to_dict(), "status": "ok", "failed_epoch": None, "epochs": [],
            "final_test_error_pct": None, "parameters": parameters, "fast_path": fast}


def add_epoch(record: dict[str, Any], epoch: int, train_loss: float, error: float | None, lr: float, seconds: float,
              **stats: float) -> bool:
    """Append epoch ``epoch`` (0-based) to a record; a non-finite loss marks the run failed. Returns
    whether the run goes on."""
    ok = math.isfinite(train_loss)
    record["epochs"].append({"epoch": epoch + 1, "train_loss": train_loss, "test_error_pct": error if ok else None,
                             "lr": lr, "seconds": seconds, **stats})
    if not ok:
        record.update(status="failed", failed_epoch=epoch + 1)
    return ok


def close_record(record: dict[str, Any], seconds: float, device: torch.device, saved_bytes: int | None,
                 parameter_bytes: int) -> dict[str, Any]:
    """Final error, training time, memory and environment of a finished (or failed) run's record."""
    if record["status"] == "ok":
        record["final_test_error_pct"] = record["epochs"][-1]["test_error_pct"]
    record["train_seconds"] = seconds
    record["memory"] = {
        "saved_for_backward_bytes": saved_bytes,
        "parameter_bytes": parameter_bytes,
        "cuda_peak_allocated_bytes": int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None,
    }
    record["environment"] = environment(device)
    return record


def step_costs(configs: list[TrainConfig], device: torch.device | str | None = None, *, steps: int = 5, rounds: int = 3,
               warmup: int = 1, download: bool | None = None) -> list[dict[str, Any]]:
    """Time and memory of a training step of each configuration, measured side by side in this process.

    Every run is built (:func:`~.prepare`, from its seed); each first takes ``warmup`` untimed
    steps (the first one under :class:`~.SavedTensorBytes`, and on CUDA with the allocator's peak
    reset), then, ``rounds`` times, each configuration in turn takes ``steps`` timed steps (the
    device synchronised before and after). Interleaving the configurations makes the load of a
    shared machine fall on each of them alike. Every step is eager (no CUDA graph) so that the
    methods are compared on the same footing.

    Returns one dict per configuration: ``method``, ``parameters``, ``parameter_counts``
    (AdaMixup's parts; for other methods ``{"classifier": parameters, "total": parameters}``),
    ``steps_per_epoch``, ``seconds_per_step`` (wall-clock, median over the rounds),
    ``seconds_per_epoch`` (``steps_per_epoch * seconds_per_step``: training only, no evaluation),
    ``cpu_seconds_per_step`` and ``cpu_seconds_per_epoch`` (the same with the process's CPU time,
    :func:`time.process_time`, summed over its threads: on a CPU it measures the work of a step
    whatever the load of other processes, which a wall-clock time does not; on a GPU it is only
    the host's share),
    ``saved_for_backward_bytes`` and ``cuda_step_peak_bytes`` (``max_memory_allocated`` during
    the first step minus what was allocated before it: the step's own transient memory; None on
    the CPU).
    """
    import statistics

    check_integer("steps", steps, low=1)
    check_integer("rounds", rounds, low=1)
    check_integer("warmup", warmup, low=1)
    device = torch.device(device) if device is not None else default_device()
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    runs = []
    for config in configs:
        model, optimizer, train, _, transform = prepare(config, device, download=download)
        batches = [(x, y) for _, (x, y) in zip(range(min(len(train), steps + warmup)), train)]
        if config.method == "adamixup":
            one = lambda x, y, m=model, o=optimizer, g=transform: adamixup_step(m, o, x, y, g)  # noqa: E731
            counts = model.parameter_counts()
        else:
            one = lambda x, y, m=model, o=optimizer, t=transform: eager_step(m, o, x, y, t)  # noqa: E731
            counts = {"classifier": count_parameters(model), "total": count_parameters(model)}
        saved = SavedTensorBytes(exclude=model.parameters())
        sync()
        base = torch.cuda.memory_allocated(device) if cuda else 0
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        with saved:
            one(*batches[0])
        sync()
        peak = int(torch.cuda.max_memory_allocated(device)) - base if cuda else None
        for i in range(1, warmup):
            one(*batches[i % len(batches)])
        runs.append({"config": config, "step": one, "batches": batches, "times": [], "cpu_times": [], "steps_per_epoch": len(train),
                     "parameters": count_parameters(model), "parameter_counts": counts,
                     "saved_for_backward_bytes": saved.bytes, "cuda_step_peak_bytes": peak})
    for _ in range(rounds):
        for run in runs:
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(steps):
                run["step"](*run["batches"][i % len(run["batches"])])
            sync()
            run["times"].append((time.perf_counter() - t0) / steps)
            run["cpu_times"].append((time.process_time() - c0) / steps)
    out = []
    for run in runs:
        per_step, cpu_per_step = statistics.median(run["times"]), statistics.median(run["cpu_times"])
        out.append({"method": run["config"].method, "parameters": run["parameters"], "parameter_counts": run["parameter_counts"],
                    "steps_per_epoch": run["steps_per_epoch"], "seconds_per_step": per_step,
                    "seconds_per_epoch": per_step * run["steps_per_epoch"], "cpu_seconds_per_step": cpu_per_step,
                    "cpu_seconds_per_epoch": cpu_per_step * run["steps_per_epoch"],
                    "saved_for_backward_bytes": run["saved_for_backward_bytes"], "cuda_step_peak_bytes": run["cuda_step_peak_bytes"]})
    return out


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
    name: {**settings, "epochs": 4, "train_size": 4000, "test_size": 1000, "lr": 0.02, "schedule": "step", "step_size": 10,
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
    "mnist": "Not stated by the paper (it only says that Local Mixup converges faster than AdaMixup on MNIST): the "
             "Fashion-MNIST recipe unchanged (DenseNet-BC, SGD lr 0.001, 40 epochs, batch 64, alpha = 5e-4 with permutation "
             "pairing), with the MNIST statistics (0.1307, 0.3081).",
    "adamixup": "AdaMixup is trained with exactly the recipe of the other methods on each dataset (same backbone for its "
                "classifier and generator, optimiser, learning rate, schedule, epochs, batch, augmentation), so that only the "
                "method differs. The official AdaMixup code trains far longer (1400 epochs on CIFAR-10); the paper does not say "
                "how its AdaMixup number was obtained. Official-code choices kept: pairs from a permutation, half of each batch "
                "held out as extra real samples for the discriminator, N(0, 1e-3) heads, total loss = mixing CE + original CE "
                "+ intrusion CE, one optimiser for all parts (weight decay on every part).",
    "last_batch": "The last incomplete batch of each epoch is dropped (e.g. 60000 = 937 x 64 + 32 on Fashion-MNIST) so that every "
                  "step has the same shape and can replay one CUDA graph; the order is reshuffled every epoch.",
    "evaluation": "Test error of the last epoch (no early stopping, no model selection on the test set).",
}


def profile_config(profile: str, dataset: str, method: str, seed: int = 0, **overrides: Any) -> TrainConfig:
    """The :class:`~.TrainConfig` of a profile (``"paper"`` or ``"quick"``) for one run.

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
