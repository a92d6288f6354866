"""The comparison's figures: object IoU and recall against size, the pooling sweep, overlays.

Drawn with matplotlib's ``Figure`` and the Agg canvas (no pyplot, no global backend) and written
atomically. Every function takes the ``results`` dict of :func:`segdil.compare.compare`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from segdil.atomic import save_figure

DPI = 120


# --------------------------------------------------------------------------- helpers


def _figure(ncols: int, width: float = 5.6, height: float = 4.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def model_colors(labels: Sequence[str]) -> dict[str, Any]:
    """One colour per model, the same in every figure."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {label: cmap(i % 10) for i, label in enumerate(labels)}


def bin_centres(edges: Sequence[float]) -> list[float]:
    """Geometric centres of the size bins ``<e0, e0-e1, …, >=en``; the open ends mirror their neighbours' ratio."""
    edges = [float(e) for e in edges]
    if not edges:
        return [1.0]
    inner = [math.sqrt(a * b) for a, b in zip(edges[:-1], edges[1:])]
    first_ratio = edges[1] / edges[0] if len(edges) > 1 else 2.0
    last_ratio = edges[-1] / edges[-2] if len(edges) > 1 else 2.0
    return [edges[0] / math.sqrt(first_ratio)] + inner + [edges[-1] * math.sqrt(last_ratio)]


def shown_bins(results: dict[str, Any]) -> list[int]:
    """Indices of the size bins that hold validation objects (all of them when counts are unknown)."""
    counts = results.get("bin_counts") or {}
    shown = [i for i, b in enumerate(results["bin_labels"]) if counts.get(b) is None or counts[b] > 0]
    return shown or list(range(len(results["bin_labels"])))


def _stat(node: Any) -> tuple[float, float]:
    """(mean, std) of an aggregated value; NaN where missing, std 0 for a single seed."""
    if not isinstance(node, dict) or node.get("mean") is None:
        return math.nan, math.nan
    return float(node["mean"]), float(node["std"] or 0.0)


