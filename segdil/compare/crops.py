"""Validation crops for the report: the crops fullest of tiny objects, each model's prediction
painted over them, per-image small-object recall, and the crops where the best model misses most.

Objects are those the report's metrics count: a validation set's instances where it has instance
maps (the street scenes, Cityscapes, folders with ``instances/``), else the 8-connected components
of each class."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from segdil.atomic import save_figure
from segdil.compare.plots import DPI
from segdil.data.transforms import to_tensor
from segdil.inference.engine import Predictor
from segdil.metrics.instances import instance_labels, instance_object_stats, scored_instances
from segdil.metrics.objects import foreground_classes, object_stats


@dataclass
class OverlayCrop:
    """One validation crop: the image, its ground truth and each model's prediction (same window)."""

    index: int
    box: tuple[int, int, int, int]  # y0, x0, height, width in the validation image
    image: np.ndarray
    gt: np.ndarray
    tiny: int
    points: np.ndarray  # (y, x) in the crop of the objects under the size limit
    ids: np.ndarray | None = None  # the crop of the ground-truth instance map (None: components are the objects)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)


def ground_truth(val_ds, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validation item ``index``: image, mask and instance map (None where the data has none)."""
    image, mask = val_ds.load(index)
    ids = val_ds.load_instances(index, mask) if getattr(val_ds, "instances", None) is not None else None
    return image, mask, ids


def image_objects(pred: np.ndarray, mask: np.ndarray, ids: np.ndarray | None, num_classes: int, background_class: int | None = 0) -> np.ndarray:
    """The objects of one image with the prediction's IoU: its instances, or without ``ids`` its components."""
    if ids is None:
        return object_stats(pred, mask, num_classes, background_class=background_class)
    return instance_object_stats(pred, mask, ids, num_classes, background_class=background_class)


def tiny_objects(mask: np.ndarray, ids: np.ndarray | None, num_classes: int, below: float, background_class: int | None = 0) -> np.ndarray:
    """Centroids (y, x) of the ground-truth objects smaller than ``below`` px (√area)."""
    points, areas = object_centroids(mask, ids, num_classes, background_class)
    return points[np.sqrt(areas.astype(np.float64)) < below]


def densest_window(points: np.ndarray, shape: tuple[int, int], size: int) -> tuple[tuple[int, int, int, int], int]:
    """The ``size``×``size`` window (clipped to the image) holding the most points, and that count."""
    height, width = shape
    h, w = min(size, height), min(size, width)
    best, best_count = (0, 0, h, w), 0
    for cy, cx in points if len(points) else [(height / 2, width / 2)]:
        y0 = int(min(max(cy - h / 2, 0), height - h))
        x0 = int(min(max(cx - w / 2, 0), width - w))
        inside = int(((points[:, 0] >= y0) & (points[:, 0] < y0 + h) & (points[:, 1] >= x0) & (points[:, 1] < x0 + w)).sum()) if len(points) else 0
        if inside > best_count:
            best, best_count = (y0, x0, h, w), inside
    return best, best_count


def choose_crops(val_ds, num_classes: int, below: float, count: int = 3, size: int = 96, scan: int = 200, background_class: int | None = 0) -> list[OverlayCrop]:
    """The ``count`` validation images (of the first ``scan``) with the most objects under ``below`` px
    in one ``size``×``size`` window; each cropped to that window."""
    candidates = []
    for index in range(min(len(val_ds), scan)):
        _, mask, ids = ground_truth(val_ds, index)
        box, tiny = densest_window(tiny_objects(mask, ids, num_classes, below, background_class), mask.shape, size)
        candidates.append((-tiny, index, box))
    return _crops(val_ds, sorted(candidates)[:count], num_classes, below, background_class)


def add_predictions(crops: list[OverlayCrop], val_ds, label: str, model, mean: Sequence[float], std: Sequence[float], num_classes: int, below: float, device: str = "cpu", background_class: int | None = 0) -> None:
    """Predict each crop's whole validation image with ``model`` and keep the crop's window.

    ``found`` counts the crop's objects under ``below`` px that the prediction recovers (IoU ≥ 0.5).
    """
    predictor = Predictor(model, device)
    for crop in crops:
        image, _ = val_ds.load(crop.index)
        logits = predictor.logits(to_tensor(image, mean, std)[None])
        y0, x0, h, w = crop.box
        pred = logits[0].argmax(0).numpy().astype(np.uint8)[y0 : y0 + h, x0 : x0 + w]
        crop.predictions[label] = pred
        objects = image_objects(pred, crop.gt, crop.ids, num_classes, background_class)
        small = np.sqrt(objects["area"].astype(np.float64)) < below
        crop.found[label] = int((objects["iou"][small] >= 0.5).sum())


def object_centroids(mask: np.ndarray, ids: np.ndarray | None, num_classes: int, background_class: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (y, x) and areas of the ground-truth objects in the order ``image_objects`` lists them
    (instances as ``instance_object_stats`` orders them; components class by class, OpenCV's
    sequential BBDT labelling)."""
    if ids is not None:
        return _instance_centroids(mask, ids, num_classes, background_class)
    import cv2

    points, areas = [], []
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for c in foreground_classes(num_classes, background_class):
            gt_c = mask == c
            if not gt_c.any():
                continue
            _, _, stats, centroids = cv2.connectedComponentsWithStatsWithAlgorithm(gt_c.view(np.uint8), 8, cv2.CV_32S, cv2.CCL_BBDT)
            points.extend(centroids[1:][:, ::-1])
            areas.extend(stats[1:, cv2.CC_STAT_AREA])
    finally:
        cv2.setNumThreads(threads)
    return np.array(points, dtype=np.float64).reshape(-1, 2), np.array(areas, dtype=np.int64)


def _instance_centroids(mask: np.ndarray, ids: np.ndarray, num_classes: int, background_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    labels, cls = instance_labels(mask, ids)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=len(cls))
    rows, cols = np.indices(mask.shape)
    y = np.bincount(flat, weights=rows.ravel(), minlength=len(cls)) / np.maximum(area, 1)
    x = np.bincount(flat, weights=cols.ravel(), minlength=len(cls)) / np.maximum(area, 1)
    groups = scored_instances(cls, num_classes, background_class=background_class)
    order = np.concatenate([which for _, which in groups]) if groups else np.zeros(0, dtype=np.int64)
    return np.stack([y[order], x[order]], axis=1), area[order].astype(np.int64)


def per_image_recall(model, val_ds, mean: Sequence[float], std: Sequence[float], num_classes: int, below: float, small: float, device: str = "cpu", background_class: int | None = 0) -> tuple[list[dict[str, Any]], dict[int, np.ndarray]]:
    """Per validation image: how many objects under ``small`` px (and under ``below`` px) it holds and
    how many ``model`` finds (object IoU ≥ 0.5); and per image the centroids of the objects under
    ``below`` px the model misses."""
    predictor = Predictor(model, device)
    records, missed = [], {}
    for index in range(len(val_ds)):
        image, mask, ids = ground_truth(val_ds, index)
        pred = predictor.logits(to_tensor(image, mean, std)[None])[0].argmax(0).numpy().astype(np.uint8)
        objects = image_objects(pred, mask, ids, num_classes, background_class)
        size = np.sqrt(objects["area"].astype(np.float64))
        found = objects["iou"] >= 0.5
        is_small, is_tiny = size < small, size < below
        n_small = int(is_small.sum())
        records.append(
            {
                "index": index,
                "small_objects": n_small,
                "small_found": int((found & is_small).sum()),
                "small_recall": float((found & is_small).sum() / n_small) if n_small else None,
                "tiny_objects": int(is_tiny.sum()),
                "tiny_found": int((found & is_tiny).sum()),
            }
        )
        points, areas = object_centroids(mask, ids, num_classes, background_class)
        if len(areas) == len(objects) and np.array_equal(areas, objects["area"]):
            missed[index] = points[is_tiny & ~found]
    return records, missed


def choose_failure_crops(val_ds, missed: dict[int, np.ndarray], num_classes: int, below: float, count: int = 3, size: int = 96, background_class: int | None = 0) -> list[OverlayCrop]:
    """The ``count`` validation windows of ``size`` px holding the most objects under ``below`` px that a
    model misses (``missed``: centroids per image, from :func:`per_image_recall`); none without misses."""
    candidates = []
    for index, points in missed.items():
        if len(points):
            _, mask = val_ds.load(index)
            box, inside = densest_window(points, mask.shape, size)
            candidates.append((-inside, index, box))
    return _crops(val_ds, sorted(candidates)[:count], num_classes, below, background_class)


def blend(image: np.ndarray, mask: np.ndarray, colors: np.ndarray, background_class: int | None = 0, alpha: float = 0.75) -> np.ndarray:
    """The image dimmed, with every non-background pixel painted its class colour (``alpha`` opaque)."""
    out = image.astype(np.float32) * 0.55
    painted = mask != background_class if background_class is not None else np.ones(mask.shape, bool)
    out[painted] = (1 - alpha) * image[painted] + alpha * colors[mask[painted]].astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def plot_overlays(
    crops: list[OverlayCrop],
    labels: Sequence[str],
    colors: np.ndarray,
    path: Path,
    below: float,
    background_class: int | None = 0,
    class_names: Sequence[str] | None = None,
) -> Path | None:
    """Rows: crops; columns: image, ground truth, then each model; a colour key of the classes below.
    None when there are no crops."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if not crops:
        return None
    cols = 2 + len(labels)
    fig = Figure(figsize=(2.3 * cols, 2.5 * len(crops) + 0.3), layout="constrained")
    axes = fig.subplots(len(crops), cols, squeeze=False)
    for r, (row, crop) in enumerate(zip(axes, crops)):
        y0, x0, h, w = crop.box
        panels = [
            ("image", crop.image, f"val #{crop.index} [{y0}:{y0 + h}, {x0}:{x0 + w}]"),
            ("ground truth", blend(crop.image, crop.gt, colors, background_class), f"{crop.tiny} objects < {below:g} px (ringed)"),
        ]
        for label in labels:
            panels.append((label, blend(crop.image, crop.predictions[label], colors, background_class), f"found {crop.found[label]}/{crop.tiny}"))
        for c, (ax, (title, picture, note)) in enumerate(zip(row, panels)):
            ax.imshow(picture, interpolation="nearest")
            if c > 0 and len(crop.points):  # ring every tiny ground-truth object, in every panel but the image
                ax.scatter(crop.points[:, 1], crop.points[:, 0], s=60, facecolors="none", edgecolors="white", linewidths=0.7)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(note, fontsize=8)
            if r == 0:
                ax.set_title(title, fontsize=9)
    if class_names:
        handles = [Patch(color=colors[i] / 255.0, label=name) for i, name in enumerate(class_names) if i != background_class]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    return save_figure(fig, path, dpi=DPI)


def _crops(val_ds, chosen: list, num_classes: int, below: float, background_class: int | None) -> list[OverlayCrop]:
    """The crops ``(score, index, box)`` of ``chosen``, with their tiny objects counted."""
    crops = []
    for _, index, (y0, x0, h, w) in chosen:
        image, mask, ids = ground_truth(val_ds, index)
        gt = mask[y0 : y0 + h, x0 : x0 + w]
        ids = ids[y0 : y0 + h, x0 : x0 + w] if ids is not None else None
        points = tiny_objects(gt, ids, num_classes, below, background_class)
        crops.append(OverlayCrop(index, (y0, x0, h, w), image[y0 : y0 + h, x0 : x0 + w], gt, len(points), points, ids))
    return crops
