"""DenseNet-BC (Huang et al. 2017) as used by the authors for Fashion-MNIST."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Bottleneck(nn.Module):
    """BN-ReLU-Conv1x1(4 g) then BN-ReLU-Conv3x3(g); the g new channels are concatenated to the input."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1 (channels x reduction, rounded down) then 2x2 average pooling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNetBC(nn.Module):
    """DenseNet-BC: stem conv3x3 (in_channels -> 2 growth), dense blocks of bottleneck layers
    separated by transitions (compression ``reduction``), BN-ReLU, global average pooling, linear.

    Defaults are the authors' Fashion-MNIST network: blocks 6-12-24-16, growth 12, reduction
    0.5, stem 1 -> 24. Input (B, in_channels, H, W) with H, W >= 8 (28x28: 28 -> 14 -> 7 -> 3)
    -> logits (B, num_classes). 1,000,186 parameters for 1 channel and 10 classes (derivation in
    tests/test_models.py).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        blocks: tuple[int, ...] = (6, 12, 24, 16),
        growth: int = 12,
        reduction: float = 0.5,
    ) -> None:
        super().__init__()
        channels = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for i, depth in enumerate(blocks):
            for _ in range(depth):
                stages.append(Bottleneck(channels, growth))
                channels += growth
            if i < len(blocks) - 1:
                out = int(math.floor(channels * reduction))
                stages.append(Transition(channels, out))
                channels = out
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(channels)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.features(self.conv1(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))
