"""LeNet-5 (LeCun et al. 1998) for 3x32x32 images, with ReLU and max-pooling (the usual modern form)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    """conv5x5(6) - ReLU - maxpool2 - conv5x5(16) - ReLU - maxpool2 - FC 400-120-84-classes.

    Input (B, in_channels, 32, 32) -> logits (B, num_classes). 62,006 parameters for 3 channels
    and 10 classes.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        out = torch.flatten(out, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(out)))))
