"""bf16 inference that stays within 0.1 % of the fp32 argmax: the bf16 network and the guard.

**The bf16 network** is a copy of the prepared fp32 network with its weights stored in bf16 once
(autocast would cast every weight again on every forward: for a 14 M-parameter U-Net that is
a tenth of its bf16 forward time, and memory the budget would count per pixel).

**The guard.** bf16 changes logits by a little, which flips the argmax only where the top two
classes are nearly tied. Per image, fp32 and bf16 forwards of ``GUARD_GRID`` crops of
``GUARD_CROP`` px spread over it give the distribution of how far bf16 moves the margin between
its top two classes (one central crop saw errors up to 3× smaller than the whole image's), kept
apart for each pair of classes seen on at least ``MIN_PAIR_PIXELS`` crop pixels (bf16's error in a
margin can depend on which two classes it separates); a pixel of a rarer pair is compared with
the errors of all crop pixels. An error flips a
pixel only when it shrinks the margin, so the expected share of flipped pixels is the mean,
over the image's pixels, of half the share of its class pair's calibrated errors larger than
the pixel's bf16 margin. Above ``GUARD_FRACTION``, the 0.1 % the agreement test allows, the
image is predicted again in fp32. The estimate is rough: on 99 images (three 2048×1024 photos
through 33 checkpoints of seven models) it was 0.48 to 2.4 times the measured share of flipped
pixels. Of the 25 images whose bf16 flips exceeded 0.1 %, one kept bf16 (0.127 % flipped,
0.0985 % estimated); of the other 74, 9 were re-run in fp32 without need (12 with the errors of
all pairs pooled, the estimate before per-pair errors).
An image whose crops alone, over their own pixels, expect more than ``PRECHECK_FACTOR`` times that
(a barely trained model, near-tied everywhere) runs in fp32 at once instead of paying for bf16 and
then fp32 (the crops' estimate runs high: their borders, cut from the image, hold near-ties the
image does not).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

GUARD_CROP = 64  # side of each calibration crop
GUARD_GRID = (3, 3)  # rows x columns of calibration crops spread over the image
GUARD_FRACTION = 1e-3  # expected share of flipped pixels above which an image runs in fp32
PRECHECK_FACTOR = 4  # crops expecting this many times GUARD_FRACTION: fp32 at once
MIN_PAIR_PIXELS = 200  # calibration pixels of a class pair below which its errors are pooled with all


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


def top2(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(flattened margins between the top two classes, flattened ids of that unordered class
    pair) of logits ``(N, C, H, W)`` or ``(C, H, W)``. With one class nothing can flip: infinite
    margins."""
    if logits.shape[-3] < 2:
        shape = logits.select(-3, 0).flatten().shape
        return torch.full(shape, torch.inf, device=logits.device), torch.zeros(shape, dtype=torch.long, device=logits.device)
    values, indices = logits.topk(2, dim=-3)
    return (values.select(-3, 0) - values.select(-3, 1)).flatten().contiguous(), _pair_ids(indices, logits.shape[-3])


def _pair_ids(indices: torch.Tensor, classes: int) -> torch.Tensor:
    """Flattened ids of the unordered class pairs of top-two ``indices`` (``2`` along dim -3)."""
    first, second = indices.select(-3, 0), indices.select(-3, 1)
    return (torch.minimum(first, second) * classes + torch.maximum(first, second)).flatten()


@dataclass
class MarginErrors:
    """How far bf16 moved the margin between the top two classes on the calibration pixels,
    sorted: for each class pair seen on at least ``MIN_PAIR_PIXELS`` of them (``by_pair``) and
    for all of them together (``pooled``: what a pixel of a rarer pair is compared with)."""

    pooled: torch.Tensor
    by_pair: dict[int, torch.Tensor] = field(default_factory=dict)


def margin_errors(reference: torch.Tensor, fast: torch.Tensor) -> MarginErrors:
    """The errors ``fast`` (bf16) makes in the margin between its top two classes, per class pair,
    from logits ``(N, C, H, W)``."""
    if fast.shape[1] < 2:
        return MarginErrors(torch.zeros(1))
    indices = fast.topk(2, dim=1).indices
    difference = (fast - reference).gather(1, indices)
    errors = (difference[:, 0] - difference[:, 1]).abs().flatten()
    pairs = _pair_ids(indices, fast.shape[1])
    ids, counts = pairs.unique(return_counts=True)
    by_pair = {pair: errors[pairs == pair].sort().values.contiguous() for pair in ids[counts >= MIN_PAIR_PIXELS].tolist()}
    return MarginErrors(errors.sort().values.contiguous(), by_pair)


