"""``segdil compare --tta``: score every run's last weights on the validation split with test-time augmentation.

The plain scores are the training's own validation of the same weights (whole images, no
augmentation); the TTA scores come from :func:`segdil.inference.tta.predict_proba` over the same
images with the same :class:`segdil.metrics.Evaluator` settings, so the two differ only by the views.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segdil.compare.plan import ModelEntry
from segdil.inference.tta import TTA

BATCH = 16  # validation images per call (views are predicted batch by batch)


def tta_metrics(cfg, checkpoint: Path, tta: TTA, val_ds, num_classes: int) -> dict[str, Any]:
    """The evaluation metrics of one checkpoint on ``val_ds`` with ``tta``."""
    import torch

    from segdil.checkpoint import model_from_checkpoint
    from segdil.data.transforms import to_tensor
    from segdil.device import resolve_device
    from segdil.inference.tiling import same_size_runs
    from segdil.inference.tta import predict_proba
    from segdil.metrics import Evaluator

    device = resolve_device(cfg.train.device)
    model = model_from_checkpoint(checkpoint, device=device)
    ev = cfg.eval
    evaluator = Evaluator(num_classes, size_bins=tuple(ev.size_bins), small_threshold=ev.small_threshold, background_class=ev.background_class, device="cpu")
    samples = (val_ds.load(i) for i in range(len(val_ds)))
    for run in same_size_runs(samples, lambda sample: sample[1].shape, BATCH):
        images = torch.stack([to_tensor(image, cfg.data.mean, cfg.data.std) for image, _ in run])
        masks = torch.stack([torch.from_numpy(mask.astype("int64")) for _, mask in run])
        probs = predict_proba(model, images, tta, device=device)
        evaluator.update(probs.argmax(1), masks)
    return evaluator.compute()


def add_tta_metrics(entries: list[ModelEntry], records: list[dict[str, Any]], tta: TTA, out: Path, echo=print) -> None:
    """Add ``tta_metrics`` to every run record (all seeds)."""
    from segdil.compare.execute import run_dir
    from segdil.data import build_datasets

    cfg = entries[0].cfg
    _, val_ds, class_names = build_datasets(cfg.data)
    by_label = {e.label: e for e in entries}
    for i, record in enumerate(records, 1):
        entry = by_label[record["label"]]
        echo(f"TTA ({tta.describe()}) [{i}/{len(records)}] {record['label']} seed {record['seed']}")
        record["tta_metrics"] = tta_metrics(entry.cfg, run_dir(out, record["label"], record["seed"]) / "last.pt", tta, val_ds, len(class_names))
