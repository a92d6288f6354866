"""bf16 inference that stays within 0.1 % of the fp32 argmax: the bf16 network and the guard.

**The bf16 network** is a copy of the prepared fp32 network with its weights stored in bf16 once
(autocast would cast every weight again on every forward: for a 14 M-parameter U-Net that is
a tenth of its bf16 forward time, and memory the budget would count per pixel).

**The guard.** bf16 changes logits by a little, which flips the argmax only where the top two
classes are nearly tied. Per image, fp32 and bf16 forwards of ``GUARD_GRID`` crops of
``GUARD_CROP`` px spread over it give the distribution of how far bf16 moves the margin between
its top two classes (one central crop saw errors up to 3× smaller than the whole image's). An
error flips a pixel only when it shrinks the margin, so the expected share of flipped pixels is
the mean, over the image's pixels, of half the calibrated share of errors larger than the
pixel's bf16 margin. Above ``GUARD_FRACTION``, the 0.1 % the agreement test allows, the image
is predicted again in fp32. The estimate is rough: on the ``make demo`` checkpoints of four
models and three 2048×1024 photos it was 0.58 to 2.0 times the measured share of flipped pixels
(too high for the flagship and FCN-8s, too low for the HDC net), so an image whose true share
is up to about 0.17 % may keep bf16, and FCN-8s and flagship images at 0.06-0.09 % are re-run.
An image whose crops alone, over their own pixels, expect more than ``PRECHECK_FACTOR`` times that
(a barely trained model, near-tied everywhere) runs in fp32 at once instead of paying for bf16 and
then fp32 (the crops' estimate runs high: their borders, cut from the image, hold near-ties the
image does not).
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

GUARD_CROP = 64  # side of each calibration crop
GUARD_GRID = (3, 3)  # rows x columns of calibration crops spread over the image
GUARD_FRACTION = 1e-3  # expected share of flipped pixels above which an image runs in fp32
PRECHECK_FACTOR = 4  # crops expecting this many times GUARD_FRACTION: fp32 at once


def bf16_network(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with its parameters and buffers in bf16 (run it under bf16 autocast)."""
    return copy.deepcopy(net).to(torch.bfloat16)


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
    return 0.5 * _count_larger(errors, margins) / len(margins) / len(errors)


def image_expected_flips(errors: torch.Tensor, logits: torch.Tensor, chunk_pixels: int = 1 << 20) -> float:
    """``expected_flips`` over every pixel of one image's logits ``(C, H, W)``, in chunks of rows
    (on 8000×6000 the top-two values and indices of the whole image would hold 1.2 GB)."""
    rows = max(1, chunk_pixels // logits.shape[-1])
    larger = sum(_count_larger(errors, top2_margin(logits[..., top : top + rows, :])) for top in range(0, logits.shape[-2], rows))
    return 0.5 * larger / (logits.shape[-2] * logits.shape[-1]) / len(errors)


def _count_larger(errors: torch.Tensor, margins: torch.Tensor) -> int:
    """Sum over ``margins`` of how many of the sorted ``errors`` exceed each."""
    return int((len(errors) - torch.searchsorted(errors, margins, right=True)).sum())


def calibrate(image: torch.Tensor, multiple: int, run: Callable[[torch.Tensor, bool], torch.Tensor]) -> tuple[torch.Tensor, float]:
    """(sorted margin errors, expected share of flips over the crops' own pixels) of one image
    ``(1, 3, H, W)``; ``run(crops, bf16)`` gives the logits of a batch of crops."""
    boxes = calibration_boxes(*image.shape[-2:], multiple)
    crops = torch.cat([image[..., y : y + h, x : x + w] for y, x, h, w in boxes])
    reference, fast = run(crops, False), run(crops, True)
    errors = margin_errors(reference, fast)
    return errors, expected_flips(errors, top2_margin(fast))