def expected_flips(errors: MarginErrors, margins: torch.Tensor, pairs: torch.Tensor) -> float:
    """Expected share of pixels whose argmax bf16 flips: per pixel, half the share of calibrated
    margin ``errors`` of its class pair (``pairs``) larger than its top-two margin, averaged over
    ``margins``."""
    return 0.5 * _sum_larger(errors, margins, pairs) / len(margins)


def image_expected_flips(errors: MarginErrors, logits: torch.Tensor, chunk_pixels: int = 1 << 20) -> float:
    """``expected_flips`` over every pixel of one image's logits ``(C, H, W)``, in chunks of rows
    (on 8000×6000 the top-two values and indices of the whole image would hold 1.2 GB)."""
    rows = max(1, chunk_pixels // logits.shape[-1])
    larger = sum(_sum_larger(errors, *top2(logits[..., top : top + rows, :])) for top in range(0, logits.shape[-2], rows))
    return 0.5 * larger / (logits.shape[-2] * logits.shape[-1])


def _sum_larger(errors: MarginErrors, margins: torch.Tensor, pairs: torch.Tensor) -> float:
    """Sum over ``margins`` of the share of the errors of each one's class pair that exceed it.

    One search for every pixel at once, whatever the number of pairs: the groups' sorted errors
    are concatenated, each keyed by (group, the float's bits), which sort as the floats do for
    values >= 0, and each margin is searched with its own group's key."""
    if not len(margins):
        return 0.0
    margins = margins.float()
    if not errors.by_pair:
        pooled = errors.pooled.to(margins.device)
        return float((len(pooled) - torch.searchsorted(pooled, margins, right=True)).sum()) / len(pooled)
    groups = [*errors.by_pair.values(), errors.pooled]
    keys = torch.cat([_group_keys(g, torch.tensor(i, device=g.device)) for i, g in enumerate(groups)]).to(margins.device)
    # pair id -> its group; pairs without errors of their own (ids past the table too) -> pooled
    lookup = torch.full((max(errors.by_pair) + 2,), len(groups) - 1, dtype=torch.long, device=pairs.device)
    lookup[list(errors.by_pair)] = torch.arange(len(errors.by_pair), device=pairs.device)
    group = lookup[pairs.clamp(max=len(lookup) - 1)].to(margins.device)
    position = torch.searchsorted(keys, _group_keys(margins, group), right=True)
    # per group: its pixels' errors past their positions (the group's end - position), summed
    lengths = torch.tensor([len(g) for g in groups], dtype=torch.float64, device=margins.device)
    pixels = torch.bincount(group, minlength=len(groups)).double()
    positions = torch.bincount(group, weights=position.double(), minlength=len(groups))
    return float(((pixels * lengths.cumsum(0) - positions) / lengths).sum())


def _group_keys(values: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """int64 keys ``group << 32 | bits(|value|)``: ordered by group, then by value (the bits of a
    float >= 0 order as the float does; ``abs`` makes -0.0 into 0.0)."""
    return (group.long() << 32) | values.float().abs().view(torch.int32).long()


def calibrate(image: torch.Tensor, multiple: int, run: Callable[[torch.Tensor, bool], torch.Tensor]) -> tuple[MarginErrors, float]:
    """(margin errors, expected share of flips over the crops' own pixels) of one image
    ``(1, 3, H, W)``; ``run(crops, bf16)`` gives the logits of a batch of crops."""
    boxes = calibration_boxes(*image.shape[-2:], multiple)
    crops = torch.cat([image[..., y : y + h, x : x + w] for y, x, h, w in boxes])
    # on the CPU, where the image's estimate is computed (its logits come back to the CPU)
    reference, fast = run(crops, False).cpu(), run(crops, True).cpu()
    errors = margin_errors(reference, fast)
    return errors, expected_flips(errors, *top2(fast))
