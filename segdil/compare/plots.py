"""The comparison's figures: object IoU and recall against size, the pooling sweep, overlays.

Drawn with matplotlib's ``Figure`` and the Agg canvas (no pyplot, no global backend) and written
atomically. Every function takes the ``results`` dict of :func:`segdil.compare.compare`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from segdil.atomic import save_figure
from segdil.compare.verdict import pareto_front, spread_words

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
    ax.set_title(f"{METRIC_TITLES.get(metric, metric)} against object size — {spread_words(results['settings']['seeds'])}", fontsize=10)
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


# --------------------------------------------------------------------------- cost against accuracy


COST_AXES = (("gflops_per_mp", "GFLOPs per megapixel (forward)", True), ("img_per_s", "train img/s", False))
ACCURACY_AXES = (("small_object_iou", "small-object IoU"), ("mIoU", "mIoU"))
LOG_SPAN = 10.0  # a cost axis is logarithmic only when its values span more than this factor


def use_log_scale(values: Sequence[float]) -> bool:
    """Whether an axis over ``values`` reads better logarithmic: only when the finite positive
    values span more than ``LOG_SPAN``× (GFLOPs of 110 to 205 stay linear)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    return bool(finite) and max(finite) / min(finite) > LOG_SPAN


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


def _cost_panel(ax, results: dict[str, Any], cost: str, cost_words: str, lower_better: bool, metric: str, metric_words: str, colors: dict[str, Any]) -> None:
    """One panel: a point per model with seed error bars, the Pareto front dashed, P beside sweep points."""
    from matplotlib.ticker import FuncFormatter

    seeds = results["settings"]["seeds"]
    points = cost_points(results, cost, metric)
    for p in points:
        if math.isnan(p["x"]) or math.isnan(p["y"]):
            continue
        ax.errorbar(p["x"], p["y"], xerr=p["x_std"] or None, yerr=p["y_std"] or None, color=colors[p["label"]], marker="o", markersize=6, capsize=3, linestyle="none", label=p["label"])
        if p["pools"] is not None:
            ax.annotate(f"P={p['pools']}", (p["x"], p["y"]), textcoords="offset points", xytext=(6, -10), fontsize=8, color=colors[p["label"]])
    front = pareto_front([p["x"] for p in points], [p["y"] for p in points], lower_cost_is_better=lower_better)
    if len(front) > 1:
        ax.step([points[i]["x"] for i in front], [points[i]["y"] for i in front], where="post", color="0.35", linestyle="--", linewidth=1.1, zorder=0, label="Pareto front")
    elif front:
        ax.scatter([points[front[0]]["x"]], [points[front[0]]["y"]], s=160, facecolors="none", edgecolors="0.35", linestyle="--", label="Pareto front")
    log = use_log_scale([p["x"] for p in points])
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "1235" else ""))
    spread = f", {spread_words(seeds)}" if cost != "gflops_per_mp" else ""
    ax.set_xlabel(cost_words + spread + (", log scale" if log else "") + ("; better ←" if lower_better else "; better →"))
    ax.set_ylabel(f"{metric_words} ({spread_words(seeds)})")
    ax.grid(True, alpha=0.3, which="both")


def cost_figure(results: dict[str, Any]):
    """Small-object IoU and mIoU (rows) against GFLOPs/MP and train img/s (columns), one legend for
    all four panels outside them (every model and the Pareto front)."""
    from matplotlib.figure import Figure

    labels = [m["label"] for m in results["models"]]
    colors = model_colors(labels)
    fig = Figure(figsize=(12.5, 8.4), layout="constrained")
    axes = fig.subplots(2, 2, squeeze=False)
    for r, (metric, metric_words) in enumerate(ACCURACY_AXES):
        for c, (cost, cost_words, lower_better) in enumerate(COST_AXES):
            _cost_panel(axes[r][c], results, cost, cost_words, lower_better, metric, metric_words, colors)
    handles: dict[str, Any] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    order = [label for label in [*labels, "Pareto front"] if label in handles]
    fig.legend([handles[label] for label in order], order, loc="outside right upper", fontsize=10, frameon=False, title="model", title_fontsize=10)
    fig.suptitle(f"Cost against accuracy — one point per model, {spread_words(results['settings']['seeds'])}; dashed: the Pareto front", fontsize=11)
    return fig


def plot_cost_accuracy(results: dict[str, Any], path: Path) -> Path:
    """:func:`cost_figure` written to ``path``."""
    return save_figure(cost_figure(results), path, dpi=DPI)
