"""Objects as the dataset defines them: ground-truth instance maps instead of connected components.

Where a dataset has instance annotations (Cityscapes ``*_gtFine_instanceIds.png``, a folder
dataset's ``instances/``), each instance is one object: its class is the ground-truth class of
its pixels, its size sqrt(its area), and its window IoU is computed as for components
(docs/metrics.md). iIoU then follows the Cityscapes definition: per class c,

    iIoU_c = iTP / (iTP + iFN + FP),  iTP = sum_i w_i tp_i,  iFN = sum_i w_i fn_i,  w_i = S_c / area_i

where S_c is the class's average instance size (Cityscapes: the official constants; other data:
over its own training split), FP the unweighted false-positive pixels. Classes whose denominator is
0 are left out of the mean.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch
from scipy.ndimage import find_objects

from segdil.metrics.confusion import false_positives
from segdil.metrics.evaluator import Evaluator
from segdil.metrics.objects import (
    OBJECT_DTYPE,
    empty_objects,
    object_stats,
    window_margin,
)


def instance_labels(gt: np.ndarray, instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's instance as a label 1…K (0: no instance), in increasing instance id, and each
    label's class: the most frequent ground-truth value among its pixels (label 0's is meaningless)."""
    ids, labels = np.unique(instances, return_inverse=True)
    labels = labels.reshape(gt.shape)
    if not (ids.size and ids[0] == 0):
        labels = labels + 1  # no unlabelled pixel: shift so that 0 stays "no instance"
    count = int(labels.max(initial=0)) + 1
    gt_flat = gt.ravel().astype(np.int64)
    width_k = max(256, int(gt_flat.max(initial=0)) + 1)
    cls = np.bincount(labels.ravel() * width_k + gt_flat, minlength=count * width_k).reshape(count, width_k).argmax(1)
    return labels, cls


def scored_instances(cls: np.ndarray, num_classes: int, ignore_index: int = 255, background_class: Optional[int] = 0) -> list[tuple[int, np.ndarray]]:
    """(class, its labels) for every scored class, in the order ``instance_object_stats`` lists objects."""
    groups = []
    for c in sorted(set(cls[1:].tolist())):
        if c == ignore_index or c == background_class or not 0 <= c < num_classes:
            continue
        which = np.flatnonzero(cls == c)
        groups.append((c, which[which > 0]))
    return groups


def instance_object_stats(
    pred: np.ndarray, gt: np.ndarray, instances: np.ndarray, num_classes: int, ignore_index: int = 255, background_class: Optional[int] = 0
) -> np.ndarray:
    """Objects of one image from its instance map (``OBJECT_DTYPE``), class by class, each class's in
    increasing instance id."""
    if not (pred.shape == gt.shape == instances.shape) or gt.ndim != 2:
        raise ValueError(f"need pred, gt and instances of one (H, W) shape, got {pred.shape}, {gt.shape}, {instances.shape}")
    labels, cls = instance_labels(gt, instances)
    count = len(cls)
    if count <= 1:
        return empty_objects()
    flat = labels.ravel()
    area = np.bincount(flat, minlength=count)
    height, width = gt.shape
    boxes = find_objects(labels.astype(np.int32), max_label=count - 1)
    y0 = np.array([0] + [b[0].start for b in boxes]); y1 = np.array([0] + [b[0].stop - 1 for b in boxes])  # noqa: E702
    x0 = np.array([0] + [b[1].start for b in boxes]); x1 = np.array([0] + [b[1].stop - 1 for b in boxes])  # noqa: E702
    parts = []
    valid = gt != ignore_index
    for c, which in scored_instances(cls, num_classes, ignore_index, background_class):
        pred_c = pred == c
        gt_c = gt == c
        tp = np.bincount(flat[pred_c.ravel()], minlength=count)[which]
        spill = (pred_c & ~gt_c & valid).astype(np.int64)
        integral = np.zeros((height + 1, width + 1), dtype=np.int64)
        integral[1:, 1:] = spill.cumsum(0).cumsum(1)
        a = area[which]
        margin = window_margin(a)
        wx0 = np.maximum(x0[which] - margin, 0)
        wy0 = np.maximum(y0[which] - margin, 0)
        wx1 = np.minimum(x1[which] + 1 + margin, width)
        wy1 = np.minimum(y1[which] + 1 + margin, height)
        q_outside = integral[wy1, wx1] - integral[wy0, wx1] - integral[wy1, wx0] + integral[wy0, wx0]
        objects = np.empty(which.size, dtype=OBJECT_DTYPE)
        objects["class"] = c
        objects["area"] = a
        objects["tp"] = tp
        objects["fn"] = a - tp
        objects["iou"] = tp / (a + q_outside)
        parts.append(objects)
    return np.concatenate(parts) if parts else empty_objects()


