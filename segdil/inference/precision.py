"""bf16 inference that stays within 0.1 % of the fp32 argmax: the bf16 network and the guard.

**The bf16 network** is a copy of the prepared fp32 network with its weights stored in bf16 once
(autocast would cast every weight again on every forward: for a 14 M-parameter U-Net that is
a tenth of its bf16 forward time and memory the budget would count per pixel). The
convolutions that read the image keep fp32 weights and run in fp32: rounding the normalised
image itself to bf16 is a large share of the error bf16 makes (about a fifth of the flipped
pixels of the HDC and FCN-8s demo checkpoints) for about 1 % of the FLOPs.

**The guard.** bf16 changes logits by a little, which flips the argmax only where the top two
classes are nearly tied. Per image, fp32 and bf16 forwards of ``GUARD_GRID`` crops of
``GUARD_CROP`` px spread over it give the distribution of how far bf16 moves the margin between
its top two classes (one central crop saw errors up to 3× smaller than the image's). An error
flips a pixel only when it shrinks the margin, so the expected share of flipped pixels is the
mean, over pixels, of half the calibrated share of errors larger than the pixel's margin. The
image runs in bf16 when that estimate, over the crops' own pixels, is at most
``GUARD_FRACTION`` (half the 0.1 % the agreement test allows); it is estimated again on the
whole image's bf16 logits, and above ``GUARD_FRACTION`` the image is predicted again in fp32.
An image whose crops already say "too many near-ties" runs in fp32 at once, so a model that
is near-tied everywhere pays for fp32 once, not for bf16 and then fp32.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

GUARD_CROP = 64  # side of each calibration crop
GUARD_GRID = (3, 3)  # rows x columns of calibration crops spread over the image
GUARD_FRACTION = 5e-4  # expected share of flipped pixels above which an image runs in fp32


class FP32Input(nn.Module):
    """A convolution that reads the image, run in fp32 inside a bf16 network."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.conv(x.float())


def bf16_network(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with bf16 weights, except the convolutions that read the image (their
    input channels equal the first convolution's), wrapped in :class:`FP32Input`."""
    copied = copy.deepcopy(net)
    convs = [(name, module) for name, module in copied.named_modules() if isinstance(module, nn.Conv2d)]
    image_channels = convs[0][1].in_channels if convs else None
    inputs = [(name, module) for name, module in convs if module.in_channels == image_channels]
    copied.to(torch.bfloat16)
    for name, module in inputs:
        module.float()
        parent_name, _, attr = name.rpartition(".")
        setattr(copied.get_submodule(parent_name) if parent_name else copied, attr, FP32Input(module))
    return copied


def calibration_boxes(height: int, width: int, multiple: int) -> list[tuple[int, int, int, int]]:
    """(top, left, crop height, crop width) of the ``GUARD_GRID`` crops, centred on the cells of
    an even grid and aligned to ``multiple`` (crops overlap on small images)."""
    crop_h, crop_w = (max(multiple, min(side, GUARD_CROP) // multiple * multiple) for side in (height, width))
    rows, cols = GUARD_GRID
    boxes = []
    for r in range(rows):
        for c in range(cols):
            top = min(max(0, int((r + 0.5) * height / rows) - crop_h // 2), height - crop_h) // multiple * multiple
            left = min(max(0, int((c + 0.5) * width / cols) - crop_w // 2), width - crop_w) // multiple * multiple
            boxes.append((top, left, crop_h, crop_w))
    return boxes


def top2_margin(logits: torch.Tensor) -> torch.Tensor:
    """Flattened margins between the top two classes of logits ``(N, C, H, W)`` or ``(C, H, W)``."""
    top2 = logits.topk(2, dim=-3).values
    return (top2.select(-3, 0) - top2.select(-3, 1)).flatten().contiguous()


def margin_errors(reference: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
    """Sorted per-pixel errors ``fast`` (bf16) makes in the margin between its top two classes."""
    top2 = fast.topk(2, dim=1).indices
    difference = (fast - reference).gather(1, top2)
    return (difference[:, 0] - difference[:, 1]).abs().flatten().sort().values.contiguous()


def expected_flips(errors: torch.Tensor, margins: torch.Tensor) -> float:
    """Expected share of pixels whose argmax bf16 flips: per pixel, half the share of calibrated
    margin ``errors`` (sorted) larger than its top-two margin, averaged over ``margins``."""
    larger = len(errors) - torch.searchsorted(errors, margins, right=True)
    return 0.5 * float(larger.float().mean()) / len(errors)


def calibrate(image: torch.Tensor, multiple: int, run: Callable[[torch.Tensor, list[tuple[int, int]], bool], torch.Tensor]) -> tuple[torch.Tensor, float]:
    """(sorted margin errors, expected share of flips over the crops' own pixels) of one image
    ``(1, 3, H, W)``; ``run(crops, offsets, bf16)`` gives the logits of a batch of crops."""
    boxes = calibration_boxes(*image.shape[-2:], multiple)
    crops = torch.cat([image[..., y : y + h, x : x + w] for y, x, h, w in boxes])
    offsets = [(y, x) for y, x, _, _ in boxes]
    reference, fast = run(crops, offsets, False), run(crops, offsets, True)
    errors = margin_errors(reference, fast)
    return errors, expected_flips(errors, top2_margin(fast))
