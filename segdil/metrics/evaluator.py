"""The Evaluator: pixel metrics from a streaming confusion matrix, object metrics by size, Boundary IoU
and per-image mIoU with its worst case."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from segdil.metrics.boundary import band_stats, boundary_metrics, boundary_width, check_boundary_settings, class_labels
from segdil.metrics.confusion import ConfusionMatrix, false_positives, pixel_metrics
from segdil.metrics.objects import empty_objects, foreground_classes, object_stats
from segdil.metrics.per_image import image_mious, per_image_metrics


def bin_labels(edges: Sequence[float]) -> list[str]:
    """``(8, 16, 32, 64)`` -> ``['<8', '8-16', '16-32', '32-64', '>=64']``."""
    edges = [f"{e:g}" for e in edges]
    if not edges:
        return ["all"]
    return [f"<{edges[0]}"] + [f"{a}-{b}" for a, b in zip(edges[:-1], edges[1:])] + [f">={edges[-1]}"]


class Evaluator:
    """Accumulates predictions and computes every metric of docs/metrics.md.

    The confusion matrix lives on ``device``; object statistics are computed per image on the CPU
    and kept as one small structured array per image (class, area, iou, tp, fn); so are each image's
    mIoU and the per-class Boundary IoU intersection and union (summed). ``boundary=False`` skips
    Boundary IoU (its keys are then None); its width d is ``boundary_pixels`` when given, else
    ``boundary_ratio`` of each image's diagonal (docs/metrics.md).
    Under torch.distributed call ``all_reduce()`` on every process after the last ``update``;
    ``compute()`` then reports the metrics of all processes together.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        size_bins: Sequence[float] = (8, 16, 32, 64),
        small_threshold: float = 16.0,
        background_class: int | None = 0,
        device: str | torch.device = "cpu",
        *,
        boundary: bool = True,
        boundary_ratio: float = 0.02,
        boundary_pixels: int | None = None,
    ):
        edges = [float(e) for e in size_bins]
        if any(b <= a for a, b in zip(edges[:-1], edges[1:])) or any(e <= 0 for e in edges):
            raise ValueError(f"size_bins must be positive and increasing, got {list(size_bins)}")
        if background_class is not None and not 0 <= background_class < num_classes:
            raise ValueError(f"background_class {background_class} is not a class in [0, {num_classes})")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.size_bins = edges
        self.small_threshold = float(small_threshold)
        self.background_class = background_class
        check_boundary_settings(boundary_ratio, boundary_pixels)
        self.boundary = bool(boundary)
        self.boundary_ratio = float(boundary_ratio)
        self.boundary_pixels = None if boundary_pixels is None else int(boundary_pixels)
        self.confusion = ConfusionMatrix(num_classes, ignore_index, device)
        self._clear()

    def reset(self) -> None:
        self.confusion.reset()
        self._clear()

    def _clear(self) -> None:
        self._objects: list[np.ndarray] = []
        self._reduced: tuple[torch.Tensor, np.ndarray] | None = None
        # per image: its mIoU (None without a non-ignored pixel); summed: boundary I and U per class, pixels seen
        self._image_scores: list[float | None] = []
        self._boundary_stats = np.zeros((2, self.num_classes), dtype=np.int64)
        self._image_pixels = 0
        self._reduced_images: tuple[list[float | None], np.ndarray, int] | None = None

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        """Add index masks ``pred`` and ``gt`` of shape (N, H, W) (or one (H, W) image)."""
        if pred.dim() == 2:
            pred, gt = pred[None], gt[None]
        if pred.dim() != 3 or pred.shape != gt.shape:
            raise ValueError(f"need pred and gt of one shape (N, H, W), got {tuple(pred.shape)} and {tuple(gt.shape)}")
        self.confusion.update(pred, gt)
        if self.num_classes <= 256 and 0 <= self.ignore_index <= 255:
            # values were checked by the confusion matrix; bytes are cheaper to copy and compare
            pred, gt = pred.to(torch.uint8), gt.to(torch.uint8)
        pred_np = pred.detach().cpu().numpy()
        gt_np = gt.detach().cpu().numpy()
        for p, g in zip(pred_np, gt_np):
            self._objects.append(object_stats(p, g, self.num_classes, self.ignore_index, self.background_class))
        self._image_metrics(pred_np, gt_np)
        self._reduced = None

    def _image_metrics(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add the per-image mIoU and the Boundary IoU statistics of a batch (N, H, W) of checked masks."""
        if gt.size == 0:
            return
        valid = gt != self.ignore_index
        gt_labels = class_labels(gt, valid, self.num_classes)
        pred_labels = class_labels(pred, valid, self.num_classes)
        self._image_scores.extend(image_mious(pred_labels, gt_labels, self.num_classes))
        if self.boundary:
            d = boundary_width(*gt.shape[-2:], ratio=self.boundary_ratio, pixels=self.boundary_pixels)
            self._boundary_stats += band_stats(pred_labels, gt_labels, self.num_classes, d)
        self._image_pixels += int(valid.sum())
        self._reduced_images = None

    def objects(self) -> np.ndarray:
        """This process's objects so far, one structured array (see ``segdil.metrics.objects``)."""
        return np.concatenate(self._objects) if self._objects else empty_objects()

    def all_reduce(self) -> None:
        """Sum the confusion matrix and gather the objects and per-image statistics of all processes
        (no-op without DDP)."""
        matrix = self.confusion.all_reduce()
        objects = self.objects()
        images = (list(self._image_scores), self._boundary_stats.copy(), self._image_pixels)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, (objects, images))
            objects = np.concatenate([g[0] for g in gathered])
            parts = [g[1] for g in gathered]
            images = ([s for p in parts for s in p[0]], sum(p[1] for p in parts), sum(p[2] for p in parts))
        self._reduced = (matrix, objects)
        self._reduced_images = images

    def compute(self) -> dict[str, Any]:
        """All metrics as plain floats, ints, lists and dicts (None where undefined)."""
        matrix, objects = self._reduced if self._reduced is not None else (self.confusion.matrix, self.objects())
        result = pixel_metrics(matrix)
        result.update(self._image_results(int(matrix.sum())))
        size = np.sqrt(objects["area"].astype(np.float64))
        iou = objects["iou"]
        bins = {}
        which = np.searchsorted(self.size_bins, size, side="right")
        for index, label in enumerate(bin_labels(self.size_bins)):
            in_bin = iou[which == index]
            bins[label] = {
                "count": int(in_bin.size),
                "iou": _mean(in_bin),
                "recall": _mean(in_bin >= 0.5),
            }
        result["bins"] = bins
        result["small_object_iou"] = _mean(iou[size < self.small_threshold])
        result["small_threshold"] = self.small_threshold
        result["object_iou"] = _mean(iou)
        result["object_recall"] = _mean(iou >= 0.5)
        result["num_objects"] = int(objects.size)
        result.update(instance_iou(objects, false_positives(matrix).numpy(), self.num_classes, self.background_class))
        return result


    def _image_results(self, num_pixels: int) -> dict[str, Any]:
        """Boundary IoU and the per-image scores; None where undefined, and where some image
        reached the confusion matrix without passing ``_image_metrics`` (their pixels differ)."""
        scores, stats, pixels = self._reduced_images if self._reduced_images is not None else (self._image_scores, self._boundary_stats, self._image_pixels)
        result = {**boundary_metrics(stats), **per_image_metrics([s for s in scores if s is not None])}
        if not self.boundary or pixels != num_pixels:
            result.update(boundary_iou=None, per_class_boundary_iou=[None] * self.num_classes)
        if pixels != num_pixels:
            result.update(dict.fromkeys(per_image_metrics([]), None))
        width = f"{self.boundary_pixels} px" if self.boundary_pixels is not None else f"{self.boundary_ratio:g} of the image diagonal"
        result["boundary_width"] = width if self.boundary else None
        return result


def instance_iou(objects: np.ndarray, fp: np.ndarray, num_classes: int, background_class: int | None) -> dict[str, Any]:
    """iIoU_c = iTP / (iTP + iFN + FP), each object weighted by (mean class-c object area) / area."""
    per_class: list[float | None] = [None] * num_classes
    counts = [0] * num_classes
    for c in foreground_classes(num_classes, background_class):
        mine = objects[objects["class"] == c]
        counts[c] = int(mine.size)
        if not mine.size:
            continue
        area = mine["area"].astype(np.float64)
        weight = area.mean() / area
        itp = float((weight * mine["tp"]).sum())
        ifn = float((weight * mine["fn"]).sum())
        per_class[c] = itp / (itp + ifn + float(fp[c]))
    scored = [v for v in per_class if v is not None]
    return {
        "iIoU": sum(scored) / len(scored) if scored else None,
        "per_class_iiou": per_class,
        "per_class_objects": counts,
    }


def _mean(values: np.ndarray) -> float | None:
    if values.size == 0:
        return None
    value = float(np.mean(values))
    return None if math.isnan(value) else value