def bin_series(aggregate: dict[str, Any], bin_labels: Sequence[str], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over seeds of one per-bin metric (``iou`` or ``recall``), NaN where a bin is empty."""
    bins = (aggregate.get("metrics") or {}).get("bins") or {}
    stats = [_stat((bins.get(b) or {}).get(metric)) for b in bin_labels]
    return np.array([s[0] for s in stats]), np.array([s[1] for s in stats])


def _bins(results: dict[str, Any]) -> tuple[list[str], list[float]]:
    """Labels and centres of the bins that are drawn."""
    shown = shown_bins(results)
    centres = bin_centres(results["size_bins"])
    return [results["bin_labels"][i] for i in shown], [centres[i] for i in shown]


def _bin_ticks(ax, results: dict[str, Any], labels: Sequence[str], centres: Sequence[float]) -> None:
    from matplotlib.ticker import NullLocator

    counts = results.get("bin_counts") or {}
    ticks = [f"{b}\n({int(counts[b])})" if counts.get(b) is not None else b for b in labels]
    ax.set_xscale("log")
    ax.set_xticks(list(centres), ticks)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(centres[0] / 1.5, centres[-1] * 1.5)


def _small_line(ax, results: dict[str, Any]) -> None:
    threshold = results.get("small_threshold")
    if threshold:
        ax.axvline(threshold, color="0.6", linestyle=":", linewidth=1)
        ax.text(threshold, 0.99, f" small < {threshold:g} px", color="0.4", fontsize=8, va="top", ha="left", transform=ax.get_xaxis_transform())


# --------------------------------------------------------------------------- size curves


METRIC_TITLES = {"iou": "object IoU", "recall": "object recall (IoU ≥ 0.5)"}


def plot_size_curves(results: dict[str, Any], metric: str, path: Path) -> Path:
    """One line per model: a per-bin object metric (mean ± std over seeds) against object size, log x."""
    labels = [m["label"] for m in results["models"]]
    colors = model_colors(labels)
    bins, centres = _bins(results)
    fig, (ax,) = _figure(1, width=7.0, height=4.6)
    for i, label in enumerate(labels):
        mean, std = bin_series(results["aggregate"][label], bins, metric)
        # a small horizontal offset per model keeps overlapping error bars apart
        shift = np.array(centres) * 1.03 ** (i - (len(labels) - 1) / 2)
        ax.errorbar(shift, mean, yerr=std, color=colors[label], marker="o", markersize=4, capsize=3, linewidth=1.6, label=label)
    _bin_ticks(ax, results, bins, centres)
    _small_line(ax, results)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("object size √area (px), bin (objects)")
    ax.set_ylabel(METRIC_TITLES.get(metric, metric))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"{METRIC_TITLES.get(metric, metric)} against object size — mean ± std over {results['settings']['seeds']} seed(s)", fontsize=10)
    return save_figure(fig, path, dpi=DPI)


# --------------------------------------------------------------------------- pooling sweep


def plot_pool_sweep(results: dict[str, Any], path: Path) -> Path | None:
    """Left: small-object IoU against P (other models as dashed lines). Right: object IoU against size
    for each P, with the stride 2^P marked on the size axis. None when there is no sweep."""
    sweep = results.get("sweep") or []
    if not sweep:
        return None
    labels = [m["label"] for m in results["models"]]
    colors = model_colors(labels)
    sweep_labels = {s["label"] for s in sweep}
    pools = [s["pools"] for s in sweep]
    fig, (left, right) = _figure(2, width=6.0, height=4.6)

    stats = [_stat(results["aggregate"][s["label"]]["metrics"].get("small_object_iou")) for s in sweep]
    left.errorbar(pools, [s[0] for s in stats], yerr=[s[1] for s in stats], color="black", marker="o", capsize=3, linewidth=1.8, label="FCN, P pools")
    for label in labels:
        if label in sweep_labels:
            continue
        mean, _ = _stat(results["aggregate"][label]["metrics"].get("small_object_iou"))
        if not math.isnan(mean):
            left.axhline(mean, color=colors[label], linestyle="--", linewidth=1.2, label=label)
    threshold = results.get("small_threshold") or 16
    coarse = [p for p in pools if 2**p >= threshold]
    if coarse:  # P where every "small" object is narrower than the stride
        left.axvspan(min(coarse) - 0.5, max(pools) + 0.5, color="0.93", zorder=0)
        left.text(min(coarse) - 0.45, 0.99, f"stride ≥ {threshold:g} px", color="0.4", fontsize=8, va="top", transform=left.get_xaxis_transform())
    left.set_xticks(pools)
    left.set_xlim(min(pools) - 0.5, max(pools) + 0.5)
    left.set_ylim(0, 1.02)
    left.set_xlabel("P (max-pools)")
    left.set_ylabel(f"small-object IoU (objects < {results.get('small_threshold', 16):g} px)")
    top = left.secondary_xaxis("top")
    top.set_xticks(pools, [f"{2**p}" for p in pools])
    top.set_xlabel("output stride 2^P (px)")
    left.grid(True, axis="y", alpha=0.3)
    left.legend(fontsize=8, loc="best")

    bins, centres = _bins(results)
    for s in sweep:
        label = s["label"]
        mean, std = bin_series(results["aggregate"][label], bins, "iou")
        line = right.errorbar(centres, mean, yerr=std, color=colors[label], marker="o", markersize=4, capsize=3, linewidth=1.5, label=f"{label} (P={s['pools']})")
        stride = 2 ** s["pools"]
        right.axvline(stride, color=line[0].get_color(), linestyle=":", linewidth=1.2)
        right.text(stride, 0.02 + 0.06 * (s["pools"] % 2), f" 2^{s['pools']}={stride}", color=line[0].get_color(), fontsize=8, rotation=90, va="bottom")
    _bin_ticks(right, results, bins, centres)
    _small_line(right, results)
    right.set_xlim(min(centres[0], 2 ** min(pools)) / 1.5, max(centres[-1], 2 ** max(pools)) * 1.5)
    right.set_ylim(0, 1.02)
    right.set_xlabel("object size √area (px), bin (objects); dotted: stride 2^P")
    right.set_ylabel("object IoU")
    right.grid(True, axis="y", alpha=0.3)
    right.legend(fontsize=8, loc="best")
    fig.suptitle("Pooling sweep: objects smaller than the stride 2^P against P", fontsize=11)
    return save_figure(fig, path, dpi=DPI)


# --------------------------------------------------------------------------- qualitative overlays


@dataclass
class OverlayCrop:
    """One validation crop: the image, its ground truth and each model's prediction (same window)."""

    index: int
    box: tuple[int, int, int, int]  # y0, x0, height, width in the validation image
    image: np.ndarray
    gt: np.ndarray
    tiny: int
    points: np.ndarray  # (y, x) in the crop of the objects under the size limit
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)


