"""The flagship: the full-resolution HDC stream plus a low-resolution context stream.

A full-resolution stack sees only its receptive field (33-65 px), so it cannot tell a small object
from a look-alike patch of background when only the surroundings decide. The context stream
pools to stride 2^``context_stages``, runs wide-rate HDC blocks there and optionally an image-level
pooling branch (off by default), and is upsampled and fused with the full-resolution features before the pixel-wise head.
The full-resolution path (``stem``, ``blocks``, ``fuse``, ``head``) never pools, strides or
resamples: a 2-pixel object is still 2 pixels wide where the head classifies it.

Tiled inference is exact: ``image_context`` runs the context stream once on the whole image, and
``forward_with_context`` runs the full-resolution path on a tile, sampling that low-resolution map
at the tile's own pixels of the whole-image upsampling (``bilinear_window``); the tile context it
needs is the full-resolution stream's ``receptive_field_radius``.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from segdil.models.base import SegModel
from segdil.models.common import ConvNormAct, expand_widths, make_norm
from segdil.models.hdc.model import HDCBlock, _RecomputeOnce, check_gridding, stack_radius

Upsample = Callable[[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]
CONTEXT_STRIP_ROWS = 256  # rows per strip of the context stream's pooling stages in ``image_context``


class ContextStream(nn.Module):
    """``stages`` × (3×3 conv, 2×2 max-pool), HDC blocks at that stride, optional image pooling.

    Stage widths double up to ``width`` (e.g. 16, 32, 64). Pooling uses ``ceil_mode`` so any H×W
    works without padding; the caller resamples the result to the exact input size.
    """

    def __init__(self, in_channels: int, width: int, stages: int, rates: Sequence[int], blocks: int, image_pool: bool, identity_init: bool, norm: str):
        super().__init__()
        widths = [max(8, width >> (stages - 1 - i)) for i in range(stages)]
        down: list[nn.Module] = []
        channels = in_channels
        for w in widths:
            down += [ConvNormAct(channels, w, norm=norm), nn.MaxPool2d(2, ceil_mode=True)]
            channels = w
        self.down = nn.Sequential(*down)
        self.stride = 2**stages
        self.blocks = nn.Sequential(*[HDCBlock(channels, [channels] * len(rates), rates, norm, residual=True) for _ in range(blocks)])
        if identity_init:
            # Yu & Koltun's context module: every dilated layer starts as the identity, so the
            # stream first passes the pooled features through and learns context on top of them.
            for module in self.blocks.modules():
                if isinstance(module, nn.Conv2d) and module.in_channels == module.out_channels and module.kernel_size == (3, 3):
                    nn.init.dirac_(module.weight)
        # image-level pooling (ASPP): a global summary added to every low-resolution position;
        # no normalisation, a 1×1 map has no spatial statistics for BatchNorm in a batch of one
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True)) if image_pool else None
        self.out_channels = channels

    def forward(self, x: torch.Tensor, strip_rows: int = 0) -> torch.Tensor:
        """The context features of ``x``; ``strip_rows > 0`` runs the pooling stages on strips of
        about that many rows (the same values: each strip carries the stages' reach of real rows),
        so the full-resolution stage's output never exists for the whole of a large image."""
        y = self._down_in_strips(x, strip_rows) if strip_rows > 0 else self.down(x)
        y = self.blocks(y)
        if self.image_pool is not None:
            y = y + self.image_pool(y)
        return y

    def _down_in_strips(self, x: torch.Tensor, strip_rows: int) -> torch.Tensor:
        # the 3×3 convs before the pools reach 1 + 2 + … + 2^(stages-1) < stride rows, so a halo
        # of one stride on each side, with strips aligned to the stride, makes every kept row exact
        stride, height = self.stride, x.shape[-2]
        rows = max(stride, strip_rows // stride * stride)
        out = []
        for top in range(0, height, rows):
            bottom = min(top + rows, height)
            low, high = max(top - stride, 0), min(bottom + stride, height)
            y = self.down(x[..., low:high, :])
            first = (top - low) // stride
            out.append(y[..., first : first + -(-(bottom - top) // stride), :])
        return torch.cat(out, dim=-2)


class HDCContextNet(SegModel):
    """Full-resolution HDC network with a low-resolution context stream fused back at full size.

    The defaults are the shipped flagship (``configs/hdc-context_synth.yaml`` is ``model: {name:
    hdc_context}``): 3 blocks of 32 channels, the context at stride 4 and 32 wide without image
    pooling, a 16-wide fusion layer with ``fuse_skip``, identity and zero initialisation.

    Args:
        in_channels: input image channels.
        num_classes: output classes of the 1×1 head.
        widths: channels of the full-resolution stream: one value, one per block or one per layer.
        rates: dilation rates of one full-resolution HDC group.
        blocks: full-resolution HDC blocks (residual).
        norm: ``batch``, ``group`` or ``none``.
        stem_width: channels of an undilated 3×3 stem at full resolution (0: none).
        context_width: channels of the context stream at its lowest resolution (0: no context
            stream at all; the model is then the plain full-resolution HDC net).
        context_stages: conv+pool stages of the context stream (its stride is 2**stages).
        context_rates: dilation rates of the context HDC groups (wider than the full-resolution
            ones: at stride 8, rates 1, 2, 5, 9 span about 300 input pixels per block).
        context_blocks: HDC blocks in the context stream.
        image_pool: add an image-level average (ASPP's image pooling) to the context features.
        fusion: ``end`` concatenates the upsampled context with the full-resolution features once,
            before the head; ``every`` also adds a 1×1 projection of it to the input of every
            full-resolution block after the first (FRRN-style repeated fusion).
        fuse_width: channels of the 1×1 conv+norm+ReLU applied to the concatenation before the
            head (0: the head reads the concatenation directly, a purely additive fusion).
        fuse_skip: the head also reads the concatenation itself beside the fusion layer's output:
            a linear path to every class that dead ReLUs of the fusion layer cannot cut (without
            it a thin class's signal can die there in training). Needs ``fuse_width > 0``.
        identity_init: initialise the context stream's dilated 3×3 layers as identities.
        zero_init_context: initialise at zero every weight that carries the context into the
            full-resolution path (the fusion layer's and the head's on the context channels, the
            ``every`` projections), so the model starts as the full-resolution net alone and
            learns from the first step how much context to add, as zero-initialised residual
            branches do (the context stream gets gradients once those weights move off zero).
        memory_saver: ``checkpoint`` recomputes each full-resolution block in backward.
    """

    supports_memory_saver = True
    width_args = ("widths", "stem_width", "context_width", "fuse_width")
    full_resolution_path = ("stem", "blocks", "fuse", "head")

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        # every branch built (image pooling, repeated fusion) and random initialisation, so that
        # gradients reach every parameter from the first step
        return dict(
            widths=[8], blocks=2, context_width=8, context_stages=2, context_rates=[1, 2], context_blocks=1, image_pool=True,
            fuse_width=8, fuse_skip=True, fusion="every", identity_init=False, zero_init_context=False,
        )

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 4,
        widths: Sequence[int] = (32,),
        rates: Sequence[int] = (1, 2, 5),
        blocks: int = 3,
        norm: Literal["batch", "group", "none"] = "batch",
        stem_width: int = 0,
        context_width: int = 32,
        context_stages: int = 2,
        context_rates: Sequence[int] = (1, 2, 5, 9),
        context_blocks: int = 2,
        image_pool: bool = False,
        fusion: Literal["end", "every"] = "end",
        fuse_width: int = 16,
        identity_init: bool = True,
        fuse_skip: bool = True,
        zero_init_context: bool = True,
        memory_saver: Literal["none", "checkpoint"] = "none",
    ):
        super().__init__()
        per_block = len(rates)
        widths = expand_widths(widths, blocks, per_block)
        if blocks < 1 or not rates or any(r < 1 for r in rates) or not context_rates or any(r < 1 for r in context_rates):
            raise ValueError(f"need blocks >= 1 and rates >= 1, got blocks={blocks}, rates={tuple(rates)}, context_rates={tuple(context_rates)}")
        if context_width < 0 or (context_width and context_stages < 1) or context_blocks < 0:
            raise ValueError(f"context_width={context_width}, context_stages={context_stages}, context_blocks={context_blocks}: need context_width >= 0 (0: no context), context_stages >= 1 and context_blocks >= 0")
        if fusion not in ("end", "every"):
            raise ValueError(f"fusion={fusion!r}: valid values are end, every")
        if fuse_skip and not fuse_width:
            raise ValueError("fuse_skip=True needs a fusion layer to skip: set fuse_width > 0 or fuse_skip: false")
        if memory_saver not in ("none", "checkpoint"):
            raise ValueError(f"memory_saver={memory_saver!r}: valid values are none, checkpoint")
        make_norm(norm, 1)  # a one-line error for an unknown norm before anything is built
        self.rates = tuple(int(r) for r in rates)
        self.fusion = fusion
        self.memory_saver = memory_saver
        check_gridding(self.rates, blocks, False, stem=1 if stem_width else 0)

        self.stem = ConvNormAct(in_channels, stem_width, norm=norm) if stem_width else nn.Identity()
        channels = stem_width or in_channels
        body, block_inputs = [], []
        for b in range(blocks):
            layer_widths = widths[b * per_block : (b + 1) * per_block]
            block_inputs.append(channels)
            body.append(HDCBlock(channels, layer_widths, self.rates, norm, residual=True))
            channels = layer_widths[-1]
        self.blocks = nn.ModuleList(body)

        self.context = ContextStream(in_channels, context_width, context_stages, context_rates, context_blocks, image_pool, identity_init, norm) if context_width else None
        ctx_channels = self.context.out_channels if self.context is not None else 0
        # 1×1 projections commute with bilinear resampling, so they run at low resolution
        self.inject = nn.ModuleList([nn.Conv2d(ctx_channels, c, 1) for c in block_inputs[1:]]) if self.context is not None and fusion == "every" else None
        head_in = channels + ctx_channels
        self.fuse_skip = fuse_skip
        if fuse_width:
            self.fuse: nn.Module = nn.Sequential(nn.Conv2d(head_in, fuse_width, 1, bias=norm == "none"), make_norm(norm, fuse_width), nn.ReLU(inplace=True))
            head_in = fuse_width + (head_in if fuse_skip else 0)
        else:
            self.fuse = nn.Identity()
        self.head = nn.Conv2d(head_in, num_classes, 1)
        if zero_init_context and self.context is not None:
            with torch.no_grad():
                for conv in [self.head, *([self.fuse[0]] if fuse_width else [])]:
                    conv.weight[:, channels : channels + ctx_channels] = 0
                for conv in self.inject or []:
                    conv.weight.zero_()
                    conv.bias.zero_()

    @property
    def batchnorm_pairs(self) -> tuple[tuple[str, str], ...]:
        """(conv, norm) pairs ``fold_batchnorm`` cannot trace: the fusion layer's norm follows its
        conv through a sum with the context's part (``_fuse_context``), still an affine map of the
        conv's output channels."""
        return (("fuse.0", "fuse.1"),) if isinstance(self.fuse, nn.Sequential) else ()

    @property
    def receptive_field_radius(self) -> int:
        """The full-resolution stream's radius (stem and HDC blocks; the 1×1 fusion and head do not
        widen it). The context stream's reach is unbounded (image pooling), so under tiling it
        comes from ``image_context`` of the whole image instead."""
        return stack_radius(self.rates, len(self.blocks), stem=not isinstance(self.stem, nn.Identity))

    def image_context(self, images: torch.Tensor) -> torch.Tensor | None:
        """The context stream's low-resolution output for the whole image (None: no context stream),
        its pooling stages run on strips of ``CONTEXT_STRIP_ROWS`` rows (on 8000×6000 the whole
        full-resolution stage alone would hold 3 GB)."""
        return self.context(images, strip_rows=CONTEXT_STRIP_ROWS) if self.context is not None else None

    def forward_with_context(self, x: torch.Tensor, context: torch.Tensor | None, offset: tuple[int, int], image_size: tuple[int, int]) -> torch.Tensor:
        """Logits of the tile ``x`` at ``offset`` in an image of ``image_size`` whose context is
        ``context``: the context is resampled at the tile's own pixels of the whole-image upsampling."""
        window = (x.shape[-2], x.shape[-1])
        return self._full_resolution(x, context, lambda c, project: bilinear_window(c, image_size, offset, window, project))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        ctx = self.context(x) if self.context is not None else None
        return self._full_resolution(x, ctx, lambda c, project: F.interpolate(project(c), size=size, mode="bilinear", align_corners=False))

    def _full_resolution(self, x: torch.Tensor, ctx: torch.Tensor | None, upsample: Upsample) -> torch.Tensor:
        """The full-resolution stream and head on ``x``, fused with the low-resolution ``ctx``;
        ``upsample(ctx, project)`` resamples a per-pixel map ``project`` of it to ``x``'s pixels."""
        y = self.stem(x)
        for i, block in enumerate(self.blocks):
            if i > 0 and self.inject is not None:
                y = y + upsample(ctx, self.inject[i - 1])
            if self.memory_saver == "checkpoint" and self.training and torch.is_grad_enabled():
                y = checkpoint(_RecomputeOnce(block), y, use_reentrant=False)
            else:
                y = block(y)
        if ctx is not None:
            return self._fuse_context(y, ctx, upsample)
        if self.fuse_skip:
            return self.head(torch.cat([y, self.fuse(y)], dim=1))
        return self.head(self.fuse(y))

    def _fuse_context(self, y: torch.Tensor, ctx: torch.Tensor, upsample: Upsample) -> torch.Tensor:
        """The fusion layer and head on the concatenation ``[y, upsample(ctx)]``, computed without
        it: their 1×1 maps of the context commute with bilinear upsampling (weights summing to 1),
        so they run at low resolution and one upsampling of their few channels replaces that of
        the whole context and both full-resolution concatenations. Same parameters, same function."""
        n, k = y.shape[1], ctx.shape[1]
        head = self.head
        fuse = self.fuse[0] if isinstance(self.fuse, nn.Sequential) else None
        reads_context = fuse is None or self.fuse_skip  # the head sees the concatenation itself
        low: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        if fuse is not None:
            low.append((fuse.weight[:, n : n + k], fuse.bias))
        if reads_context:
            low.append((head.weight[:, n : n + k], head.bias))
        weight = torch.cat([w for w, _ in low])
        bias = torch.cat([b if b is not None else w.new_zeros(w.shape[0]) for w, b in low])
        parts = upsample(ctx, lambda c: F.conv2d(c, weight, bias)).to(y.dtype).split([w.shape[0] for w, _ in low], dim=1)
        if fuse is None:
            return F.conv2d(y, head.weight[:, :n]) + parts[0]
        fused = self.fuse[2](self.fuse[1](F.conv2d(y, fuse.weight[:, :n]) + parts[0]))
        if not self.fuse_skip:
            return head(fused)
        return F.conv2d(y, head.weight[:, :n]) + F.conv2d(fused, head.weight[:, n + k :]) + parts[1]


def bilinear_window(
    x: torch.Tensor, size: tuple[int, int], offset: tuple[int, int], window: tuple[int, int], project: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """The ``window`` (h, w) at ``offset`` (top, left) of ``F.interpolate(project(x), size,
    mode="bilinear", align_corners=False)``, without computing the rest; within 1e-6 of it (1-2
    float32 ulps). ``project``, a per-pixel map such as a 1×1 conv, runs only on the low-resolution
    pixels the window reads.

    PyTorch's arithmetic, separable, columns first and then rows: output pixel ``i`` reads source
    ``s = max((i + 0.5) * scale - 0.5, 0)`` (``scale = in / out`` in float32, ``s`` rounded once
    to float32) from ``floor(s)`` and the next pixel (clamped to the last) with weights
    ``1 - (s - floor(s))`` and ``s - floor(s)``."""
    taps = {}
    for dim, out_len, start, length in ((3, size[1], offset[1], window[1]), (2, size[0], offset[0], window[0])):
        in_len = x.shape[dim]
        scale = (torch.tensor(in_len, dtype=torch.float32, device=x.device) / out_len).double()
        pixels = torch.arange(start, start + length, dtype=torch.float64, device=x.device)
        source = (scale * (pixels + 0.5) - 0.5).float().clamp_min(0)  # rounded once, as PyTorch's fused multiply-add
        low = source.floor().long().clamp_max(in_len - 1)
        weight = (source - low).clamp(0, 1).view(-1, *[1] * (3 - dim))
        high = (low + 1).clamp_max(in_len - 1)
        first = int(low.min())
        taps[dim] = (first, int(high.max()) + 1, low - first, high - first, weight)
    (top, bottom, *_), (left, right, *_) = taps[2], taps[3]
    out = x[..., top:bottom, left:right]
    if project is not None:
        out = project(out)
    dtype = out.dtype
    for dim in (3, 2):
        _, _, low, high, weight = taps[dim]
        # in place, so a window holds two copies at a time instead of four (tiles are sized from that)
        low_part = out.index_select(dim, low).to(weight.dtype).mul_(1 - weight)
        out = low_part.add_(out.index_select(dim, high).to(weight.dtype).mul_(weight))
    return out.to(dtype)
