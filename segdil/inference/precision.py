"""bf16 inference that stays within 0.1 % of the fp32 argmax: the bf16 network and the guard.

**The bf16 network** is a copy of the prepared fp32 network with its weights stored in bf16 once
(autocast would cast every weight again on every forward, costing time and memory the budget
would count per pixel).

**The guard.** bf16 changes logits by a little, which flips the argmax only where the top two
classes are nearly tied. bf16 rounds relative to a value's size, so its errors in the logits grow
with their scale: a pixel counts as near-tied when the gap between its top two bf16 logits is
below ``NEAR_TIE`` times the image's logit scale (the mean over its pixels of the largest
absolute logit). An image with more than ``RERUN_SHARE`` of its pixels near-tied is predicted
again in fp32. No calibration crops and no per-class statistics: the constants are fixed, chosen
so that every registered model and trained checkpoints of the benchmarks kept at least 99.9 % of
pixels equal to fp32 (docs/performance.md gives the measured agreement and re-runs). The rule is
a heuristic, not a bound: a model whose bf16 errors run larger than those measured could flip
more.

**Settling on fp32.** A re-run image pays a bf16 and an fp32 forward. Once more than
``SETTLE_SHARE`` of at least ``SETTLE_AFTER`` checked images were re-run, the rest of the run goes
straight to fp32 (exact, and cheaper than trying bf16 first: on the street flagship the bf16
forward is 0.6× the fp32 one, so trying first loses once more than about 40 % of images re-run).
So whether an image runs in bf16 may depend on the images before it in a run (a Predictor's
lifetime); ``precision: fp32`` or ``bf16`` fixes the path for every image.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

NEAR_TIE = 0.005  # top-two gap, as a share of the image's logit scale, below which a pixel is near-tied
RERUN_SHARE = 1.5e-3  # share of near-tied pixels above which an image is predicted again in fp32
SETTLE_AFTER = 2  # images the guard checks before it may settle on fp32 for the rest of a run
SETTLE_SHARE = 0.5  # share of checked images re-run above which it settles


def bf16_network(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with its parameters and buffers in bf16 (run it under bf16 autocast)."""
    return copy.deepcopy(net).to(torch.bfloat16)


def near_tied_share(logits: torch.Tensor, chunk_pixels: int = 1 << 20) -> float:
    """Share of the pixels of one image's logits ``(C, H, W)`` whose top two logits are closer than
    ``NEAR_TIE`` times the image's logit scale, in chunks of rows (on 8000×6000 the top-two values
    and indices of the whole image would hold 1.2 GB). With one class nothing can flip: 0."""
    classes, height, width = logits.shape
    if classes < 2:
        return 0.0
    rows = max(1, chunk_pixels // width)
    chunks = [logits[:, top : top + rows] for top in range(0, height, rows)]
    scale = sum(float(chunk.abs().amax(0).sum(dtype=torch.float64)) for chunk in chunks) / (height * width)
    near = 0
    for chunk in chunks:
        top2 = chunk.topk(2, dim=0).values
        near += int((top2[0] - top2[1] < NEAR_TIE * scale).sum())
    return near / (height * width)


def needs_fp32(logits: torch.Tensor) -> bool:
    """Whether one image's bf16 logits ``(C, H, W)`` are near-tied on more than ``RERUN_SHARE`` of
    its pixels: the guard predicts it again in fp32."""
    return near_tied_share(logits) > RERUN_SHARE


def settle_on_fp32(checked: int, rerun: int) -> bool:
    """Whether a guarded run stops trying bf16 first: ``rerun`` of ``checked`` images so far were
    predicted again in fp32, more than ``SETTLE_SHARE`` of at least ``SETTLE_AFTER``."""
    return checked >= SETTLE_AFTER and rerun > SETTLE_SHARE * checked
