"""The full-resolution dilated network: stacked HDC blocks, no pooling, a pixel-wise 1×1 head."""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Literal, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from segdil.models.base import SegModel
from segdil.models.common import ConvNormAct, RecomputeOnce, expand_widths
from segdil.rf import analyze_stack


class HDCBlock(nn.Module):
    """One group of dilated 3×3 layers (one per rate), padding = dilation, optional residual add.

    ``widths`` gives each layer's output channels (one per rate)."""

    def __init__(self, in_channels: int, widths: Sequence[int], rates: Sequence[int], norm: str, residual: bool):
        super().__init__()
        chans = [in_channels, *widths]
        self.layers = nn.Sequential(*[ConvNormAct(chans[i], chans[i + 1], dilation=r, norm=norm) for i, r in enumerate(rates)])
        self.residual = residual
        out_channels = chans[-1]
        self.project = nn.Conv2d(in_channels, out_channels, 1, bias=False) if residual and in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return y + self.project(x) if self.residual else y


class HDCNet(SegModel):
    """Full-resolution Hybrid Dilated Convolution network.

    Every layer keeps H×W (stride 1, padding = dilation); there is no pooling, no stride and no
    upsampling anywhere, so a 2-pixel object is still 2 pixels wide in the last feature map.

    Args:
        in_channels: input image channels.
        num_classes: output classes of the 1×1 head.
        widths: output channels: one value for every layer, one per block, or one per layer
            (``blocks × len(rates)`` values, e.g. the classic 32, 32, 64, 64, 64, 128).
        rates: dilation rates of one block (the HDC group), e.g. ``(1, 2, 5)``.
        blocks: how many times the rate group repeats.
        residual: add each block's input to its output (1×1 projection where widths change).
        norm: ``batch``, ``group`` or ``none``.
        stem_width: channels of an undilated 3×3 stem before the blocks (0: no stem).
        memory_saver: ``checkpoint`` recomputes each block's activations in backward
            instead of storing them (less memory, one extra forward per block).
        strict: raise instead of warning when the stacked rates leave holes (gridding).
    """

    supports_memory_saver = True
    width_args = ("widths", "stem_width")
    full_resolution_path = ("stem", "blocks", "head")

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        return dict(widths=[8], rates=[1, 2, 5], blocks=1)

    @classmethod
    def rf_stack_args(cls, model_args: dict[str, Any]) -> dict[str, Any]:
        """Rates, repeat, kernel and stem of the stack; missing keys take the constructor defaults."""
        defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items() if p.default is not inspect.Parameter.empty}
        args = {**defaults, **{k: v for k, v in model_args.items() if v is not None and k != "name"}}
        return {"rates": tuple(int(r) for r in args["rates"]), "repeat": int(args["blocks"]), "kernel": 3, "stem": 1 if args["stem_width"] else 0}

    @property
    def receptive_field_radius(self) -> int:
        """Half the analytic receptive field of the stack (``segdil rf``); the 1x1 head and the
        residual adds do not widen it."""
        return stack_radius(self.rates, self.blocks_count, stem=not isinstance(self.stem, nn.Identity))

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 4,
        widths: Sequence[int] = (64,),
        rates: Sequence[int] = (1, 2, 5),
        blocks: int = 4,
        residual: bool = True,
        norm: Literal["batch", "group", "none"] = "batch",
        stem_width: int = 0,
        memory_saver: Literal["none", "checkpoint"] = "none",
        strict: bool = False,
    ):
        super().__init__()
        per_block = len(rates)
        widths = expand_widths(widths, blocks, per_block)
        if blocks < 1 or not rates or any(r < 1 for r in rates):
            raise ValueError(f"need blocks >= 1 and rates >= 1, got blocks={blocks}, rates={tuple(rates)}")
        if memory_saver not in ("none", "checkpoint"):
            raise ValueError(f"memory_saver={memory_saver!r}: valid values are none, checkpoint")
        self.rates = tuple(int(r) for r in rates)
        self.blocks_count = blocks
        self.memory_saver = memory_saver
        check_gridding(self.rates, blocks, strict, stem=1 if stem_width else 0)
        self.stem = ConvNormAct(in_channels, stem_width, norm=norm) if stem_width else nn.Identity()
        channels = stem_width or in_channels
        body = []
        for b in range(blocks):
            layer_widths = widths[b * per_block : (b + 1) * per_block]
            body.append(HDCBlock(channels, layer_widths, self.rates, norm, residual))
            channels = layer_widths[-1]
        self.blocks = nn.ModuleList(body)
        self.head = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            if self.memory_saver == "checkpoint" and self.training and torch.is_grad_enabled():
                x = checkpoint(RecomputeOnce(block), x, use_reentrant=False)
            else:
                x = block(x)
        return self.head(x)



def stack_radius(rates: Sequence[int], blocks: int, stem: bool) -> int:
    """Half the analytic receptive field of an optional 3x3 stem and ``blocks`` HDC groups of
    ``rates`` (``segdil rf``): how far, per side, an output pixel reaches into the input."""
    return analyze_stack(rates, repeat=blocks, kernel=3, stem=int(stem)).receptive_field // 2


def check_gridding(rates: Sequence[int], repeat: int, strict: bool, stem: int = 0) -> None:
    """Warn (or raise with ``strict``) when the stacked kernels leave holes in the receptive field."""
    report = analyze_stack(rates, repeat=repeat, kernel=3, stem=stem)
    if report.gridding:
        message = (
            f"hdc rates {tuple(rates)} x{repeat}: coverage {report.coverage:.3f} with {report.holes} holes, "
            f"HDC rule M2={report.M2} ({'passes' if report.hdc_rule_ok else 'fails'}), common factor {report.common_factor}; "
            "pick rates without a common factor, e.g. (1, 2, 5) — see `segdil rf`"
        )
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=3)
