"""Small pieces shared by the model families: conv-norm-ReLU, pad-to-a-multiple, and the
BatchNorm-safe wrapper of a checkpointed block."""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

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


class RecomputeOnce:
    """Calls ``block``; on the second call (the recomputation in backward) BatchNorm running
    statistics are left untouched, so a checkpointed step updates them exactly once."""

    def __init__(self, block: nn.Module):
        self.block, self.calls = block, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        with _frozen_bn_stats(self.block) if self.calls > 1 else contextlib.nullcontext():
            return self.block(x)


@contextlib.contextmanager
def _frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
