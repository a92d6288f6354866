"""The classic ConvModule: six unpadded dilated 3×3 layers, global average pooling, a linear head."""

from __future__ import annotations

import torch
from torch import nn

from segdil.models.base import SegModel
from segdil.models.common import ConvNormAct

WIDTHS = (32, 32, 64, 64, 64, 128)
RATES = (1, 2, 5, 1, 2, 5)
MIN_SIZE = 1 + 2 * sum(RATES)  # 33: the receptive field of the stack


class SeedClassifier(SegModel):
    """Six 3×3 conv-BN-ReLU layers, rates 1, 2, 5, 1, 2, 5, padding 0.

    On a 64×64 input the layer outputs are 62, 58, 48, 46, 42 and 32 pixels wide; global average
    pooling and a Linear layer give ``(N, num_classes)``. Inputs must be at least 33×33.

    Args:
        in_channels: input image channels.
        num_classes: output classes of the linear head.
    """

    is_classifier = True
    min_input_size = MIN_SIZE

    def __init__(self, in_channels: int = 3, num_classes: int = 4):
        super().__init__()
        layers, channels = [], in_channels
        for width, rate in zip(WIDTHS, RATES):
            layers.append(ConvNormAct(channels, width, dilation=rate, padding=0))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(f"seed_classifier needs inputs of at least {MIN_SIZE}x{MIN_SIZE} pixels (its receptive field), got {h}x{w}")
        return self.fc(self.pool(self.features(x)).flatten(1))
