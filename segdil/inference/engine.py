"""The one inference path, shared by ``predict``, ``eval --checkpoint``, ``compare --tta`` and the Python API
(test-time augmentation, :mod:`segdil.inference.tta`, predicts every view through it).

A :class:`Predictor` prepares a model once: BatchNorm folded into the convolutions (``fuse``),
channels_last, bf16 autocast where the hardware computes bf16 natively (``precision: auto``,
the one policy of :mod:`segdil.device`; ``bf16``/``fp32`` force either) and optionally
``torch.compile``. Then, per batch of images:

* **Whole images whenever they fit the memory budget.** The forward's peak memory per pixel is
  measured once, on a small probe input, by following every tensor the forward creates (a
  ``TorchDispatchMode`` that adds storages as they appear and removes them when freed), times
  ``MEMORY_SAFETY`` for what it cannot see (oneDNN/cuDNN scratch). The pixels one forward may
  take are ``memory_budget_mb`` / that figure (``--memory-budget``; default
  ``DEFAULT_MEMORY_BUDGET_MB``, comfortable on a 24 GB machine and on a 16 GB GPU). The image
  itself, its logits and the model's weights are outside the budget.
* **Exact tiles otherwise**, from the model's ``receptive_field_radius`` (analytic, on the
  class): each tile gets ``radius`` pixels of context on every inner side (rounded up to the
  model's ``input_multiple``, with tiles aligned to it on an image zero-padded to it, as the
  model pads internally), and only its core, the part at least that far from an inner cut, is
  kept. The cores partition the image, so tiled logits equal whole-image logits up to
  floating-point reordering. An explicit ``overlap`` sets the shared pixels (twice the margin)
  instead; smaller than twice the radius, seams may differ.
* **Models with image-level context** (``image_context`` on the class): a whole image runs
  ``forward`` as any model; when an image is tiled, the context is computed once, in fp32, on the
  whole (padded) image and outside the memory budget, and handed to every
  tile with the tile's top-left pixel and the image's size (``forward_with_context``), so a
  tile sees the context the whole-image forward gives its pixels (e.g. a low-resolution
  context map resampled at the tile's own pixels); ``receptive_field_radius`` covers the rest.
  Tiled logits equal whole-image logits within atol 1e-5 in fp32 (measured at most 4e-7 on
  a model with image pooling, ``tests/test_fast_inference.py``).
* **bf16 without losing the argmax** (``precision: auto``): weights stored in bf16 once and a
  guard that predicts an image again in fp32 when too many of its pixels have near-tied top two
  classes in bf16, and that runs the rest straight in fp32 once most images needed it
  (:mod:`segdil.inference.precision`; ``fp32_fallbacks`` counts the images run in fp32).
* **Models without a known receptive field** (radius None): tiles overlap by ``overlap``
  (default ``UNKNOWN_RF_OVERLAP``) and are blended with ramps (:func:`segdil.inference.tiling.blend_tiles`,
  within the same budget); such models are run whole whenever the budget allows, which covers
  2048x1024 images by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn

from segdil.device import autocast, check_precision, inference_amp, resolve_device
from segdil.errors import SegdilError
from segdil.inference.live_memory import LiveTensorBytes
from segdil.inference.precision import bf16_network, needs_fp32, settle_on_fp32
from segdil.inference.tiling import blend_tiles
from segdil.models.common import pad_to_multiple

DEFAULT_MEMORY_BUDGET_MB = 4096  # per forward pass; leaves room on a 24 GB machine and a 16 GB GPU
MEMORY_SAFETY = 1.5  # measured live tensors -> what the allocator and kernels' scratch add
UNKNOWN_RF_OVERLAP = 128  # blended overlap for models without a receptive-field bound
PROBE_SIDES = (96, 160)  # sides of the two probe inputs whose peak memories give the bytes per pixel


@dataclass(frozen=True)
class InferenceOptions:
    """How inference runs; the defaults are the fast path (see the module doc)."""

    precision: str = "auto"
    fuse: bool = True
    channels_last: bool = True
    compile: bool = False
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB
    tile: Optional[int] = None  # force tiles of this side (default: from the budget)
    overlap: Optional[int] = None  # pixels shared by neighbouring tiles (default: from the receptive field)

    def check(self) -> None:
        check_precision(self.precision, "precision")
        if self.memory_budget_mb <= 0:
            raise SegdilError(f"memory budget {self.memory_budget_mb} MB: must be positive")
        if self.overlap is not None and self.overlap < 0:
            raise SegdilError(f"overlap={self.overlap}: must be 0 or more pixels")
        if self.tile is not None and self.overlap is not None and self.tile <= self.overlap:
            raise SegdilError(f"tile={self.tile}: must be larger than the overlap ({self.overlap} px); use a larger tile or a smaller overlap")


REFERENCE = InferenceOptions(precision="fp32", fuse=False, channels_last=False)  # the plain eager fp32 forward


def resolve_precision(precision: str, device: torch.device) -> bool:
    """Whether inference runs in bf16 autocast: ``auto`` follows :func:`segdil.device.native_bf16`."""
    return inference_amp(precision, device)


class Predictor:
    """A model prepared for inference on ``device`` with ``options``; ``logits(images)`` predicts.

    The input model is not changed (folding works on a copy; without folding it is moved to the
    device and put in eval mode, and its training flag is restored by ``release``)."""

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", options: InferenceOptions = InferenceOptions()):
        options.check()
        self.options = options
        self.device = resolve_device(device)
        self.amp = resolve_precision(options.precision, self.device)
        self.guard = self.amp and options.precision == "auto"
        self.fp32_fallbacks = 0  # images the guard ran in fp32: re-run, or run straight once settled
        self.guard_checked = 0  # images whose bf16 logits the guard checked
        self._amp_now = self.amp
        self.source = model
        self._was_training = model.training
        if getattr(type(model), "is_classifier", False):
            raise SegdilError(f"{type(model).__name__}: classifies whole images; prediction needs a segmentation model")
        net = model.to(self.device).eval()
        if options.fuse:
            from segdil.inference.fuse import fold_batchnorm

            net = fold_batchnorm(net)
        if options.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net
        self.forward = torch.compile(net) if options.compile else net
        self.net_bf16 = bf16_network(net) if self.amp else None
        self.forward_bf16 = torch.compile(self.net_bf16) if options.compile and self.amp else self.net_bf16
        radius = getattr(model, "receptive_field_radius", None)
        self.radius: Optional[int] = None if radius is None else int(radius)
        self.multiple = int(getattr(model, "input_multiple", 1) or 1)
        self.has_context = _overrides_context(model)
        self._bytes_per_pixel: Optional[float] = None

    def describe(self) -> str:
        """One line: what runs (for logs and ``bench``)."""
        o = self.options
        return f"{'bf16' if self.amp else 'fp32'}, {'BatchNorm folded' if o.fuse else 'unfused'}, {'channels_last' if o.channels_last else 'NCHW'}{', compiled' if o.compile else ''}, budget {o.memory_budget_mb:.0f} MB"

    def release(self) -> None:
        """Restore the input model's training flag (when it was not copied by folding)."""
        self.source.train(self._was_training)

    # -- memory -------------------------------------------------------------------------------
    def bytes_per_pixel(self) -> float:
        """Bytes of tensors alive during a forward per input pixel, times ``MEMORY_SAFETY``: the
        growth of the peak between two probe sizes, so that what does not grow with the image
        (weights, casts) is not counted per pixel."""
        if self._bytes_per_pixel is None:
            peaks, areas = [], []
            amp = self.amp and not self.guard  # a guarded model may run in fp32: budget for that
            net = self.network(amp)[0]
            for side in PROBE_SIDES:
                side = -(-max(side, 2 * self.multiple) // self.multiple) * self.multiple
                probe = torch.zeros(1, 3, side, side)
                # a model with image-level context is measured on the tile path it runs in tiles
                context = self._context(probe)
                with torch.no_grad(), autocast(self.device, amp), LiveTensorBytes() as live:
                    if context is None:
                        net(self._to_device(probe))
                    else:
                        net.forward_with_context(self._to_device(probe), context, (0, 0), (side, side))
                peaks.append(live.peak)
                areas.append(side * side)
            slope = (peaks[1] - peaks[0]) / (areas[1] - areas[0]) if areas[1] > areas[0] else peaks[1] / areas[1]
            self._bytes_per_pixel = MEMORY_SAFETY * max(slope, 1.0)
        return self._bytes_per_pixel

    def pixel_capacity(self) -> int:
        """Input pixels one forward pass may take within the budget."""
        return max(1, int(self.options.memory_budget_mb * 2**20 / self.bytes_per_pixel()))

    def tile_shape(self, height: int, width: int) -> tuple[int, int]:
        """The tile of a ``height`` x ``width`` image (padded to the model's multiple): ``tile`` when
        given, else the largest near-square tile within the budget, each side a multiple of
        ``input_multiple`` and larger than twice the context margin."""
        m = self.multiple
        if self.options.tile is not None:
            side = max(m, self.options.tile // m * m)
            return min(side, height), min(side, width)
        capacity = self.pixel_capacity()
        side = max(m, math.isqrt(capacity) // m * m)
        tile_h = min(side, height)
        tile_w = min(width, max(m, capacity // tile_h // m * m))
        return tile_h, tile_w

    # -- prediction ---------------------------------------------------------------------------
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """float32 logits ``(N, C, H, W)`` on the CPU of normalised images ``(N, 3, H, W)``."""
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if not self.guard:
            return self._logits(images, self.amp)
        if settle_on_fp32(self.guard_checked, self.fp32_fallbacks):
            self.fp32_fallbacks += len(images)
            return self._logits(images, False)
        fast = self._logits(images, True)
        self.guard_checked += len(images)
        rerun = [index for index, logits in enumerate(fast) if needs_fp32(logits)]  # per image
        if not rerun:
            return fast
        self.fp32_fallbacks += len(rerun)
        if len(rerun) == len(images):
            del fast  # not held through the fp32 run: on 8000×6000 the logits alone are 0.8 GB
            return self._logits(images, False)
        fast[rerun] = self._logits(_subset(images, rerun), False)
        return fast

    def _logits(self, images: torch.Tensor, amp: bool) -> torch.Tensor:
        height, width = images.shape[-2:]
        self._amp_now = amp
        try:
            with torch.no_grad():
                if self.options.tile is None and height * width <= self.pixel_capacity():
                    per_pass = max(1, self.pixel_capacity() // (height * width))
                    return torch.cat([self._run(images[i : i + per_pass]).cpu() for i in range(0, len(images), per_pass)])
                return torch.cat([self._tiled(images[i : i + 1]) for i in range(len(images))])
        finally:
            self._amp_now = self.amp

    def margin(self) -> Optional[int]:
        """Context pixels each tile gets on an inner side (a multiple of ``input_multiple``); None:
        no receptive-field bound (blended tiles)."""
        if self.options.overlap is not None:
            half = -(-self.options.overlap // 2)
        elif self.radius is not None:
            half = self.radius
        else:
            return None
        return -(-half // self.multiple) * self.multiple

    def _tiled(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        margin = self.margin()
        if margin is None:
            return self._blended(image)
        padded, _ = pad_to_multiple(image, self.multiple)
        ph, pw = padded.shape[-2:]
        if self.options.tile is None and ph * pw <= self.pixel_capacity():
            return self._run(padded).cpu()[..., :height, :width]
        context = self._context(padded)
        tile_h, tile_w = self.tile_shape(ph, pw)
        for side, length in ((tile_h, ph), (tile_w, pw)):
            if side < length and side <= 2 * margin:
                raise SegdilError(
                    f"tile of {side} px with {margin} px of context per side leaves no core; raise --memory-budget or --tile, or lower --overlap"
                )
        ys, xs = exact_tiles(ph, tile_h, margin), exact_tiles(pw, tile_w, margin)
        boxes = [(y, x) for y in ys for x in xs]
        per_pass = max(1, self.pixel_capacity() // (tile_h * tile_w))
        out: Optional[torch.Tensor] = None
        for start in range(0, len(boxes), per_pass):
            chunk = boxes[start : start + per_pass]
            batch = torch.cat([padded[..., y[0] : y[0] + tile_h, x[0] : x[0] + tile_w] for y, x in chunk])
            logits = self._run(batch, context, [(y[0], x[0]) for y, x in chunk], (ph, pw)).cpu()
            if out is None:
                out = torch.empty(1, logits.shape[1], height, width)
            for ((y0, cy0, cy1), (x0, cx0, cx1)), tile_logits in zip(chunk, logits):
                cy1, cx1 = min(cy1, height), min(cx1, width)
                if cy0 < cy1 and cx0 < cx1:
                    out[0, :, cy0:cy1, cx0:cx1] = tile_logits[:, cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        assert out is not None
        return out

    def _blended(self, image: torch.Tensor) -> torch.Tensor:
        overlap = UNKNOWN_RF_OVERLAP  # no receptive field and no --overlap (an overlap gives exact cores)
        tile_h, tile_w = self.tile_shape(*image.shape[-2:])
        tile = max(min(tile_h, tile_w), overlap + self.multiple)
        return blend_tiles(self._run, image, tile, overlap, self.pixel_capacity())

    def _context(self, image: torch.Tensor) -> Any:
        """``image_context`` of a whole image by the prepared network, in fp32 whatever the
        precision, so bf16 tiles and their fp32 re-run see the same context."""
        if not self.has_context:
            return None
        with torch.no_grad(), autocast(self.device, False):
            return self.net.image_context(self._to_device(image))

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        memory_format = torch.channels_last if self.options.channels_last else torch.contiguous_format
        return batch.to(self.device, torch.float32, non_blocking=True).contiguous(memory_format=memory_format)

    def network(self, amp: bool) -> tuple[nn.Module, Any]:
        """(the prepared network, its forward, compiled or not) of one precision."""
        return (self.net_bf16, self.forward_bf16) if amp and self.net_bf16 is not None else (self.net, self.forward)

    def _run(
        self, batch: torch.Tensor, context: Any = None, offsets: Sequence[tuple[int, int]] = (), image_size: tuple[int, int] = (0, 0), amp: Optional[bool] = None
    ) -> torch.Tensor:
        """Logits of ``batch`` (bf16 when ``amp``, default: the precision now running); with an
        ``image_context``, its tiles lie at ``offsets`` (top, left) in the image of ``image_size``."""
        amp = self._amp_now if amp is None else amp
        net, forward = self.network(amp)
        x = self._to_device(batch)
        with autocast(self.device, amp):
            if context is None:
                out = forward(x)
            else:
                out = torch.cat([net.forward_with_context(x[i : i + 1], context, offset, image_size) for i, offset in enumerate(offsets)])
        if out.ndim != 4 or out.shape[0] != batch.shape[0] or out.shape[-2:] != batch.shape[-2:]:
            raise SegdilError(
                f"{type(self.source).__name__}: returned shape {tuple(out.shape)} for input {tuple(batch.shape)}; "
                "prediction needs a segmentation model that returns (N, C, H, W) logits"
            )
        return out.float()


def _subset(images: torch.Tensor, indices: list[int]) -> torch.Tensor:
    """``images[indices]`` without a copy when that is all of them or one (on 8000×6000 a copy of
    the float image is 0.6 GB, held through the whole forward)."""
    if len(indices) == len(images):
        return images
    if len(indices) == 1:
        return images[indices[0] : indices[0] + 1]
    return images[indices]


def _overrides_context(model: nn.Module) -> bool:
    """Whether the model's class implements ``SegModel.image_context`` (the per-image context hook)."""
    from segdil.models.base import SegModel

    hook = getattr(type(model), "image_context", None)
    return hook is not None and hook is not SegModel.image_context


def exact_tiles(length: int, size: int, margin: int) -> list[tuple[int, int, int]]:
    """(tile start, core start, core end) along one side: the cores (``size - 2 * margin`` long)
    partition ``[0, length)``; each tile holds its core with ``margin`` pixels of context on every
    side that is not the image border. Starts are multiples of the step's divisors (see the module doc)."""
    if size >= length:
        return [(0, 0, length)]
    core = size - 2 * margin
    if core <= 0:
        raise ValueError(f"tile {size} with margin {margin}: no core left")
    tiles = []
    for a in range(0, length, core):
        start = min(max(a - margin, 0), length - size)
        tiles.append((start, a, min(a + core, length)))
    return tiles
