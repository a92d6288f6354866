"""The flagship's context paths and the windowed upsampling that makes its tiles exact.

Two context paths, each a module whose output is a low-resolution map the network upsamples to
the input's pixels (``upsample``; ``span``: the size that map spans, so its cells stay aligned to
the pixels, which tiles sample through ``bilinear_window``):

* :class:`ContextStream`: ``stages`` conv+pool stages (stride 2^stages, 4 to 32), HDC blocks at
  that stride and optional image-level pooling.
* :class:`EncoderContext`: BiSeNet's context path, any smp encoder's deepest features (stride
  32), a 1×1 projection and optional image-level pooling.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segdil.errors import SegdilError
from segdil.models.common import ConvNormAct, make_norm
from segdil.models.hdc.model import HDCBlock
from segdil.models.smp.weights import load_encoder_weights, resolve_encoder_weights

ENCODER_DEPTH = 5  # the smp encoder's stages: its deepest features are at stride 2^5 = 32


def image_pool_branch(channels: int) -> nn.Sequential:
    """Image-level pooling (ASPP): a global summary added to every low-resolution position; no
    normalisation, a 1×1 map has no spatial statistics for BatchNorm in a batch of one."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True))


class ContextStream(nn.Module):
    """``stages`` × (3×3 conv, 2×2 max-pool), HDC blocks at that stride, optional image pooling.

    Stage widths double up to ``width`` (e.g. 16, 32, 64). Pooling uses ``ceil_mode`` so any H×W
    works without padding; the caller resamples the result to the exact input size. Any number
    of stages works: 2 (stride 4, the synthetic flagship's) to 5 (stride 32, the street scale,
    where rates 1, 2, 5, 9 span the whole scene and ``image_pool`` adds its average).
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
        self.image_pool = image_pool_branch(channels) if image_pool else None
        self.out_channels = channels

    @staticmethod
    def span(size: tuple[int, int]) -> tuple[int, int]:
        """The input size the low-resolution map is upsampled to: the input's own (ceil-mode pools)."""
        return size

    @staticmethod
    def upsample(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``low`` (this stream's map, or a per-pixel map of it) at the input's ``size``."""
        return F.interpolate(low, size=size, mode="bilinear", align_corners=False)

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


class EncoderContext(nn.Module):
    """BiSeNet's context path: an smp encoder's deepest (stride-32) features, a 1×1 conv+norm+ReLU
    to ``width`` channels and optional image pooling.

    The input is zero-padded (bottom/right) to a multiple of 32 for the encoder only; the map spans
    that padded size (``span``), so the caller upsamples it to the padded size and keeps the
    input's pixels. ``weights`` is smp's ``encoder_weights``
    (:func:`segdil.models.smp.weights.resolve_encoder_weights`: a name fetched when online, a
    local file; offline, or for an unknown name or a missing file, a one-line ``SegdilError``)."""

    def __init__(self, in_channels: int, encoder: str, weights: Optional[str], width: int, image_pool: bool, norm: str):
        super().__init__()
        import segmentation_models_pytorch as smp

        if encoder not in smp.encoders.get_encoder_names():
            raise ValueError(f"context_encoder={encoder!r}: not an smp encoder; see segmentation_models_pytorch.encoders.get_encoder_names()")
        try:  # an unknown name, a missing file, a name not fetchable offline: one line, at once
            name, weights_file = resolve_encoder_weights(encoder, weights)
        except ValueError as exc:
            raise SegdilError(str(exc)) from None
        try:
            self.encoder = smp.encoders.get_encoder(encoder, in_channels=in_channels, depth=ENCODER_DEPTH, weights=name)
        except (OSError, RuntimeError) as exc:  # a download that failed half-way
            raise SegdilError(f"encoder_weights={weights!r}: could not fetch the weights ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
        if weights_file is not None:
            try:
                load_encoder_weights(self.encoder, weights_file, encoder)
            except ValueError as exc:
                raise SegdilError(str(exc)) from None
        self.stride = 2**ENCODER_DEPTH
        self.project = nn.Sequential(nn.Conv2d(self.encoder.out_channels[-1], width, 1, bias=norm == "none"), make_norm(norm, width), nn.ReLU(inplace=True))
        self.image_pool = image_pool_branch(width) if image_pool else None
        self.out_channels = width

    def span(self, size: tuple[int, int]) -> tuple[int, int]:
        """The input size padded up to the encoder's stride: what the low-resolution map covers."""
        return (-(-size[0] // self.stride) * self.stride, -(-size[1] // self.stride) * self.stride)

    def upsample(self, low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``low`` (this path's map, or a per-pixel map of it) upsampled to the padded input it
        spans, cropped to the input's ``size``. By the scale factor, which is exactly the ratio of
        the sizes, so the values are those of ``span`` (and an exported graph resizes any size)."""
        up = F.interpolate(low, scale_factor=self.stride, mode="bilinear", align_corners=False)
        return up[..., : size[0], : size[1]]

    def forward(self, x: torch.Tensor, strip_rows: int = 0) -> torch.Tensor:
        """The context features of ``x`` (``strip_rows`` is accepted and ignored: an encoder's
        reach is not known, so it always runs on the whole input)."""
        height, width = x.shape[-2:]
        # padded unconditionally (often by 0), so an exported graph pads for every size
        x = F.pad(x, (0, (-width) % self.stride, 0, (-height) % self.stride))
        y = self.project(self.encoder(x)[-1])
        if self.image_pool is not None:
            y = y + self.image_pool(y)
        return y


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
