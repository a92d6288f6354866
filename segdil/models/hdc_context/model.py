"""The flagship: the full-resolution HDC stream plus a low-resolution context stream.

A full-resolution stack sees only its receptive field (33-65 px), so it cannot tell a small object
from a look-alike patch of background when only the surroundings decide. The context path
(``context.py``) is either a stream that pools to stride 2^``context_stages`` (4 to 32), runs
wide-rate HDC blocks there and optionally an image-level pooling branch (off by default), or,
with ``context_encoder``, any smp encoder's stride-32 features (BiSeNet's context path); it is
upsampled and fused with the full-resolution features before the pixel-wise head.
The full-resolution path (``stem``, ``blocks``, ``fuse``, ``head``) never pools, strides or
resamples: a 2-pixel object is still 2 pixels wide where the head classifies it.

Tiled inference is exact for every context path: ``image_context`` runs it once on the whole
image, and ``forward_with_context`` runs the full-resolution path on a tile, sampling that
low-resolution map at the tile's own pixels of the whole-image upsampling (``bilinear_window``);
the tile context it needs is the full-resolution stream's ``receptive_field_radius``.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from segdil.models.base import SegModel
from segdil.models.common import ConvNormAct, RecomputeOnce, expand_widths, make_norm
from segdil.models.hdc.model import HDCBlock, check_gridding, stack_radius
from segdil.models.hdc_context.context import ContextStream, EncoderContext, bilinear_window

__all__ = ["HDCContextNet", "bilinear_window"]

Upsample = Callable[[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]
CONTEXT_STRIP_ROWS = 256  # rows per strip of the context stream's pooling stages in ``image_context``


class HDCContextNet(SegModel):
    """Full-resolution HDC network with a low-resolution context stream fused back at full size.

    The defaults are the shipped flagship (``configs/hdc-context_synth.yaml`` is ``model: {name:
    hdc_context}``): 3 blocks of 32 channels, the context at stride 4 and 32 wide without image
    pooling, a 16-wide fusion layer with ``fuse_skip``, identity and zero initialisation. The
    street flagship (``configs/street/hdc-context.yaml``) moves the context to stride 16 with
    image pooling; ``configs/street/hdc-context-r18.yaml`` uses a ResNet-18 context path.

    Args:
        in_channels: input image channels.
        num_classes: output classes of the 1×1 head.
        widths: channels of the full-resolution stream: one value, one per block or one per layer.
        rates: dilation rates of one full-resolution HDC group.
        blocks: full-resolution HDC blocks (residual).
        norm: ``batch``, ``group`` or ``none``.
        stem_width: channels of an undilated 3×3 stem at full resolution (0: none).
        context_width: channels of the context path at its lowest resolution (0: no context
            path at all; the model is then the plain full-resolution HDC net).
        context_stages: conv+pool stages of the context stream: its stride is 2**stages, 2 (4,
            the synthetic flagship's) to 5 (32, the whole of a street scene with
            ``image_pool``). Ignored with ``context_encoder``.
        context_rates: dilation rates of the context HDC groups (wider than the full-resolution
            ones: at stride 8, rates 1, 2, 5, 9 span about 300 input pixels per block; at
            stride 16, about 560). Ignored with ``context_encoder``.
        context_blocks: HDC blocks in the context stream. Ignored with ``context_encoder``.
        image_pool: add an image-level average (ASPP's image pooling) to the context features.
        fusion: ``end`` concatenates the upsampled context with the full-resolution features once,
            before the head; ``every`` also adds a 1×1 projection of it to the input of every
            full-resolution block after the first (FRRN-style repeated fusion).
        fuse_width: channels of the 1×1 conv+norm+ReLU applied to the concatenation before the
            head (0: the head reads the concatenation directly, a purely additive fusion).
        fuse_skip: the head also reads the concatenation itself beside the fusion layer's output:
            a linear path to every class that dead ReLUs of the fusion layer cannot cut (without
            it a thin class's signal can die there in training). Needs ``fuse_width > 0``.
        identity_init: initialise the context stream's dilated 3×3 layers as identities
            (no effect with ``context_encoder``).
        zero_init_context: initialise at zero every weight that carries the context into the
            full-resolution path (the fusion layer's and the head's on the context channels, the
            ``every`` projections), so the model starts as the full-resolution net alone and
            learns from the first step how much context to add, as zero-initialised residual
            branches do (the context stream gets gradients once those weights move off zero).
        memory_saver: ``checkpoint`` recomputes each full-resolution block in backward.
        context_encoder: None (the conv+pool context stream), or the name of an smp encoder
            (e.g. ``resnet18``) whose deepest, stride-32 features, 1×1-projected to
            ``context_width``, are the context path (BiSeNet's context path beside a true
            full-resolution spatial path); only the encoder's input is padded to a multiple of 32.
        encoder_weights: weights of ``context_encoder``, as smp takes them: None (random
            initialisation), a name smp knows (``imagenet``; fetched when online, one clear error
            offline) or the path of a local encoder state_dict file (.pth, .safetensors).
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
        context_encoder: Optional[str] = None,
        encoder_weights: Optional[str] = None,
    ):
        super().__init__()
        per_block = len(rates)
        widths = expand_widths(widths, blocks, per_block)
        _check_arguments(blocks, rates, context_width, context_stages, context_rates, context_blocks, fusion, fuse_width, fuse_skip, memory_saver, context_encoder, encoder_weights)
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

        self.context: ContextStream | EncoderContext | None = None
        if context_encoder is not None:
            self.context = EncoderContext(in_channels, context_encoder, encoder_weights, context_width, image_pool, norm)
        elif context_width:
            self.context = ContextStream(in_channels, context_width, context_stages, context_rates, context_blocks, image_pool, identity_init, norm)
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
        widen it), which is what the contract asks for: the reach *not counting* ``image_context``.
        The context path's reach is unbounded (image pooling) or unknown (an smp encoder), and
        every tile gets it from ``image_context`` of the whole image instead, so tiles with this
        radius of context are exact for every context path (a None here would make the tiler
        blend overlapping tiles, each with a context of its own, instead)."""
        return stack_radius(self.rates, len(self.blocks), stem=not isinstance(self.stem, nn.Identity))

    def image_context(self, images: torch.Tensor) -> torch.Tensor | None:
        """The context path's low-resolution output for the whole image (None: no context path).
        The conv+pool stream runs its pooling stages on strips of ``CONTEXT_STRIP_ROWS`` rows (on
        8000×6000 the whole full-resolution stage alone would hold 3 GB); an smp encoder runs on
        the whole image at once (its reach is not known, so strips could not be exact)."""
        return self.context(images, strip_rows=CONTEXT_STRIP_ROWS) if self.context is not None else None

    def forward_with_context(self, x: torch.Tensor, context: torch.Tensor | None, offset: tuple[int, int], image_size: tuple[int, int]) -> torch.Tensor:
        """Logits of the tile ``x`` at ``offset`` in an image of ``image_size`` whose context is
        ``context``: the context is resampled at the tile's own pixels of the whole-image upsampling."""
        window = (x.shape[-2], x.shape[-1])
        span = self.context.span(image_size) if self.context is not None else image_size
        return self._full_resolution(x, context, lambda c, project: bilinear_window(c, span, offset, window, project))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.context
        if context is None:
            return self._full_resolution(x, None, _no_upsample)
        size = x.shape[-2:]
        return self._full_resolution(x, context(x), lambda c, project: context.upsample(project(c), size))

    def _full_resolution(self, x: torch.Tensor, ctx: torch.Tensor | None, upsample: Upsample) -> torch.Tensor:
        """The full-resolution stream and head on ``x``, fused with the low-resolution ``ctx``;
        ``upsample(ctx, project)`` resamples a per-pixel map ``project`` of it to ``x``'s pixels."""
        y = self.stem(x)
        for i, block in enumerate(self.blocks):
            if i > 0 and self.inject is not None:
                y = y + upsample(ctx, self.inject[i - 1])
            if self.memory_saver == "checkpoint" and self.training and torch.is_grad_enabled():
                y = checkpoint(RecomputeOnce(block), y, use_reentrant=False)
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


