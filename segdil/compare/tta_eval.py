"""``segdil compare --tta``: score every run's last weights on the validation split with test-time augmentation.

The plain scores are the training's own validation of the same weights (whole images, no
augmentation). The TTA scores are ``segdil eval --checkpoint last.pt --tta ...``'s: the same
:class:`segdil.inference.engine.Predictor` with eval's default options (BatchNorm folded,
channels_last, bf16 where native with the fp32 guard, the memory budget), the same
:func:`segdil.inference.tta.tta_logits`, one image per call as eval's default ``--batch-size``,
and the same :class:`segdil.metrics.Evaluator` settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import torch

from segdil.checkpoint import model_from_checkpoint
from segdil.compare.execute import run_dir
from segdil.compare.plan import ModelEntry
from segdil.data import build_datasets
from segdil.data.transforms import to_tensor
from segdil.device import resolve_device
from segdil.inference.engine import InferenceOptions, Predictor
from segdil.inference.tiling import same_size_runs
from segdil.inference.tta import TTA, tta_logits
from segdil.metrics import Evaluator
from segdil.train.validate import instance_evaluator, padded_instances, with_instance_maps

BATCH = 1  # validation images per call: eval's default --batch-size, so the scores are eval --tta's


def tta_masks(cfg, checkpoint: Path, tta: TTA, val_ds) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[int]]]:
    """(predicted, ground-truth) index masks ``(N, H, W)`` of ``val_ds`` with ``tta`` and the items' indices,
    batch by batch, predicted on ``cfg.train.device`` by the Predictor with eval's default options."""
    device = resolve_device(cfg.train.device)
    predictor = Predictor(model_from_checkpoint(checkpoint, device=device), device, InferenceOptions())
    samples = ((i, *val_ds.load(i)) for i in range(len(val_ds)))
    for run in same_size_runs(samples, lambda sample: sample[2].shape, BATCH):
        images = torch.stack([to_tensor(image, cfg.data.mean, cfg.data.std) for _, image, _ in run])
        masks = torch.stack([torch.from_numpy(mask.astype("int64")) for _, _, mask in run])
        yield tta_logits(predictor, images, tta).argmax(1), masks, [i for i, _, _ in run]


def tta_metrics(cfg, checkpoint: Path, tta: TTA, val_ds, num_classes: int) -> dict[str, Any]:
    """The evaluation metrics of one checkpoint on ``val_ds`` with ``tta``: objects are the data's instances
    where it has instance maps (as validation during training counts them), else connected components."""
    ev = cfg.eval
    val_ds = with_instance_maps(cfg, val_ds)
    evaluator = instance_evaluator(cfg, val_ds, num_classes, torch.device("cpu"))
    instanced = evaluator is not None
    if evaluator is None:
        evaluator = Evaluator(num_classes, size_bins=tuple(ev.size_bins), small_threshold=ev.small_threshold, background_class=ev.background_class, device="cpu")
    for preds, masks, indices in tta_masks(cfg, checkpoint, tta, val_ds):
        if instanced:
            evaluator.update(preds, masks, [padded_instances(val_ds, i, tuple(masks.shape[-2:])) for i in indices])
        else:
            evaluator.update(preds, masks)
    return evaluator.compute()


def add_tta_metrics(entries: list[ModelEntry], records: list[dict[str, Any]], tta: TTA, out: Path, echo=print) -> None:
    """Add ``tta_metrics`` to every run record (all seeds)."""
    cfg = entries[0].cfg
    _, val_ds, class_names = build_datasets(cfg.data)
    by_label = {e.label: e for e in entries}
    for i, record in enumerate(records, 1):
        entry = by_label[record["label"]]
        echo(f"TTA ({tta.describe()}) [{i}/{len(records)}] {record['label']} seed {record['seed']}")
        record["tta_metrics"] = tta_metrics(entry.cfg, run_dir(out, record["label"], record["seed"]) / "last.pt", tta, val_ds, len(class_names))
