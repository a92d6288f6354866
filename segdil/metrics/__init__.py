"""Evaluation: a streaming confusion matrix, object metrics binned by size, iIoU (docs/metrics.md)."""

from segdil.metrics.confusion import ConfusionMatrix, pixel_metrics
from segdil.metrics.evaluator import Evaluator, bin_labels
from segdil.metrics.objects import OBJECT_DTYPE, object_stats

__all__ = ["ConfusionMatrix", "Evaluator", "OBJECT_DTYPE", "bin_labels", "object_stats", "pixel_metrics"]