def _no_upsample(ctx: torch.Tensor, project: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    raise AssertionError("no context path: nothing to upsample")


def _check_arguments(
    blocks: int, rates: Sequence[int], context_width: int, context_stages: int, context_rates: Sequence[int], context_blocks: int,
    fusion: str, fuse_width: int, fuse_skip: bool, memory_saver: str, context_encoder: Optional[str], encoder_weights: Optional[str],
) -> None:
    """One-line ValueErrors naming the argument, before anything is built."""
    if blocks < 1 or not rates or any(r < 1 for r in rates) or not context_rates or any(r < 1 for r in context_rates):
        raise ValueError(f"need blocks >= 1 and rates >= 1, got blocks={blocks}, rates={tuple(rates)}, context_rates={tuple(context_rates)}")
    if context_width < 0 or (context_width and context_stages < 1) or context_blocks < 0:
        raise ValueError(f"context_width={context_width}, context_stages={context_stages}, context_blocks={context_blocks}: need context_width >= 0 (0: no context), context_stages >= 1 and context_blocks >= 0")
    if context_encoder is not None and not context_width:
        raise ValueError(f"context_encoder={context_encoder!r} needs context_width > 0 (the channels its features are projected to)")
    if encoder_weights is not None and context_encoder is None:
        raise ValueError(f"encoder_weights={encoder_weights!r} needs a context_encoder (e.g. context_encoder: resnet18)")
    if fusion not in ("end", "every"):
        raise ValueError(f"fusion={fusion!r}: valid values are end, every")
    if fuse_skip and not fuse_width:
        raise ValueError("fuse_skip=True needs a fusion layer to skip: set fuse_width > 0 or fuse_skip: false")
    if memory_saver not in ("none", "checkpoint"):
        raise ValueError(f"memory_saver={memory_saver!r}: valid values are none, checkpoint")
