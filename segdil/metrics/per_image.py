"""Per-image mIoU and its worst case (Wang et al., "Revisiting Evaluation Metrics for Semantic
Segmentation: Optimization and Evaluation of Fine-grained Intersection over Union", NeurIPS 2023
Datasets and Benchmarks; their code: github.com/zifuwanggg/JDTLosses, ``metrics/miouic_metric.py``).

mIoU^I: for each image i, IoU_{i,c} = TP_{i,c} / (TP_{i,c} + FP_{i,c} + FN_{i,c}) over the image's
non-ignored pixels, averaged over the classes c that occur in the image's ground truth; the score is
the mean over images. Images without a non-ignored pixel have no score. A class predicted but absent
from the ground truth is not averaged in, yet its pixels still lower the IoU of the true classes.
(Wang et al.'s code scores only the foreground class of two-class tasks; segdil does not special-case them.)

Worst case: the images sorted by score, the mean of the lowest ``max(1, ⌊q·N/100⌋)`` of the N
scores (their mIoU^I_q, as in ``miouic_metric.value(q)``), reported for q = 10, and the minimum.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from segdil.metrics.boundary import label_counts

WORST_PERCENT = 10


def image_mious(pred_labels: np.ndarray, gt_labels: np.ndarray, num_classes: int) -> list[float | None]:
    """mIoU^I of each image of a batch (N, H, W) of ``boundary.class_labels`` images (ignored pixels
    hold ``num_classes``); None for an image without a non-ignored pixel."""
    gt_count = label_counts(gt_labels, None, num_classes)
    pred_count = label_counts(pred_labels, None, num_classes)
    tp = label_counts(gt_labels, gt_labels == pred_labels, num_classes)
    union = gt_count + pred_count - tp
    present = gt_count > 0
    iou = np.divide(tp, union, out=np.zeros(tp.shape), where=present)
    return [float(iou[i][present[i]].mean()) if present[i].any() else None for i in range(len(iou))]


def worst_mean(scores: Sequence[float], percent: float = WORST_PERCENT) -> float | None:
    """The mean of the lowest ``max(1, floor(percent * N / 100))`` scores (None without scores)."""
    if len(scores) == 0:
        return None
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    count = max(1, int(len(ordered) * percent // 100))
    return float(ordered[:count].mean())


def per_image_metrics(scores: Sequence[float]) -> dict[str, Any]:
    """``per_image_miou``, ``worst_miou_10pct`` and ``min_image_miou`` from the images' scores."""
    values = np.asarray(scores, dtype=np.float64)
    return {
        "per_image_miou": float(values.mean()) if values.size else None,
        "worst_miou_10pct": worst_mean(values, WORST_PERCENT),
        "min_image_miou": float(values.min()) if values.size else None,
    }
