"""Small pieces shared by the model families: conv-norm-ReLU and pad-to-a-multiple."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "group", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(channels, 8), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r}: valid values are {', '.join(NORMS)}")


class ConvNormAct(nn.Sequential):
    """3×3 convolution (any dilation and padding), normalisation, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1, padding: int | None = None, norm: str = "batch"):
        padding = dilation if padding is None else padding
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=padding, dilation=dilation, bias=norm == "none"),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )


def expand_widths(widths: Sequence[int], blocks: int, per_block: int) -> list[int]:
    """Output channels of every layer from one width, one per block, or one per layer."""
    widths = list(widths)
    if len(widths) == 1:
        widths = widths * (blocks * per_block)
    elif len(widths) == blocks:
        widths = [w for w in widths for _ in range(per_block)]
    if len(widths) != blocks * per_block:
        raise ValueError(f"widths has {len(widths)} values for {blocks} blocks of {per_block} layers: give one width, one per block or one per layer")
    return widths


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad H and W (bottom/right) up to a multiple; returns the padded tensor and the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, (h, w)
