"""``segdil eval``: score a checkpoint on a folder split, or a folder of prediction PNGs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from segdil.atomic import atomic_write
from segdil.errors import SegdilError


def _background(value: str | None) -> int | None | str:
    if value is None:
        return "default"
    if value.lower() in ("none", "null"):
        return None
    try:
        return int(value)
    except ValueError:
        raise SegdilError(f"--background-class {value!r}: expected a class index or 'none'") from None


@click.command("eval")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), help="Folder of prediction index PNGs, named like the ground truth.")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), help="Folder of ground-truth index PNGs (with --pred).")
@click.option("--num-classes", type=click.IntRange(min=1), help="Number of classes (with --pred).")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="A segdil checkpoint to evaluate.")
@click.option("--data", "data_root", type=click.Path(path_type=Path), help="Dataset root holding SPLIT/images and SPLIT/masks (with --checkpoint).")
@click.option("--split", default="val", show_default=True, help="Split folder under --data.")
@click.option("--format", "fmt", type=click.Choice(["folder", "voc", "cityscapes", "ade20k"]), default=None, metavar="FMT", help="Layout of --data: folder, voc, cityscapes, ade20k [default: the checkpoint's data.format, else folder].")
@click.option("--batch-size", default=1, show_default=True, type=click.IntRange(min=1), help="Images per forward pass (consecutive images of one size share a pass).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option("--ignore-index", default=255, show_default=True, help="Ground-truth value that is not scored.")
@click.option("--background-class", default=None, metavar="INT|none", help="Class without objects [default: the checkpoint's eval.background_class, else 0].")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the metrics as JSON here.")
def command(
    pred_dir: Path | None,
    gt_dir: Path | None,
    num_classes: int | None,
    checkpoint: Path | None,
    data_root: Path | None,
    split: str,
    batch_size: int,
    device: str,
    ignore_index: int,
    background_class: str | None,
    json_out: Path | None,
    fmt: str | None = None,
) -> None:
    """Print mIoU, per-class IoU, object IoU and recall by size, and iIoU (definitions: docs/metrics.md).

    \b
      segdil eval --checkpoint runs/hdc/best.pt --data data/mine --split val --json val.json
      segdil eval --pred preds/ --gt data/mine/val/masks --num-classes 4
    """
    from segdil.metrics.report import format_metrics

    background = _background(background_class)
    folder_mode = any(v is not None for v in (pred_dir, gt_dir, num_classes))
    model_mode = any(v is not None for v in (checkpoint, data_root))
    if folder_mode and model_mode:
        raise SegdilError("--pred/--gt/--num-classes and --checkpoint/--data are two different modes; use one of them")
    if folder_mode:
        missing = [name for name, v in (("--pred", pred_dir), ("--gt", gt_dir), ("--num-classes", num_classes)) if v is None]
        if missing:
            raise SegdilError(f"{', '.join(missing)}: required with --pred/--gt/--num-classes")
        result, class_names = eval_folders(pred_dir, gt_dir, num_classes, ignore_index, background)
    elif model_mode:
        missing = [name for name, v in (("--checkpoint", checkpoint), ("--data", data_root)) if v is None]
        if missing:
            raise SegdilError(f"{', '.join(missing)}: required with --checkpoint/--data")
        result, class_names = eval_checkpoint(checkpoint, data_root, split, batch_size, device, ignore_index, background, fmt)
    else:
        raise SegdilError("nothing to evaluate: give --checkpoint CKPT --data ROOT, or --pred PRED_DIR --gt GT_DIR --num-classes C")

    click.echo(format_metrics(result, class_names))
    if json_out is not None:
        write_json(json_out, {**result, "class_names": class_names})
        click.echo(f"wrote {json_out}")


# --------------------------------------------------------------------------- prediction folders


def eval_folders(pred_dir: Path, gt_dir: Path, num_classes: int, ignore_index: int, background: int | None | str) -> tuple[dict[str, Any], list[str] | None]:
    """Score every ground-truth mask in ``gt_dir`` against the prediction of the same name."""
    import torch

    from segdil.config import EvalConfig
    from segdil.data.io import load_mask

    pairs = match_predictions(pred_dir, gt_dir)
    ev = EvalConfig()
    evaluator = _evaluator(num_classes, ignore_index, ev.size_bins, ev.small_threshold, ev.background_class if background == "default" else background, "cpu")
    for pred_path, gt_path in pairs:
        gt = load_mask(gt_path)
        pred = load_mask(pred_path)
        if pred.shape != gt.shape:
            raise SegdilError(
                f"{pred_path}: size {pred.shape[1]}x{pred.shape[0]} differs from the ground truth {gt_path} "
                f"({gt.shape[1]}x{gt.shape[0]}); predictions must have the ground truth's full resolution"
            )
        check_gt(gt, gt_path, num_classes, ignore_index)
        scored = gt != ignore_index
        if scored.any() and int(pred[scored].max()) >= num_classes:
            raise SegdilError(f"{pred_path}: class index {int(pred[scored].max())} is outside 0..{num_classes - 1}; check --num-classes or the prediction's values")
        pred = pred.copy()
        pred[~scored] = 0  # values under ignored ground truth are not scored
        evaluator.update(torch.from_numpy(pred)[None], torch.from_numpy(gt.copy())[None])
    result = evaluator.compute()
    result["num_images"] = len(pairs)
    return result, None


def match_predictions(pred_dir: Path, gt_dir: Path) -> list[tuple[Path, Path]]:
    """(prediction, ground truth) pairs: ``PRED_DIR/<name>.png`` for every ``GT_DIR/<name>.png``."""
    from segdil.data.folder import index_masks

    for flag, folder in (("--pred", pred_dir), ("--gt", gt_dir)):
        if not folder.is_dir():
            raise SegdilError(f"{folder}: {flag} folder not found")
    gt_files = sorted(index_masks(gt_dir).values())
    if not gt_files:
        raise SegdilError(f"{gt_dir}: no .png ground-truth masks found")
    gt_stems = {p.stem for p in gt_files}
    pred_files = {p.name: p for p in pred_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
    pairs = []
    for gt_path in gt_files:
        pred_path = pred_dir / f"{gt_path.stem}.png"
        if pred_path.name in pred_files:
            pairs.append((pred_path, gt_path))
            continue
        same_stem = [p for p in pred_files.values() if p.stem == gt_path.stem]
        if same_stem:
            raise SegdilError(f"{same_stem[0]}: a prediction must be an index PNG named {pred_path.name} (like {gt_path}); convert or rename it")
        unmatched = sorted(name for name, p in pred_files.items() if p.stem not in gt_stems)
        hint = f" (files with no ground truth of the same name: {', '.join(unmatched[:3])}{', ...' if len(unmatched) > 3 else ''})" if unmatched else ""
        raise SegdilError(f"{pred_path}: missing prediction for {gt_path}; name each prediction like its ground-truth mask{hint}")
    return pairs


def check_gt(gt, gt_path: Path, num_classes: int, ignore_index: int) -> None:
    values = gt[gt != ignore_index]
    if values.size and int(values.max()) >= num_classes:
        raise SegdilError(f"{gt_path}: class index {int(values.max())} is outside 0..{num_classes - 1} and not the ignore index {ignore_index}; check --num-classes")


# --------------------------------------------------------------------------- checkpoints


def eval_checkpoint(
    checkpoint: Path, root: Path, split: str, batch_size: int, device: str, ignore_index: int, background: int | None | str, fmt: str | None = None
) -> tuple[dict[str, Any], list[str] | None]:
    """Predict every image of the folder dataset split ``ROOT/SPLIT`` with the checkpoint and score it."""
    import torch

    from segdil.checkpoint import load_checkpoint, model_from_checkpoint
    from segdil.config import DataConfig, EvalConfig
    from segdil.data.formats import open_dataset
    from segdil.data.transforms import to_tensor
    from segdil.inference import predict_logits, resolve_device
    from segdil.models import model_class

    ckpt = load_checkpoint(checkpoint)
    name = ckpt["model_args"].get("name")
    if model_class(name).is_classifier:
        raise SegdilError(f"{checkpoint}: model {name!r} classifies whole images; segdil eval scores segmentation models")
    if not root.is_dir():
        raise SegdilError(f"{root}: --data folder not found")
    config = ckpt.get("config") or {}
    fmt = fmt or (config.get("data") or {}).get("format") or "folder"
    dataset = open_dataset(fmt, root, split)
    run_device = resolve_device(device)
    model = model_from_checkpoint(ckpt, run_device)
    data_cfg = {**DataConfig().__dict__, **(config.get("data") or {})}
    eval_cfg = {**EvalConfig().__dict__, **(config.get("eval") or {})}
    class_names = list(ckpt.get("class_names") or dataset.class_names)
    num_classes = int(ckpt["model_args"].get("num_classes") or len(class_names))
    if len(class_names) != num_classes:
        raise SegdilError(f"{checkpoint}: the model predicts {num_classes} classes but the class names list {len(class_names)}; was it trained on another dataset?")
    background = eval_cfg["background_class"] if background == "default" else background
    evaluator = _evaluator(num_classes, ignore_index, eval_cfg["size_bins"], eval_cfg["small_threshold"], background, run_device)
    from segdil.metrics.instances import (
        evaluator_for_dataset,  # instance objects where the data has them
    )

    evaluator = evaluator_for_dataset(fmt, root, data_cfg["train_split"], dataset, num_classes, ignore_index, eval_cfg["size_bins"], eval_cfg["small_threshold"], background, run_device) or evaluator

    for start in range(0, len(dataset), batch_size):
        images, masks, instances = [], [], []
        for index in range(start, min(start + batch_size, len(dataset))):
            image, mask = dataset.load(index)
            check_gt(mask, dataset.masks[index], num_classes, ignore_index)
            images.append(to_tensor(image, data_cfg["mean"], data_cfg["std"]))
            masks.append(torch.from_numpy(mask.copy()))
            instances.append(dataset.load_instances(index, mask) if hasattr(evaluator, "instance_sizes") else None)
        for batch, gt, ids in _same_size_groups(images, masks, instances):
            logits = predict_logits(model, batch, device=run_device, tile=None)
            if logits.shape[1] != num_classes:
                raise SegdilError(f"{checkpoint}: the model returns {logits.shape[1]} channels, expected {num_classes} classes")
            evaluator.update(logits.argmax(1), gt, ids) if hasattr(evaluator, "instance_sizes") else evaluator.update(logits.argmax(1), gt)
    result = evaluator.compute()
    result["num_images"] = len(dataset)
    return result, class_names


def _same_size_groups(images: list, masks: list, extra: list | None = None):
    """Consecutive runs of equal-sized images and masks, stacked into (N, 3, H, W) and (N, H, W)
    (with ``extra``: and the run's items of that list)."""
    import torch

    start = 0
    for end in range(1, len(images) + 1):
        if end == len(images) or images[end].shape != images[start].shape:
            group = (torch.stack(images[start:end]), torch.stack(masks[start:end]))
            yield group if extra is None else (*group, extra[start:end])
            start = end


def _evaluator(num_classes: int, ignore_index: int, size_bins, small_threshold: float, background: int | None, device):
    from segdil.metrics import Evaluator

    if background is not None and not 0 <= background < num_classes:
        raise SegdilError(f"--background-class {background}: not a class in 0..{num_classes - 1}; use 'none' when every class has objects")
    try:
        return Evaluator(num_classes, ignore_index, tuple(size_bins), small_threshold, background, device)
    except ValueError as exc:
        raise SegdilError(f"eval settings: {exc}") from None


def write_json(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` as JSON atomically, so that a failure leaves no half-written file."""
    text = json.dumps(result, indent=2, allow_nan=False)
    with atomic_write(path, "w") as f:
        f.write(text + "\n")
