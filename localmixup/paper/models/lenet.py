"""LeNet-5 (LeCun et al. 1998) for 32x32 images, with ReLU and max-pooling (the usual modern form)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from localmixup.validation import check_integer, check_real


class LeNet5(nn.Module):
    """conv5x5(6) - ReLU - maxpool2 - conv5x5(16) - ReLU - maxpool2 - FC 400-120-84-classes.

    Input (B, in_channels, 32 - 2 pad, 32 - 2 pad) -> logits (B, num_classes). 62,006 parameters
    for 3 channels and 10 classes, 61,706 for 1 channel.

    Args:
        pad: border added inside the model (integer in [0, 16)), e.g. 2 for 28x28 images such as
            Fashion-MNIST, as LeCun et al. padded MNIST. Padding inside the model leaves the
            inputs, hence the distances of the locality graph, unchanged.
        pad_value: value of the border, finite (the normalised background, e.g. -1 for pixels
            normalised with mean 0.5 and std 0.5).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, pad: int = 0, pad_value: float = 0.0) -> None:
        super().__init__()
        self.pad = check_integer("pad", pad, low=0, high=15)
        self.pad_value = check_real("pad_value", pad_value, low=-math.inf, high=math.inf, low_open=True, high_open=True)
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, value=self.pad_value)
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        out = torch.flatten(out, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(out)))))
