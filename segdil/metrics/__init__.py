"""Evaluation: a streaming confusion matrix, object metrics binned by size, iIoU, Boundary IoU and
per-image mIoU with its worst case (docs/metrics.md)."""

from segdil.metrics.boundary import boundary_stats
from segdil.metrics.confusion import ConfusionMatrix, pixel_metrics
from segdil.metrics.evaluator import Evaluator, bin_labels
from segdil.metrics.objects import OBJECT_DTYPE, object_stats

__all__ = ["ConfusionMatrix", "Evaluator", "OBJECT_DTYPE", "bin_labels", "boundary_stats", "object_stats", "pixel_metrics"]
