"""The training protocols of the book, with the choices they make where the paper is silent, in
prose (:data:`PAPER_CHOICES`): the paper's (``paper``, GPU), Table 1's Fashion-MNIST row at a
scale this project's 2-core CPU trains to convergence (``cpu``: LeNet-5, not the paper's
network), and a minutes-long smoke test (``quick``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from localmixup.paper.data import spec
from localmixup.paper.training.config import TrainConfig
from localmixup.checks import check_choice

_QUICK_MODEL = {"blocks": [2, 2, 2, 2], "growth": 8}

#: The paper's protocol per dataset (see :data:`PAPER_CHOICES` for where each value comes from).
PAPER_SETTINGS: dict[str, dict[str, Any]] = {
    "fashion_mnist": dict(model="densenet_bc", lr=0.001, momentum=0.9, weight_decay=5e-4, schedule="step", step_size=10,
                          gamma=0.9, epochs=40, batch_size=64, decay=5e-4, pairing="permutation", augment=False),
    "cifar10": dict(model="resnet18", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="multistep", milestones=(100, 200, 300),
                    gamma=0.1, epochs=350, batch_size=64, decay=1e-3, pairing="graph", augment=True),
    "cifar100": dict(model="resnet18", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="multistep", milestones=(100, 200, 300),
                     gamma=0.1, epochs=350, batch_size=64, decay=1e-3, pairing="graph", augment=True),
    "svhn": dict(model="lenet5", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="multistep", milestones=(20, 30),
                 gamma=0.1, epochs=40, batch_size=64, decay=1e-3, pairing="graph", augment=False),
    "mnist": dict(model="densenet_bc", lr=0.001, momentum=0.9, weight_decay=5e-4, schedule="step", step_size=10,
                  gamma=0.9, epochs=40, batch_size=64, decay=5e-4, pairing="permutation", augment=False),
}

#: The quick profile: the paper's recipe shrunk to run on a CPU in seconds per run. NOT the paper's protocol.
QUICK_SETTINGS: dict[str, dict[str, Any]] = {
    name: {**settings, "epochs": 4, "train_size": 4000, "test_size": 1000, "lr": 0.02, "schedule": "step", "step_size": 10,
           "gamma": 0.9, "milestones": (),
           **({"model_options": _QUICK_MODEL} if settings["model"] == "densenet_bc" else {})}
    for name, settings in PAPER_SETTINGS.items()
}

#: The CPU profile: the full Fashion-MNIST split with LeNet-5, converged in 15 epochs (see PAPER_CHOICES["cpu"]).
CPU_SETTINGS: dict[str, dict[str, Any]] = {
    "fashion_mnist": dict(model="lenet5", pad=2, lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="multistep",
                          milestones=(8, 12), gamma=0.1, epochs=15, batch_size=128, decay=5e-4, pairing="permutation",
                          augment=False, adamixup_weighting="official"),
}

SIZE_EPOCHS = {1000: 100, 4000: 50, 15000: 25}
"""The training-set sizes of the size study (Table 1 where Mixup has something to do) and the
epochs each is trained for: more epochs for fewer images (100 epochs of 1,000 images are 700
steps, 15 epochs of 60,000 are 7,000), enough for the test error to flatten (the pilot's curves)."""


def _size_settings(size: int, epochs: int) -> dict[str, Any]:
    milestones = (round(epochs * 8 / 15), round(epochs * 12 / 15))  # the cpu recipe's lr steps, rescaled
    return {**CPU_SETTINGS["fashion_mnist"], "train_size": size, "subset_seed": "seed", "epochs": epochs, "milestones": milestones}


#: Per profile ``size<N>`` of the size study, the cpu recipe on a stratified subset drawn from each run's seed.
SIZE_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    f"size{size}": {"fashion_mnist": _size_settings(size, epochs)} for size, epochs in SIZE_EPOCHS.items()}

PROTOCOLS = {"paper": PAPER_SETTINGS, "cpu": CPU_SETTINGS, "quick": QUICK_SETTINGS, **SIZE_SETTINGS}

