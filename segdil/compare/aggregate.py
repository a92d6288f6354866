"""Aggregate a comparison's runs: mean and spread over seeds, one record per model, ``results.json``."""

from __future__ import annotations

import math
from typing import Any

from segdil.compare.matching import COST_SIZE, is_scalable, model_cost
from segdil.compare.plan import ModelEntry, differing_settings
from segdil.metrics import bin_labels
from segdil.models import model_class


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarize(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (n−1; None for one value) and n."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def aggregate(values: list[Any]) -> Any:
    """Mean ± std over seeds of every number in a list of like-shaped metric trees.

    Numbers become ``{mean, std, n}`` (None and NaN values are left out, so ``n`` can be below the
    number of seeds); dicts and lists are aggregated key by key and element by element; other values
    are kept when all seeds agree.
    """
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not present:
        return None
    if all(isinstance(v, dict) for v in present):
        keys: list[str] = []
        for v in present:
            keys.extend(k for k in v if k not in keys)
        return {k: aggregate([v.get(k) for v in present]) for k in keys}
    if all(isinstance(v, (list, tuple)) for v in present):
        length = max(len(v) for v in present)
        return [aggregate([v[i] if i < len(v) else None for v in present]) for i in range(length)]
    if all(_number(v) for v in present):
        return summarize([float(v) for v in present])
    return present[0] if all(v == present[0] for v in present) else None


def aggregate_runs(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model label: metrics, speed, steps and peak memory aggregated over its seeds."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_label.setdefault(record["label"], []).append(record)
    out = {
        label: {
            "seeds": [r["seed"] for r in runs],
            "metrics": aggregate([r["metrics"] for r in runs]),
            "img_per_s": aggregate([r["img_per_s"] for r in runs]),
            "train_s": aggregate([r["train_s"] for r in runs]),
            "step": aggregate([r["step"] for r in runs]),
            "peak_memory_bytes": aggregate([r["memory"]["peak_bytes"] for r in runs]),
        }
        for label, runs in by_label.items()
    }
    for label, runs in by_label.items():  # scores with test-time augmentation (compare --tta)
        if any("tta_metrics" in r for r in runs):
            out[label]["tta_metrics"] = aggregate([r.get("tta_metrics") for r in runs])
    return out


def resolution_path(model_args: dict[str, Any]) -> str | None:
    """``full``: the family's class declares a ``full_resolution_path`` (input to head never pooled,
    strided or resampled); ``pooling``: a segmentation model without one (it downsamples); None:
    an image classifier. From the class's capabilities (``segdil.models.base.SegModel``), never its name."""
    cls = model_class(model_args.get("name"))
    if cls.is_classifier:
        return None
    return "full" if cls.full_resolution_path else "pooling"


def describe_models(entries: list[ModelEntry], records: list[dict[str, Any]], kind: str | None, tolerance: float) -> list[dict[str, Any]]:
    """Per model: the trained constructor arguments, parameters, GFLOPs per megapixel, full resolution
    or pooling (:func:`resolution_path`), matching outcome."""
    out = []
    for entry in entries:
        record = next(r for r in records if r["label"] == entry.label)
        args = record["model_args"]
        flops = model_cost(args, "flops", size=COST_SIZE)
        item: dict[str, Any] = {
            "label": entry.label,
            "source": entry.source,
            "pools": entry.pools,
            "model_args": args,
            "params": model_cost(args, "params"),
            "flops_256": flops,
            "gflops_per_mp": flops / COST_SIZE**2 / 1e3,
            "scalable": is_scalable(args),
            "resolution_path": resolution_path(args),
            "match": None,
        }
        if entry.match is not None:
            match = entry.match
            item["match"] = {
                "kind": kind,
                "factor": match.factor,
                "cost": match.cost,
                "reference_cost": match.target,
                "ratio": match.ratio,
                "within": match.within,
                "scalable": match.scalable,
                "note": "reference" if entry is entries[0] else match.note(kind, tolerance),
            }
        out.append(item)
    return out


def build_results(
    entries: list[ModelEntry],
    records: list[dict[str, Any]],
    *,
    settings: dict[str, Any],
    environment: dict[str, Any],
    tolerance: float = 0.1,
) -> dict[str, Any]:
    """Everything the report shows, as one JSON-ready dict (written as ``results.json``)."""
    first = entries[0].cfg
    aggregates = aggregate_runs(records)
    labels = bin_labels(first.eval.size_bins)
    first_bins = (aggregates[entries[0].label]["metrics"] or {}).get("bins") or {}
    counts = {b: ((first_bins.get(b) or {}).get("count") or {}).get("mean") for b in labels}
    sweep = sorted(({"label": e.label, "pools": e.pools} for e in entries if e.pools is not None), key=lambda s: s["pools"])
    return {
        "settings": {
            **settings,
            "max_steps": first.train.max_steps,
            "budget_s": first.train.budget_s,
            "batch_size": first.train.batch_size,
            "data": first.to_dict()["data"],
            "eval": first.to_dict()["eval"],
            "differing_train_settings": differing_settings(entries),
        },
        "environment": environment,
        "size_bins": list(first.eval.size_bins),
        "bin_labels": labels,
        "bin_counts": counts,
        "small_threshold": first.eval.small_threshold,
        "models": describe_models(entries, records, settings.get("match"), tolerance),
        "sweep": sweep,
        "aggregate": aggregates,
        "runs": records,
    }
