"""The readable table printed by ``segdil eval``: overall, per class, per size bin (docs/metrics.md)."""

from __future__ import annotations

from typing import Any


def format_metrics(result: dict[str, Any], class_names: list[str] | None = None) -> str:
    """Render an ``Evaluator.compute()`` result as plain-text tables (undefined values print as ``-``)."""
    small = result.get("small_threshold")
    overall = [
        ("mIoU", result.get("mIoU")),
        ("pixel accuracy", result.get("pixel_acc")),
        ("mean class accuracy", result.get("mean_acc")),
        ("mDice", result.get("mDice")),
        ("boundary IoU", result.get("boundary_iou")),
        ("per-image mIoU", result.get("per_image_miou")),
        ("worst 10% of images mIoU", result.get("worst_miou_10pct")),
        ("worst image mIoU", result.get("min_image_miou")),
        ("iIoU", result.get("iIoU")),
        (f"small-object IoU (s < {small:g})" if small is not None else "small-object IoU", result.get("small_object_iou")),
        ("object IoU (all objects)", result.get("object_iou")),
        ("object recall (IoU >= 0.5)", result.get("object_recall")),
    ]
    lines = ["overall"]
    lines += [f"  {name:<28} {_num(value)}" for name, value in overall]
    lines.append(f"  {'objects':<28} {result.get('num_objects', 0):>7d}")
    if "num_images" in result:
        lines.append(f"  {'images':<28} {result['num_images']:>7d}")
    if result.get("boundary_iou") is not None and result.get("boundary_width"):
        lines.append(f"  boundary IoU: contour bands of width d = {result['boundary_width']}")
    if result.get("object_source"):  # instance-aware evaluation says where its objects came from
        lines.append(f"  objects from {result['object_source']}; iIoU weights: {result.get('iiou_weights')}")

    per_class_iou = result.get("per_class_iou") or []
    columns = {
        "IoU": per_class_iou,
        "Dice": result.get("per_class_dice") or [],
        "acc": result.get("per_class_acc") or [],
        "bIoU": result.get("per_class_boundary_iou") or [],
        "iIoU": result.get("per_class_iiou") or [],
    }
    objects = result.get("per_class_objects") or []
    names = [_class_name(i, class_names) for i in range(len(per_class_iou))]
    width = max([5] + [len(n) for n in names])
    lines += ["", f"{'class':<{width}} " + " ".join(f"{h:>7}" for h in columns) + f" {'objects':>8}"]
    for i, name in enumerate(names):
        cells = " ".join(_num(_at(values, i)) for values in columns.values())
        count = _at(objects, i)
        lines.append(f"{name:<{width}} {cells} {count if count is not None else '-':>8}")

    bins = result.get("bins") or {}
    lines += ["", f"{'size bin':<10} {'count':>7} {'IoU':>7} {'recall':>7}"]
    for label, row in bins.items():
        lines.append(f"{label:<10} {row['count']:>7d} {_num(row['iou'])} {_num(row['recall'])}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return f"{'-':>7}" if value is None else f"{value:>7.4f}"


def _at(values: list, index: int) -> Any:
    return values[index] if index < len(values) else None


def _class_name(index: int, class_names: list[str] | None) -> str:
    if class_names and index < len(class_names):
        return f"{index} {class_names[index]}"
    return str(index)
