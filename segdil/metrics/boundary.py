"""Boundary IoU per class (Cheng et al., "Boundary IoU: Improving Object-Centric Image Segmentation
Evaluation", CVPR 2021), accumulated over images like the confusion matrix.

For a binary mask G the *boundary region* G_d is the set of pixels of G within distance d of its
contour: G minus its erosion by a (2d+1)×(2d+1) square, the image border counting as contour
(the paper's code pads the mask with one row and column of zeros and erodes d times with a 3×3
square, which is the same set). For class c of one image, with G = (gt == c) and
P = (pred == c) restricted to non-ignored pixels,

    I_c += |G_d ∩ P_d|,   U_c += |G_d ∪ P_d|,   Boundary IoU_c = I_c / U_c over the evaluated set.

d defaults to 2 % of the image diagonal, rounded, at least 1 px (the paper's ``dilation_ratio``),
or a fixed number of pixels. Ignored pixels belong to neither mask, so they are never counted
and a class's region next to an ignored area is contour for ground truth and prediction alike;
whatever is predicted there does not matter.

All classes are done together: a pixel of class c lies in c's boundary region exactly when the
(2d+1)² window around it holds another label or leaves the image. That is a few morphological
operations on the label image per mask (OpenCV, see ``boundary_band``), whatever the number of
classes, and one call for a whole batch of images.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np


def boundary_width(height: int, width: int, ratio: float = 0.02, pixels: int | None = None) -> int:
    """d in pixels: ``pixels`` when given, else ``round(ratio * diagonal)``, at least 1."""
    if pixels is not None:
        return int(pixels)
    return max(1, int(round(ratio * math.hypot(height, width))))


def class_labels(mask: np.ndarray, valid: np.ndarray, num_classes: int) -> np.ndarray:
    """``mask`` where ``valid``, the extra label ``num_classes`` elsewhere, in a dtype OpenCV's morphology takes."""
    dtype = np.uint8 if num_classes <= 255 else (np.uint16 if num_classes <= 65535 else np.float32)
    labels = mask.astype(dtype, copy=True)
    labels[~valid] = num_classes
    return labels


def boundary_band(labels: np.ndarray, d: int) -> np.ndarray:
    """Pixels within Chebyshev distance ``d`` of another label or of the outside of their image.

    ``labels`` is one (H, W) image or a batch (N, H, W). A pixel is within d of another label exactly
    when it is within d - 1 of an *edge* pixel, one with an 8-neighbour of another label: so a 3×3
    erosion and dilation find the edges and one (2d-1)² binary dilation widens them (cheaper than a
    (2d+1)² grayscale erosion and dilation). A batch is filtered as one (N·H, W) image: what crosses
    from one image into the next stays within d rows of their border, which is boundary anyway.
    """
    height, width = labels.shape[-2:]
    stacked = labels.reshape(-1, width)
    square = np.ones((3, 3), np.uint8)
    # OpenCV's default border for morphology is neutral (+inf for erode, -inf for dilate)
    band = (cv2.erode(stacked, square) != cv2.dilate(stacked, square)).view(np.uint8)
    if d > 1:
        band = cv2.dilate(band, np.ones((2 * d - 1, 2 * d - 1), np.uint8))
    band = band.view(bool).reshape(labels.shape)
    band[..., :d, :] = True
    band[..., height - d :, :] = True
    band[..., :d] = True
    band[..., width - d :] = True
    return band


def label_counts(labels: np.ndarray, where: np.ndarray | None, num_classes: int) -> np.ndarray:
    """(N, C) int64: each image's pixels of each class (the extra label dropped), over ``where`` or all.

    ``labels`` is a batch (N, H, W) of ``class_labels``. OpenCV's histogram takes the bytes as they
    are (``np.bincount`` first copies them to 8-byte integers, 5x slower); its float32 counts are
    exact below 2**24 pixels per image, and larger images fall back to ``np.bincount``.
    """
    bins = num_classes + 1
    masks = [None] * len(labels) if where is None else where
    if labels.dtype.kind != "u" or labels[0].size >= 2**24:
        return np.stack([_bincount(x, m, bins)[:num_classes] for x, m in zip(labels, masks)]).astype(np.int64)
    counts = [_histogram(x, m, bins) for x, m in zip(labels, masks)]
    return np.rint(np.stack(counts)[:, :num_classes]).astype(np.int64)


def _histogram(labels: np.ndarray, where: np.ndarray | None, bins: int) -> np.ndarray:
    mask = None if where is None else np.ascontiguousarray(where).view(np.uint8)
    return cv2.calcHist([np.ascontiguousarray(labels)], [0], mask, [bins], [0, bins]).reshape(bins)


def _bincount(labels: np.ndarray, where: np.ndarray | None, bins: int) -> np.ndarray:
    values = labels[where] if where is not None else labels.ravel()
    return np.bincount(values.astype(np.intp, copy=False), minlength=bins)


def band_stats(pred_labels: np.ndarray, gt_labels: np.ndarray, num_classes: int, d: int) -> np.ndarray:
    """(2, C) int64: per class, |G_d ∩ P_d| and |G_d ∪ P_d| summed over a batch (N, H, W) of
    ``class_labels`` images."""
    gt_band = boundary_band(gt_labels, d)
    pred_band = boundary_band(pred_labels, d)
    both = gt_band & pred_band & (gt_labels == pred_labels)
    inter = label_counts(gt_labels, both, num_classes).sum(0)
    union = label_counts(gt_labels, gt_band, num_classes).sum(0) + label_counts(pred_labels, pred_band, num_classes).sum(0) - inter
    return np.stack([inter, union])


def boundary_stats(
    pred: np.ndarray,
    gt: np.ndarray,
    num_classes: int,
    ignore_index: int = 255,
    ratio: float = 0.02,
    pixels: int | None = None,
) -> np.ndarray:
    """(2, C) int64 boundary intersection and union per class of an (H, W) image pair, or summed over
    a batch (N, H, W) of images of one size."""
    if pred.shape != gt.shape or gt.ndim not in (2, 3):
        raise ValueError(f"need two (H, W) or (N, H, W) masks of one shape, got pred {pred.shape} and gt {gt.shape}")
    if gt.ndim == 2:
        pred, gt = pred[None], gt[None]
    valid = gt != ignore_index
    d = boundary_width(*gt.shape[-2:], ratio=ratio, pixels=pixels)
    return band_stats(class_labels(pred, valid, num_classes), class_labels(gt, valid, num_classes), num_classes, d)


def boundary_metrics(stats: np.ndarray) -> dict[str, Any]:
    """``boundary_iou`` (mean over classes with a non-empty boundary union) and ``per_class_boundary_iou``."""
    inter, union = stats.astype(np.float64)
    per_class = [float(i / u) if u > 0 else None for i, u in zip(inter, union)]
    scored = [v for v in per_class if v is not None]
    return {"boundary_iou": sum(scored) / len(scored) if scored else None, "per_class_boundary_iou": per_class}


def check_boundary_settings(ratio: float, pixels: int | None) -> None:
    if pixels is not None and (int(pixels) != pixels or pixels < 1):
        raise ValueError(f"boundary_pixels must be a whole number >= 1, got {pixels}")
    if pixels is None and not 0 < ratio < 1:
        raise ValueError(f"boundary_ratio must lie in (0, 1), got {ratio}")
