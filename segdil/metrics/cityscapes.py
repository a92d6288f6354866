"""Cityscapes scored as the official evaluator (cityscapesscripts ``evalPixelLevelSemanticLabeling``).

mIoU: the 19 train classes, classes with an empty union left out (``averageScoreClasses``).
iIoU: over the 8 instance classes, each instance's true/false-negative pixels weighted by the
official average instance size of its class over its area, false positives unweighted, classes
with a zero denominator left out (``averageScoreInstClasses``).
"""

from __future__ import annotations

from typing import Any

from segdil.data.cityscapes import CLASS_NAMES, INSTANCE_CLASSES
from segdil.metrics.instances import InstanceEvaluator

# cityscapesscripts/evaluation/evalPixelLevelSemanticLabeling.py, args.avgClassSize (pixels)
AVG_CLASS_SIZE = {
    "bicycle": 4672.3249222261,
    "caravan": 36771.8241758242,
    "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "car": 12794.0202738185,
    "person": 3462.4756337644,
    "truck": 27855.1264367816,
    "trailer": 16926.9763313609,
}
INSTANCE_SIZES = {c: AVG_CLASS_SIZE[CLASS_NAMES[c]] for c in INSTANCE_CLASSES}


def cityscapes_evaluator(size_bins=(8, 16, 32, 64), small_threshold: float = 16.0, device: Any = "cpu"):
    """An ``InstanceEvaluator`` for the 19 train IDs whose mIoU and iIoU are the official ones.

    No background class: every train class is scored, objects are the instances of the 8 instance classes.
    """
    return InstanceEvaluator(
        len(CLASS_NAMES), 255, tuple(size_bins), small_threshold, None, device,
        instance_sizes=INSTANCE_SIZES, instance_classes=INSTANCE_CLASSES, iiou_weights="cityscapes official average instance sizes",
    )  # fmt: skip
