"""The pooling baseline: conv blocks each followed by a 2×2 max-pool, then upsampling back to H×W."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from segdil.models.base import SegModel
from segdil.models.common import ConvNormAct, pad_to_multiple


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """Weights that make a (groups=channels) transposed convolution a bilinear upsampler."""
    size = 2 * factor - factor % 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float32)
    filt = 1 - (og - center).abs() / factor
    kernel = filt[:, None] * filt[None, :]
    return kernel.expand(channels, 1, size, size).clone()


class Upsample(nn.Module):
    """Upsample by an integer factor: bilinear interpolation or a learned transposed convolution
    initialised to bilinear (FCN's ``deconv``)."""

    def __init__(self, channels: int, factor: int, mode: str):
        super().__init__()
        self.factor, self.mode = factor, mode
        if mode == "deconv" and factor > 1:
            size = 2 * factor - factor % 2
            self.deconv = nn.ConvTranspose2d(channels, channels, size, stride=factor, padding=(size - factor) // 2 + (size - factor) % 2, output_padding=(size - factor) % 2, groups=channels, bias=False)
            with torch.no_grad():
                self.deconv.weight.copy_(bilinear_kernel(channels, factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor == 1:
            return x
        if self.mode == "deconv":
            return self.deconv(x)
        return F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)


class FCN(SegModel):
    """Pooling + upsampling baseline at stride 2^P.

    Args:
        in_channels: input image channels.
        num_classes: output classes.
        pools: number of 2×2 max-pools P (1…5); the deepest features have stride 2^P.
        width: channels of the first stage; each later stage doubles it up to ``max_width``.
        max_width: the channel cap.
        convs_per_stage: 3×3 conv-norm-ReLU layers before each pool.
        head_convs: 3×3 layers at the deepest resolution before the 1×1 classifier.
        upsample: ``bilinear`` or ``deconv`` (learned, initialised to bilinear).
        skips: ``none``; ``fcn16`` fuses the scores of the pool P−1 output; ``fcn8`` also pool P−2.
        norm: ``batch``, ``group`` or ``none``.

    Any input size works: the input is zero-padded to a multiple of 2^P and the output cropped back.
    """

    width_args = ("width", "max_width")

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        return dict(pools=3, width=8, skips="fcn8", upsample="deconv")

    @property
    def input_multiple(self) -> int:
        return 2**self.pools_count

    @property
    def receptive_field_radius(self) -> int:
        """An analytic upper bound: each 3x3 layer adds its input stride, each pool its stride,
        each upsampling twice its input stride, plus one pooling cell for the grid alignment."""
        stride, radius = 1, 0
        for stage in self.stages:
            radius += len(stage) * stride + stride  # the convolutions, then the 2x2 pool
            stride *= 2
        radius += len(self.head) * stride
        for _ in range(self.n_skips):
            radius += 2 * stride
            stride //= 2
        return radius + 2 * stride + self.input_multiple

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 4,
        pools: int = 4,
        width: int = 32,
        max_width: int = 256,
        convs_per_stage: int = 2,
        head_convs: int = 2,
        upsample: Literal["bilinear", "deconv"] = "bilinear",
        skips: Literal["none", "fcn16", "fcn8"] = "none",
        norm: Literal["batch", "group", "none"] = "batch",
    ):
        super().__init__()
        if not 1 <= pools <= 5:
            raise ValueError(f"pools={pools}: choose 1 to 5 (stride 2 to 32)")
        n_skips = {"none": 0, "fcn16": 1, "fcn8": 2}.get(skips)
        if n_skips is None:
            raise ValueError(f"skips={skips!r}: valid values are none, fcn16, fcn8")
        if upsample not in ("bilinear", "deconv"):
            raise ValueError(f"upsample={upsample!r}: valid values are bilinear, deconv")
        if n_skips >= pools:
            raise ValueError(f"skips={skips!r} needs pools > {n_skips}, got pools={pools}")
        self.pools_count, self.n_skips = pools, n_skips
        widths = [min(width * 2**i, max_width) for i in range(pools)]
        self.stages = nn.ModuleList()
        self.pools = nn.ModuleList()
        channels = in_channels
        for w in widths:
            self.stages.append(nn.Sequential(*[ConvNormAct(channels if j == 0 else w, w, norm=norm) for j in range(convs_per_stage)]))
            self.pools.append(nn.MaxPool2d(2))
            channels = w
        self.head = nn.Sequential(*[ConvNormAct(channels, channels, norm=norm) for _ in range(head_convs)])
        self.score = nn.Conv2d(channels, num_classes, 1)
        # skip k scores the output of pool P-1-k (stride 2^(P-1-k)); fusion goes coarse to fine, 2× at a time
        self.skip_scores = nn.ModuleList(nn.Conv2d(widths[pools - 2 - k], num_classes, 1) for k in range(n_skips))
        self.skip_ups = nn.ModuleList(Upsample(num_classes, 2, upsample) for _ in range(n_skips))
        self.final_up = Upsample(num_classes, 2 ** (pools - n_skips), upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 2**self.pools_count)
        pooled = []
        for stage, pool in zip(self.stages, self.pools):
            x = pool(stage(x))
            pooled.append(x)
        y = self.score(self.head(x))
        for k in range(self.n_skips):
            y = self.skip_ups[k](y) + self.skip_scores[k](pooled[-2 - k])
        y = self.final_up(y)
        return y[..., :h, :w]
