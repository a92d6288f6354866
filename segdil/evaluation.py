"""``segdil eval``'s work: score prediction PNGs against ground truth, or a checkpoint on a folder split."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from segdil.config import DataConfig, EvalConfig
from segdil.data.folder import index_masks
from segdil.data.io import load_mask
from segdil.errors import SegdilError, shown
from segdil.metrics.evaluator import Evaluator


def evaluate(
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
    fmt: str | None = None,
    classes_by_index: bool = False,
    tta=None,
    inference: Any = None,
    size_bins: tuple[float, ...] | None = None,
) -> tuple[dict[str, Any], list[str] | None]:
    """The metrics and class names of one of the two modes (prediction folders, or checkpoint and data).
    ``inference``: the ``InferenceOptions`` of checkpoint mode (default: predict's fast defaults);
    ``size_bins``: the object-size bin edges (default: the checkpoint's ``eval.size_bins``, else 8, 16, 32, 64)."""
    background = parse_background(background_class)
    folder_mode = any(v is not None for v in (pred_dir, gt_dir, num_classes))
    model_mode = any(v is not None for v in (checkpoint, data_root))
    if folder_mode and model_mode:
        raise SegdilError("--pred/--gt/--num-classes and --checkpoint/--data are two different modes; use one of them")
    if folder_mode:
        missing = [name for name, v in (("--pred", pred_dir), ("--gt", gt_dir), ("--num-classes", num_classes)) if v is None]
        if missing:
            raise SegdilError(f"{', '.join(missing)}: required with --pred/--gt/--num-classes")
        if tta is not None:
            raise SegdilError("--tta: needs --checkpoint/--data (prediction PNGs are scored as they are)")
        return eval_folders(pred_dir, gt_dir, num_classes, ignore_index, background, size_bins)
    if model_mode:
        missing = [name for name, v in (("--checkpoint", checkpoint), ("--data", data_root)) if v is None]
        if missing:
            raise SegdilError(f"{', '.join(missing)}: required with --checkpoint/--data")
        return eval_checkpoint(checkpoint, data_root, split, batch_size, device, ignore_index, background, fmt, classes_by_index, tta, inference, size_bins)
    raise SegdilError("nothing to evaluate: give --checkpoint CKPT --data ROOT, or --pred PRED_DIR --gt GT_DIR --num-classes C")


def parse_background(value: str | None) -> int | None | str:
    if value is None:
        return "default"
    if value.lower() in ("none", "null"):
        return None
    try:
        return int(value)
    except ValueError:
        raise SegdilError(f"--background-class {value!r}: expected a class index or 'none'") from None


def parse_size_bins(value: str | None) -> tuple[float, ...] | None:
    """``--size-bins 8,16,32,64,128`` as increasing positive edges (``None``: the default)."""
    if value is None:
        return None
    try:
        edges = tuple(float(part) for part in value.split(","))
    except ValueError:
        edges = ()
    if not edges or any(not (0 < e < float("inf")) for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise SegdilError(f"--size-bins {shown(value, 80)}: expected positive object sizes in pixels, increasing and comma-separated, e.g. 8,16,32,64,128")
    return edges


def eval_folders(
    pred_dir: Path, gt_dir: Path, num_classes: int, ignore_index: int, background: int | None | str, size_bins: tuple[float, ...] | None = None
) -> tuple[dict[str, Any], list[str] | None]:
    """Score every ground-truth mask in ``gt_dir`` against the prediction of the same name."""
    import torch

    pairs = match_predictions(pred_dir, gt_dir)
    ev = EvalConfig()
    evaluator = _evaluator(num_classes, ignore_index, size_bins or ev.size_bins, ev.small_threshold, ev.background_class if background == "default" else background, "cpu")
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
    result["confusion_matrix"] = confusion_counts(evaluator)
    return result, None


def match_predictions(pred_dir: Path, gt_dir: Path) -> list[tuple[Path, Path]]:
    """(prediction, ground truth) pairs: ``PRED_DIR/<name>.png`` for every ``GT_DIR/<name>.png``."""
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
    unmatched = sorted(name for name, p in pred_files.items() if p.stem not in gt_stems)
    if unmatched:
        import click

        first = ", ".join(shown(name, 60)[1:-1] for name in unmatched[:3])
        click.echo(f"note: {len(unmatched)} file(s) in {pred_dir} have no ground truth in {gt_dir} and are not scored: {first}{', ...' if len(unmatched) > 3 else ''}", err=True)
    return pairs


def check_gt(gt, gt_path: Path, num_classes: int, ignore_index: int) -> None:
    values = gt[gt != ignore_index]
    if values.size and int(values.max()) >= num_classes:
        raise SegdilError(f"{gt_path}: class index {int(values.max())} is outside 0..{num_classes - 1} and not the ignore index {ignore_index}; check --num-classes")


def eval_checkpoint(
    checkpoint: Path, root: Path, split: str, batch_size: int, device: str, ignore_index: int, background: int | None | str, fmt: str | None = None,
    classes_by_index: bool = False, tta=None, inference: Any = None, size_bins: tuple[float, ...] | None = None,
) -> tuple[dict[str, Any], list[str] | None]:
    """Predict every image of the split ``SPLIT`` of the dataset at ``ROOT`` (layout ``fmt``, default:
    the checkpoint's ``data.format``) with the checkpoint and score it; objects are the dataset's
    instances where it has them. The checkpoint's classes must be the data's (count and names);
    ``classes_by_index`` accepts other names for as many classes, scored under the data's names.
    Prediction is ``segdil predict``'s (``Predictor`` with ``inference``), with ``tta`` views averaged."""
    import torch

    # the model stack (checkpoints, models, albumentations, inference) loads in checkpoint mode only:
    # scoring folders of prediction PNGs (segdil eval --pred) stays light
    from segdil.checkpoint import checked_model_args, checkpoint_config, load_checkpoint, model_from_checkpoint
    from segdil.data.formats import open_dataset
    from segdil.data.transforms import to_tensor
    from segdil.device import resolve_device
    from segdil.inference.engine import InferenceOptions, Predictor
    from segdil.inference.tiling import same_size_runs
    from segdil.inference.tta import tta_logits
    from segdil.models import model_class

    ckpt = load_checkpoint(checkpoint)
    name = checked_model_args(ckpt)["name"]
    if model_class(name).is_classifier:
        raise SegdilError(f"{checkpoint}: model {name!r} classifies whole images; segdil eval scores segmentation models")
    if not root.is_dir():
        raise SegdilError(f"{root}: --data folder not found")
    config = checkpoint_config(ckpt)
    data_cfg, eval_cfg = config.data, config.eval
    fmt = fmt or data_cfg.format
    dataset = open_dataset(fmt, root, split)
    class_names = list(ckpt.get("class_names") or dataset.class_names)
    num_classes = int(ckpt["model_args"].get("num_classes") or len(class_names))
    if len(class_names) != num_classes:
        raise SegdilError(f"{checkpoint}: the model predicts {num_classes} classes but the class names list {len(class_names)}; was it trained on another dataset?")
    run_device = resolve_device(device)
    predictor = Predictor(model_from_checkpoint(ckpt, run_device), run_device, inference or InferenceOptions())
    background = eval_cfg.background_class if background == "default" else background
    size_bins = size_bins or eval_cfg.size_bins
    evaluator = _evaluator(num_classes, ignore_index, size_bins, eval_cfg.small_threshold, background, run_device)
    by_instance = evaluator_for_dataset(fmt, root, data_cfg.train_split, dataset, num_classes, ignore_index, size_bins, eval_cfg.small_threshold, background, run_device)
    data_names = list(dataset.class_names)
    if [str(n) for n in class_names] != [str(n) for n in data_names]:
        same_count = len(class_names) == len(data_names)
        if not (same_count and classes_by_index):
            hint = " (or pass --classes-by-index to score class i of the model as class i of the data)" if same_count else ""
            raise SegdilError(
                f"{checkpoint}: {'class names' if same_count else 'class counts'} differ from the data's ({root}): checkpoint {len(class_names)} {shown(class_names, 200)}, "
                f"data {len(data_names)} {shown(data_names, 200)}; evaluate on the dataset the model was trained for{hint}"
            )
        class_names = data_names

    def samples():
        for index in range(len(dataset)):
            image, mask = dataset.load(index)
            check_gt(mask, dataset.masks[index], num_classes, ignore_index)
            instances = dataset.load_instances(index, mask) if by_instance is not None else None
            yield to_tensor(image, data_cfg.mean, data_cfg.std), torch.from_numpy(mask.copy()), instances

    for run in same_size_runs(samples(), lambda sample: tuple(sample[0].shape), batch_size):
        batch, gt = torch.stack([image for image, _, _ in run]), torch.stack([mask for _, mask, _ in run])
        logits = tta_logits(predictor, batch, tta)
        if logits.shape[1] != num_classes:
            raise SegdilError(f"{checkpoint}: the model returns {logits.shape[1]} channels, expected {num_classes} classes")
        if by_instance is not None:
            by_instance.update(logits.argmax(1), gt, [instances for _, _, instances in run])
        else:
            evaluator.update(logits.argmax(1), gt)
    evaluator = by_instance or evaluator
    result = evaluator.compute()
    result["num_images"] = len(dataset)
    result["confusion_matrix"] = confusion_counts(evaluator)
    return result, class_names


def confusion_counts(evaluator) -> list[list[int]]:
    """The evaluator's confusion matrix as lists: ``[t][p]`` pixels of ground-truth class t predicted as p."""
    return evaluator.confusion.matrix.cpu().tolist()


def write_confusion_png(matrix: list[list[int]], class_names: list[str] | None, path: Path) -> Path:
    """:func:`confusion_figure` written to ``path`` as a PNG."""
    from segdil.atomic import save_figure

    return save_figure(confusion_figure(matrix, class_names), path, dpi=110)


def confusion_figure(matrix: list[list[int]], class_names: list[str] | None):
    """The confusion matrix, each ground-truth row normalised to sum to 1 (rows without pixels stay
    0), class names on both axes and, up to 20 classes, the share written in every cell."""
    import numpy as np
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.float64)
    n = counts.shape[0]
    names = [str(c) for c in class_names] if class_names else [f"class {i}" for i in range(n)]
    totals = counts.sum(1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = min(16.0, 2.5 + 0.45 * n)
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the ground-truth class's pixels")
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(n), [f"{name} ({int(t)} px)" for name, t in zip(names, totals[:, 0])], fontsize=9)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("ground-truth class (pixels)")
    if n <= 20:
        for t in range(n):
            for q in range(n):
                ax.text(q, t, f"{shares[t, q]:.2f}", ha="center", va="center", fontsize=8, color="white" if shares[t, q] > 0.5 else "black")
    ax.set_title("Confusion matrix, each row normalised to sum to 1", fontsize=11)
    return fig


def _evaluator(num_classes: int, ignore_index: int, size_bins, small_threshold: float, background: int | None, device):
    if background is not None and not 0 <= background < num_classes:
        raise SegdilError(f"--background-class {background}: not a class in 0..{num_classes - 1}; use 'none' when every class has objects")
    try:
        return Evaluator(num_classes, ignore_index, tuple(size_bins), small_threshold, background, device)
    except ValueError as exc:
        raise SegdilError(f"eval settings: {exc}") from None


def evaluator_for_dataset(fmt: str, root, train_split: str, dataset, num_classes: int, ignore_index: int, size_bins, small_threshold: float, background, device):
    """The evaluator of a dataset with instances: Cityscapes' official one, or instance objects with
    iIoU weights from the training split's average instance sizes; None for data without instances."""
    # checkpoint mode only, like eval_checkpoint's imports: scoring PNG folders loads neither
    from segdil.metrics.cityscapes import CLASS_NAMES, cityscapes_evaluator
    from segdil.metrics.instances import InstanceEvaluator

    if fmt == "cityscapes":
        if num_classes != len(CLASS_NAMES):
            raise SegdilError(f"--format cityscapes: the model predicts {num_classes} classes, Cityscapes has {len(CLASS_NAMES)} train IDs; evaluate a model trained with data.format: cityscapes")
        return cityscapes_evaluator(size_bins, small_threshold, device)
    if getattr(dataset, "instances", None) is None:
        return None
    sizes = training_instance_sizes(fmt, str(root), train_split, num_classes, ignore_index, background)
    weights = f"average instance sizes of the {train_split} split" if sizes else ""
    return InstanceEvaluator(num_classes, ignore_index, tuple(size_bins), small_threshold, background, device, instance_sizes=sizes or None, iiou_weights=weights)


@functools.lru_cache(maxsize=8)
def training_instance_sizes(fmt: str, root: str, train_split: str, num_classes: int, ignore_index: int, background) -> dict[int, float] | None:
    """{class: average instance area} over the training split's instance maps (None without them);
    computed once per process, so that validation during training reads the split only once."""
    from segdil.data.formats import open_dataset  # checkpoint mode only, as in evaluator_for_dataset
    from segdil.metrics.instances import average_instance_sizes

    try:
        train = open_dataset(fmt, root, train_split)
        return average_instance_sizes(train, num_classes, ignore_index, background) if getattr(train, "instances", None) is not None else None
    except SegdilError:
        return None


def evaluation_format(data: DataConfig) -> str:
    """The layout whose scoring validation shares with ``segdil eval --format``: ``data.format``;
    for the built-in street scenes in memory ``cityscapes`` (``segdil data synth --scene street``
    writes those very scenes, with their instance maps, in the Cityscapes layout); ``synthetic``
    for the other built-in scenes (no instance maps)."""
    if data.root is None:
        return "cityscapes" if data.synth.scene == "street" else "synthetic"
    return data.format
