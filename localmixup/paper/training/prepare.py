"""A run built from its configuration and seed: model, optimiser, loaders, mixing transform, generators."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from localmixup.paper.adamixup.method import AdaMixup
from localmixup.mixing import LocalMixup
from localmixup.rng import Streams
from localmixup.paper.data import DeviceLoader, load_arrays, spec, subset
from localmixup.paper.training.config import TrainConfig
from localmixup.paper.training.optim import SGD
from localmixup.paper.training.seeding import generator, seeded_global, stream_path
from localmixup.paper.models import build_model
from localmixup.paper.provenance import default_device


class Prepared(NamedTuple):
    """One run ready to train.

    Attributes:
        model: the network (for ``adamixup``, the whole :class:`~localmixup.paper.adamixup.method.AdaMixup`
            module: classifier, generator and discriminator, all in ``optimizer``).
        optimizer: :class:`~.SGD` over the model's parameters.
        train, test: device-resident loaders (``train`` shuffles and augments from ``generators["order"]``).
        mixer: the method's :class:`~localmixup.mixing.LocalMixup` (``mixup``, ``local``), drawing from
            ``generators["mix"]``; None for ``baseline`` and ``adamixup`` (whose step draws from
            ``generators["mix"]`` itself).
        generators: the run's random sources (:mod:`~localmixup.paper.training.seeding`): ``init``
            and ``order`` ``torch.Generator`` s, ``mix`` a :class:`~localmixup.rng.Streams` (for
            AdaMixup, whose module takes one, a ``torch.Generator``), on the run's device but ``init``.
    """

    model: torch.nn.Module
    optimizer: SGD
    train: DeviceLoader
    test: DeviceLoader
    mixer: LocalMixup | None
    generators: dict[str, torch.Generator | Streams]

    @property
    def training_generators(self) -> list[torch.Generator | Streams]:
        """The generators the run draws from while it trains (data order and augmentation, mixing):
        what a checkpoint must keep."""
        return [self.generators["order"], self.generators["mix"]]


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a :class:`torch.device`; None: CUDA if visible, else CPU."""
    return torch.device(device) if device is not None else default_device()


def train_split(config: TrainConfig, *, download: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images (uint8 (N, C, H, W), padded by ``config.pad``) and labels (N,) of ``config``'s
    run: its ``train_size`` subset (stratified and drawn from ``subset_seed`` if set)."""
    arrays = load_arrays(config.dataset, download=download)
    if config.subset_seed is None:
        x, y = subset(arrays.x_train, arrays.y_train, config.train_size)
    else:
        x, y = subset(arrays.x_train, arrays.y_train, config.train_size, config.subset_seed, stratified=True)
    return (F.pad(x, (config.pad,) * 4) if config.pad else x), y  # black pixels


def prepare(config: TrainConfig, device: torch.device | str | None = None, *, download: bool | None = None) -> Prepared:
    """Build the run of ``config`` from its seed (not trained), on ``device`` (default: CUDA if visible).

    The weights are initialised from the run's ``init`` stream, the data order and augmentation
    drawn from ``order`` and the mixing from ``mix`` (:mod:`~localmixup.paper.training.seeding`):
    torch's global generator is neither read nor reseeded. ``download`` is passed to
    :func:`localmixup.paper.data.load_arrays`.
    """
    device = resolve_device(device)
    s = spec(config.dataset)
    x_train, y_train = train_split(config, download=download)
    arrays = load_arrays(config.dataset, download=download)
    x_test, y_test = subset(arrays.x_test, arrays.y_test, config.test_size)
    if config.pad:
        x_test = F.pad(x_test, (config.pad,) * 4)
    ada = config.method == "adamixup"
    mix = generator(config.seed, "mix", device) if ada else Streams(config.seed, stream=stream_path("mix"), device=device)
    generators = {"init": generator(config.seed, "init"), "order": generator(config.seed, "order", device), "mix": mix}
    with seeded_global(generators["init"]):
        if ada:
            weighting = {} if config.adamixup_weighting is None else {"weighting": config.adamixup_weighting}
            model = AdaMixup(config.model, s.num_classes, s.shape[0], validate=False, **weighting, **config.model_options)
        else:
            model = build_model(config.model, s.num_classes, s.shape[0], **config.model_options)
    # channels-last on every device: faster on CUDA, and on this project's CPU (DenseNet-BC's step 0.78x,
    # ResNet-18's 0.86x, LeNet-5's 0.8-1.0x of the default layout's CPU time, measured)
    model = model.to(device, memory_format=torch.channels_last)
    train = DeviceLoader(x_train, y_train, config.batch_size, mean=s.mean, std=s.std, device=device, shuffle=True,
                         augment=s.augment if config.augment is None else config.augment, drop_last=True,
                         generator=generators["order"], channels_last=True)
    test = DeviceLoader(x_test, y_test, config.eval_batch, mean=s.mean, std=s.std, device=device, channels_last=True)
    optimizer = SGD(model.parameters(), config.lr, config.momentum, config.weight_decay)
    return Prepared(model, optimizer, train, test, config.mixer(generators["mix"]), generators)