def tiny_objects(mask: np.ndarray, num_classes: int, below: float, ignore_index: int = 255, background_class: int | None = 0) -> np.ndarray:
    """Centroids (y, x) of the 8-connected ground-truth objects smaller than ``below`` px (√area)."""
    import cv2

    from segdil.metrics.objects import foreground_classes

    points = []
    for c in foreground_classes(num_classes, background_class):
        binary = (mask == c).astype(np.uint8)
        if not binary.any():
            continue
        count, _, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
        small = np.sqrt(stats[1:, cv2.CC_STAT_AREA].astype(np.float64)) < below
        points.extend(centroids[1:][small][:, ::-1])
    return np.array(points, dtype=np.float64).reshape(-1, 2)


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
        image, mask = val_ds.load(index)
        box, tiny = densest_window(tiny_objects(mask, num_classes, below, background_class=background_class), mask.shape, size)
        candidates.append((-tiny, index, box))
    crops = []
    for _, index, (y0, x0, h, w) in sorted(candidates)[:count]:
        image, mask = val_ds.load(index)
        gt = mask[y0 : y0 + h, x0 : x0 + w]
        points = tiny_objects(gt, num_classes, below, background_class=background_class)
        crops.append(OverlayCrop(index, (y0, x0, h, w), image[y0 : y0 + h, x0 : x0 + w], gt, len(points), points))
    return crops


def add_predictions(crops: list[OverlayCrop], val_ds, label: str, model, mean: Sequence[float], std: Sequence[float], num_classes: int, below: float, device: str = "cpu", background_class: int | None = 0) -> None:
    """Predict each crop's whole validation image with ``model`` and keep the crop's window.

    ``found`` counts the crop's objects under ``below`` px that the prediction recovers (IoU ≥ 0.5).
    """
    from segdil.data.transforms import to_tensor
    from segdil.inference.tiling import predict_logits
    from segdil.metrics.objects import object_stats

    for crop in crops:
        image, _ = val_ds.load(crop.index)
        logits = predict_logits(model, to_tensor(image, mean, std)[None], device=device)
        y0, x0, h, w = crop.box
        pred = logits[0].argmax(0).numpy().astype(np.uint8)[y0 : y0 + h, x0 : x0 + w]
        crop.predictions[label] = pred
        objects = object_stats(pred, crop.gt, num_classes, background_class=background_class)
        small = np.sqrt(objects["area"].astype(np.float64)) < below
        crop.found[label] = int((objects["iou"][small] >= 0.5).sum())


