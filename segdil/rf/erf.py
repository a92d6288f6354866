"""Gradient-based effective receptive field (ERF) of a real model.

The ERF is |∂ y_centre / ∂ x| summed over input channels, where y_centre is the sum of the class
scores at the centre output pixel and x a random normal input, averaged over a few inputs. The
model runs in eval mode, so BatchNorm uses its running statistics and couples no pixels; GroupNorm
computes statistics over the whole image and so spreads a small gradient everywhere.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from segdil.rf.analysis import RFReport


def effective_receptive_field(model: nn.Module, size: int, in_channels: int = 3, samples: int = 1, seed: int = 0, device: str | torch.device = "cpu") -> np.ndarray:
    """(size, size) map of |∂ centre output / ∂ input| summed over channels, averaged over ``samples``."""
    model = model.to(device).eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, in_channels, size, size, generator=generator).to(device).requires_grad_(True)
    out = model(x)
    if out.ndim != 4 or tuple(out.shape[-2:]) != (size, size):
        raise ValueError(f"the ERF needs a segmentation model with (N, C, H, W) output at the input size; got output shape {tuple(out.shape)} for input {tuple(x.shape)}")
    out[:, :, size // 2, size // 2].sum().backward()
    return x.grad.detach().abs().sum(1).mean(0).double().cpu().numpy()


def default_size(report: RFReport | None) -> int:
    """Input side for the ERF: the analytic RF plus a margin, a multiple of 32; 128 without one."""
    if report is None:
        return 128
    return 32 * math.ceil((report.receptive_field + 16) / 32)


def erf_summary(erf: np.ndarray, report: RFReport | None = None) -> dict[str, Any]:
    """Extent (larger side of the bounding box) of the nonzero gradient, the centred square holding 95% of it, and, against an
    analytic ``report``: the share inside its receptive field and the holes that got gradient."""
    h, w = erf.shape
    cy, cx = h // 2, w // 2
    ys, xs = np.nonzero(erf)
    total = float(erf.sum())
    summary: dict[str, Any] = {"size": h, "total": total}
    if ys.size == 0:
        return {**summary, "extent": 0, "side_95": 0}
    summary["extent"] = int(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1)
    # chebyshev distance of every pixel from the centre: mass within radius r is a cumulative sum
    yy, xx = np.mgrid[:h, :w]
    ring = np.maximum(np.abs(yy - cy), np.abs(xx - cx))
    mass = np.bincount(ring.ravel(), weights=erf.ravel())
    summary["side_95"] = int(2 * np.searchsorted(np.cumsum(mass), 0.95 * total) + 1)
    if report is not None:
        r = report.receptive_field // 2
        inside = erf[max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1]
        summary["inside_rf"] = float(inside.sum() / total) if total else 0.0
        summary["nonzero_outside_rf"] = int(np.count_nonzero(erf) - np.count_nonzero(inside))
        holes = [(cy + dy, cx + dx) for dy, dx in report.hole_offsets() if 0 <= cy + dy < h and 0 <= cx + dx < w] if report.gridding else []
        summary["holes_with_gradient"] = int(sum(erf[y, x] != 0 for y, x in holes))
    return summary