def weighted_iiou(objects: np.ndarray, fp: np.ndarray, classes: Iterable[int], sizes: Mapping[int, float]) -> dict[str, Any]:
    """iIoU with each class's fixed average instance size ``sizes[c]`` (the Cityscapes formula)."""
    num_classes = len(fp)
    per_class: list[Optional[float]] = [None] * num_classes
    counts = [0] * num_classes
    for c in classes:
        mine = objects[objects["class"] == c]
        counts[c] = int(mine.size)
        weight = float(sizes[c]) / mine["area"].astype(np.float64) if mine.size else np.zeros(0)
        itp = float((weight * mine["tp"]).sum())
        ifn = float((weight * mine["fn"]).sum())
        denom = itp + ifn + float(fp[c])
        per_class[c] = itp / denom if denom > 0 else None
    scored = [v for v in per_class if v is not None]
    return {"iIoU": sum(scored) / len(scored) if scored else None, "per_class_iiou": per_class, "per_class_objects": counts}


class InstanceEvaluator(Evaluator):
    """An ``Evaluator`` whose ``update`` also takes ground-truth instance maps.

    ``instance_sizes`` {class: average instance area in pixels} fixes the iIoU weights (Cityscapes
    constants, or a training split's averages); without it the weights use the evaluated objects'
    mean area, as ``Evaluator`` does. ``instance_classes`` (default: the keys of ``instance_sizes``)
    are the classes iIoU averages over. ``compute()`` adds ``object_source``: ``instances``,
    ``connected components`` or ``mixed`` (images without an instance map fall back to components).
    """

    def __init__(self, *args: Any, instance_sizes: Optional[Mapping[int, float]] = None, instance_classes: Optional[Sequence[int]] = None, iiou_weights: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.instance_sizes = dict(instance_sizes) if instance_sizes else None
        self.instance_classes = list(instance_classes) if instance_classes is not None else (sorted(self.instance_sizes) if self.instance_sizes else None)
        self.iiou_weights = iiou_weights
        self._sources: set[str] = set()

    def reset(self) -> None:
        super().reset()
        self._sources = set()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor, instances: Optional[Sequence[Optional[np.ndarray]]] = None) -> None:
        """``instances``: one (H, W) instance-id array (0 = none) or None per image."""
        if instances is None or all(i is None for i in instances):
            self._sources.add("connected components")
            return super().update(pred, gt)
        if pred.dim() == 2:
            pred, gt = pred[None], gt[None]
        self.confusion.update(pred, gt)
        pred_np = pred.detach().cpu().numpy()
        gt_np = gt.detach().cpu().numpy()
        self._image_metrics(pred_np, gt_np)
        for p, g, ids in zip(pred_np, gt_np, instances):
            if ids is None:
                self._sources.add("connected components")
                self._objects.append(object_stats(p, g, self.num_classes, self.ignore_index, self.background_class))
            else:
                self._sources.add("instances")
                self._objects.append(instance_object_stats(p, g, np.asarray(ids), self.num_classes, self.ignore_index, self.background_class))
        self._reduced = None

    def compute(self) -> dict[str, Any]:
        result = super().compute()
        matrix, objects = self._reduced if self._reduced is not None else (self.confusion.matrix, self.objects())
        if self.instance_sizes is not None:
            result.update(weighted_iiou(objects, false_positives(matrix).numpy(), self.instance_classes or [], self.instance_sizes))
        sources = sorted(self._sources)
        result["object_source"] = sources[0] if len(sources) == 1 else ("mixed" if sources else "connected components")
        result["iiou_weights"] = self.iiou_weights or ("fixed average instance sizes" if self.instance_sizes else "mean area of the evaluated objects")
        return result


def average_instance_sizes(dataset, num_classes: int, ignore_index: int = 255, background_class: Optional[int] = 0) -> dict[int, float]:
    """{class: mean instance area in pixels} over every instance map of ``dataset`` (a training split)."""
    total = np.zeros(num_classes, dtype=np.float64)
    count = np.zeros(num_classes, dtype=np.int64)
    for index in range(len(dataset)):
        mask = dataset.load(index)[1]
        ids = dataset.load_instances(index, mask)
        if ids is None:
            continue
        objects = instance_object_stats(mask, mask, ids, num_classes, ignore_index, background_class)
        np.add.at(total, objects["class"], objects["area"])
        np.add.at(count, objects["class"], 1)
    return {c: float(total[c] / count[c]) for c in range(num_classes) if count[c]}