def object_centroids(mask: np.ndarray, num_classes: int, background_class: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (y, x) and areas of the ground-truth objects in the order ``object_stats`` lists them
    (class by class, OpenCV's sequential BBDT labelling)."""
    import cv2

    from segdil.metrics.objects import foreground_classes

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


def per_image_recall(model, val_ds, mean: Sequence[float], std: Sequence[float], num_classes: int, below: float, small: float, device: str = "cpu", background_class: int | None = 0) -> tuple[list[dict[str, Any]], dict[int, np.ndarray]]:
    """Per validation image: how many objects under ``small`` px (and under ``below`` px) it holds and
    how many ``model`` finds (object IoU ≥ 0.5); and per image the centroids of the objects under
    ``below`` px the model misses."""
    from segdil.data.transforms import to_tensor
    from segdil.inference.tiling import predict_logits
    from segdil.metrics.objects import object_stats

    records, missed = [], {}
    for index in range(len(val_ds)):
        image, mask = val_ds.load(index)
        pred = predict_logits(model, to_tensor(image, mean, std)[None], device=device)[0].argmax(0).numpy().astype(np.uint8)
        objects = object_stats(pred, mask, num_classes, background_class=background_class)
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
        points, areas = object_centroids(mask, num_classes, background_class)
        if len(areas) == len(objects) and np.array_equal(areas, objects["area"]):
            missed[index] = points[is_tiny & ~found]
    return records, missed


def choose_failure_crops(val_ds, missed: dict[int, np.ndarray], num_classes: int, below: float, count: int = 3, size: int = 96, background_class: int | None = 0) -> list[OverlayCrop]:
    """The ``count`` validation windows of ``size`` px holding the most objects under ``below`` px that a
    model misses (``missed``: centroids per image, from :func:`per_image_recall`); none without misses."""
    candidates = []
    for index, points in missed.items():
        if len(points):
            image, mask = val_ds.load(index)
            box, inside = densest_window(points, mask.shape, size)
            candidates.append((-inside, index, box))
    crops = []
    for _, index, (y0, x0, h, w) in sorted(candidates)[:count]:
        image, mask = val_ds.load(index)
        gt = mask[y0 : y0 + h, x0 : x0 + w]
        points = tiny_objects(gt, num_classes, below, background_class=background_class)
        crops.append(OverlayCrop(index, (y0, x0, h, w), image[y0 : y0 + h, x0 : x0 + w], gt, len(points), points))
    return crops


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


# --------------------------------------------------------------------------- cost against accuracy


COST_AXES = (("gflops_per_mp", "GFLOPs per megapixel (forward, log scale)", True), ("img_per_s", "train img/s (mean ± std over seeds, log scale)", False))
ACCURACY_AXES = (("small_object_iou", "small-object IoU"), ("mIoU", "mIoU"))


def cost_points(results: dict[str, Any], cost: str, metric: str) -> list[dict[str, Any]]:
    """Per model: label, P (sweep points), cost and its std, the metric's mean and std over seeds."""
    pools = {s["label"]: s["pools"] for s in results.get("sweep") or []}
    points = []
    for model in results["models"]:
        agg = results["aggregate"][model["label"]]
        if cost == "gflops_per_mp":
            x, x_std = float(model.get("gflops_per_mp") or math.nan), 0.0
        else:
            x, x_std = _stat(agg.get(cost))
        y, y_std = _stat((agg.get("metrics") or {}).get(metric))
        points.append({"label": model["label"], "pools": pools.get(model["label"]), "x": x, "x_std": x_std, "y": y, "y_std": y_std})
    return points


def plot_cost_accuracy(results: dict[str, Any], path: Path) -> Path:
    """Small-object IoU and mIoU (rows) against GFLOPs/MP and train img/s (columns): one point per
    model with seed error bars, the Pareto front as a dashed step line, P written beside sweep points."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    from segdil.compare.verdict import pareto_front

    labels = [m["label"] for m in results["models"]]
    colors = model_colors(labels)
    fig = Figure(figsize=(11.5, 8.4), layout="constrained")
    axes = fig.subplots(2, 2, squeeze=False)
    for r, (metric, metric_words) in enumerate(ACCURACY_AXES):
        for c, (cost, cost_words, lower_better) in enumerate(COST_AXES):
            ax = axes[r][c]
            points = cost_points(results, cost, metric)
            for p in points:
                if math.isnan(p["x"]) or math.isnan(p["y"]):
                    continue
                ax.errorbar(p["x"], p["y"], xerr=p["x_std"] or None, yerr=p["y_std"] or None, color=colors[p["label"]], marker="o", markersize=6, capsize=3, linestyle="none", label=p["label"])
                note = f"P={p['pools']}" if p["pools"] is not None else ""
                if note:
                    ax.annotate(note, (p["x"], p["y"]), textcoords="offset points", xytext=(6, -10), fontsize=8, color=colors[p["label"]])
            front = pareto_front([p["x"] for p in points], [p["y"] for p in points], lower_cost_is_better=lower_better)
            if len(front) > 1:
                xs = [points[i]["x"] for i in front]
                ys = [points[i]["y"] for i in front]
                ax.step(xs, ys, where="post", color="0.35", linestyle="--", linewidth=1.1, zorder=0, label="Pareto front")
            elif front:
                ax.scatter([points[front[0]]["x"]], [points[front[0]]["y"]], s=160, facecolors="none", edgecolors="0.35", linestyle="--", label="Pareto front")
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "1235" else ""))
            ax.set_xlabel(cost_words + ("; better ←" if lower_better else "; better →"))
            ax.set_ylabel(f"{metric_words} (mean ± std over seeds)")
            ax.grid(True, alpha=0.3, which="both")
            if r == 0 and c == 0:
                ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"Cost against accuracy — one point per model, {results['settings']['seeds']} seed(s); dashed: the Pareto front", fontsize=11)
    return save_figure(fig, path, dpi=DPI)