PAPER_CHOICES: dict[str, str] = {
    "alpha": "lambda ~ Beta(alpha, alpha) with alpha = 1 for Mixup and Local Mixup on every dataset: the paper does not "
             "print it; 1 is the value of the Mixup paper for CIFAR and of the authors' spirals code.",
    "fashion_mnist": "DenseNet-BC 6-12-24-16, growth 12, stem 1->24; SGD lr 0.001, momentum 0.9, wd 5e-4, StepLR(10, 0.9), "
                     "40 epochs, batch 64, normalise (0.5, 0.5), no augmentation; Local Mixup: W = exp(-decay ||x_i - x_pi(i)||) "
                     "with decay = 5e-4 on normalised pixels, permutation pairing, loss normalised by the sum of weights "
                     "(authors' script, with the weight actually applied).",
    "cifar10": "ResNet-18 (3x3 stem, no max-pool), batch 64, crop 4 + flip, SGD momentum 0.9, wd 5e-4, lr 0.1/0.01/0.001/0.0001 "
               "for 100/100/100/50 epochs (authors' code); Local Mixup draws the partner from the row of exp(-1e-3 D) "
               "(graph pairing, decay = 1e-3, as the authors' code).",
    "cifar100": "Not stated by the paper: the CIFAR-10 protocol unchanged (same network, schedule, decay = 1e-3 and graph "
                "pairing), with the CIFAR-100 channel statistics; 100 output classes.",
    "svhn": "No SVHN code exists: LeNet-5 (ReLU, max-pool) on the 73,257 'train' images (not 'extra'), batch 64, SGD lr 0.01, "
            "momentum 0.9, wd 5e-4, 40 epochs with lr x0.1 at epochs 20 and 30 (LeNet converges in a few tens of epochs), no "
            "augmentation (flips change digits), SVHN channel statistics; decay = 1e-3 with graph pairing as for CIFAR "
            "(same 3x32x32 inputs, so the same distance scale).",
    "mnist": "Not stated by the paper (it only says that Local Mixup converges faster than AdaMixup on MNIST): the "
             "Fashion-MNIST recipe unchanged (DenseNet-BC, SGD lr 0.001, 40 epochs, batch 64, decay = 5e-4 with permutation "
             "pairing), with the MNIST statistics (0.1307, 0.3081).",
    "adamixup": "AdaMixup is trained with exactly the recipe of the other methods on each dataset (same backbone for its "
                "classifier and generator, optimiser, learning rate, schedule, epochs, batch, augmentation), so that only the "
                "method differs: AdaMixup trained under this recipe, not under its own (the official code trains far longer, "
                "1400 epochs on CIFAR-10; the paper does not say how its AdaMixup number was obtained). Official-code choices "
                "kept: pairs from a permutation, half of each batch held out as extra real samples for the discriminator, "
                "N(0, 1e-3) heads, one optimiser for all parts (weight decay on every part). Differences from the official "
                "code: in the paper and quick profiles the total loss weighs the two classification terms 1 + 1 (mixing "
                "CE + original CE + intrusion CE), where the official code takes one mean over mixed and original samples "
                "(1/2 + 1/2) beside the intrusion term (the cpu profile takes the official weighting); the trunk runs once "
                "over all samples, where the official code runs it twice (batch statistics; the same without BatchNorm, "
                "as in LeNet-5).",
    "cpu": "Not the paper's network: Table 1's Fashion-MNIST row at a scale a 2-core CPU trains to convergence. "
           "LeNet-5 (the paper's SVHN network; 61,706 parameters) on all 60,000 / 10,000 images, 28x28 padded to 32x32 "
           "with 2 background pixels per side (normalised value -1; a constant border adds nothing to any pair "
           "distance), normalise (0.5, 0.5), no augmentation; SGD momentum 0.9, wd 5e-4, lr 0.05 x0.1 after epochs 8 "
           "and 12, 15 epochs (both learning curves flat over the last epochs in a pilot), batch 128; Local Mixup as the "
           "paper's Fashion-MNIST script (decay = 5e-4, permutation pairing, loss normalised by the sum of weights).",
    "sizes": "Table 1's question where Mixup has something to do: the cpu recipe (LeNet-5, lr 0.05 with its two steps "
             "at 8/15 and 12/15 of the epochs, batch 128) on stratified subsets of 1,000, 4,000 and 15,000 training "
             "images (100, 50 and 25 epochs), each drawn from the run's seed: the methods of one seed train on the "
             "same images, and the seeds span draws of the data; the test split is always whole. The full split is "
             "the cpu profile.",
    "last_batch": "The last incomplete batch of each epoch is dropped (e.g. 60000 = 937 x 64 + 32 on Fashion-MNIST) so that every "
                  "step has the same shape and can replay one CUDA graph; the order is reshuffled every epoch.",
    "evaluation": "Test error of the last epoch (no early stopping, no model selection on the test set).",
}


def profile_config(profile: str, dataset: str, method: str, seed: int = 0, **overrides: Any) -> TrainConfig:
    """The :class:`~localmixup.paper.training.config.TrainConfig` of a profile (``"paper"`` or ``"quick"``)
    for one run.

    ``overrides`` replace settings (e.g. ``epochs=1``, ``decay=0.1``; None leaves a setting as it is);
    the settings of one method only (``decay``, ``decay_rule``: ``local``; ``adamixup_weighting``:
    ``adamixup``) are dropped for the others; a ``subset_seed`` of ``"seed"`` (the size study) is the
    run's seed. Unknown settings raise ``ValueError``.
    """
    check_choice("profile", profile, tuple(PROTOCOLS))
    spec(dataset)
    settings = dict(PROTOCOLS[profile][dataset])
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValueError(f"unknown training settings {sorted(unknown)}")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if method != "local":
        settings["decay"] = settings["decay_rule"] = None
    if method != "adamixup":
        settings["adamixup_weighting"] = None
    if settings.get("subset_seed") == "seed":
        settings["subset_seed"] = seed
    return TrainConfig(dataset=dataset, method=method, seed=seed, profile=profile, **settings)
