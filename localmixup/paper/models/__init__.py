"""The networks of the paper's Table 1 and a name -> constructor registry."""

from __future__ import annotations

import torch

from localmixup.checks import check_choice
from localmixup.paper.models.densenet import DenseNetBC
from localmixup.paper.models.lenet import LeNet5
from localmixup.paper.models.resnet import ResNet18

MODELS = ("resnet18", "densenet_bc", "lenet5")


def build_model(name: str, num_classes: int, in_channels: int, **options: object) -> torch.nn.Module:
    """A freshly initialised network (initialised from torch's global RNG: seed it first).

    Args:
        name: ``"resnet18"`` (32x32 inputs), ``"densenet_bc"`` (any size >= 8x8, the
            paper uses 1x28x28) or ``"lenet5"`` (32x32 inputs).
        num_classes: number of outputs, >= 2.
        in_channels: channels of the input images (1 or 3).
        options: constructor options of that model (e.g. ``blocks``, ``growth`` for DenseNet-BC).
    """
    return model_class(name)(num_classes=num_classes, in_channels=in_channels, **options)


def model_class(name: str) -> type[torch.nn.Module]:
    """The class of network ``name`` (one of ``MODELS``)."""
    return {"resnet18": ResNet18, "densenet_bc": DenseNetBC, "lenet5": LeNet5}[check_choice("model", name, MODELS)]


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["MODELS", "DenseNetBC", "LeNet5", "ResNet18", "build_model", "count_parameters", "model_class"]
