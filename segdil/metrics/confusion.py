"""A streaming confusion matrix on the model's device, and the pixel metrics read from it."""

from __future__ import annotations

from typing import Any

import torch


class ConfusionMatrix:
    """``matrix[t, p]`` counts pixels of ground-truth class ``t`` predicted as ``p``.

    Pixels whose ground truth is ``ignore_index`` are skipped. The counts stay on ``device``
    (one ``bincount`` per update), so evaluation on a GPU never copies masks to the host.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, device: str | torch.device = "cpu"):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.device = torch.device(device)
        self.matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64, device=self.device)

    def reset(self) -> None:
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        """Add a batch of index masks of equal shape (any device, any integer dtype).

        Every ``pred`` value must be a class in [0, num_classes); every ``gt`` value a class or
        ``ignore_index``. Anything else raises a ValueError.
        """
        if pred.shape != gt.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} differs from gt shape {tuple(gt.shape)}")
        n = self.num_classes
        pred = pred.to(self.device, non_blocking=True).reshape(-1)
        gt = gt.to(self.device, non_blocking=True).reshape(-1)
        if pred.numel() == 0:
            return
        pred_min, pred_max = torch.aminmax(pred)
        if bool(((pred_min < 0) | (pred_max >= n)).item()):
            raise ValueError(f"pred values must lie in [0, {n}); got values in [{int(pred_min)}, {int(pred_max)}]")
        if gt.dtype.is_signed:
            negative = gt.min() < 0 if self.ignore_index >= 0 else ((gt < 0) & (gt != self.ignore_index)).any()
            if bool(negative.item()):
                raise ValueError(f"gt values must lie in [0, {n}) or equal ignore_index {self.ignore_index}; got negative values")
        if self.ignore_index >= n:
            # cell t * n + p; ignored pixels fall in [ignore * n, ignore * n + n), never in the matrix
            counts = torch.bincount(torch.add(pred.long(), gt.long(), alpha=n), minlength=n * n)
            ignored = self.ignore_index * n
            unknown = counts[n * n :].sum() - (counts[ignored : ignored + n].sum() if counts.numel() > ignored else 0)
        else:
            cells = torch.where(gt == self.ignore_index, n * n, gt.long() * n + pred.long())
            counts = torch.bincount(cells, minlength=n * n + 1)
            unknown = counts[n * n + 1 :].sum()
        if unknown.item():
            raise ValueError(f"{unknown.item()} gt pixels have a value outside [0, {n}) that is not ignore_index {self.ignore_index}")
        self.matrix += counts[: n * n].reshape(n, n)

    def all_reduce(self) -> torch.Tensor:
        """The matrix summed over all torch.distributed processes (this one's when not initialised)."""
        total = self.matrix.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(total)
        return total


def pixel_metrics(matrix: torch.Tensor) -> dict[str, Any]:
    """mIoU, per-class IoU, pixel accuracy, mean class accuracy and mDice from a confusion matrix.

    A class is *present* when it occurs in the ground truth or in the prediction; IoU and Dice of
    absent classes are None and left out of the means. Mean accuracy averages over classes that
    occur in the ground truth.
    """
    m = matrix.detach().to("cpu", torch.float64)
    tp = m.diagonal()
    gt_count = m.sum(1)
    pred_count = m.sum(0)
    union = gt_count + pred_count - tp
    present = union > 0
    iou = torch.where(present, tp / union.clamp(min=1), torch.nan)
    dice = torch.where(present, 2 * tp / (gt_count + pred_count).clamp(min=1), torch.nan)
    acc = torch.where(gt_count > 0, tp / gt_count.clamp(min=1), torch.nan)
    total = m.sum()
    return {
        "mIoU": _nanmean(iou),
        "per_class_iou": _plain_list(iou),
        "pixel_acc": float(tp.sum() / total) if total > 0 else None,
        "mean_acc": _nanmean(acc),
        "per_class_acc": _plain_list(acc),
        "mDice": _nanmean(dice),
        "per_class_dice": _plain_list(dice),
        "num_pixels": int(total),
    }


def false_positives(matrix: torch.Tensor) -> torch.Tensor:
    """Per class: pixels predicted as the class whose (non-ignored) ground truth is another class."""
    m = matrix.detach().to("cpu", torch.int64)
    return m.sum(0) - m.diagonal()


def _nanmean(values: torch.Tensor) -> float | None:
    kept = values[~values.isnan()]
    return float(kept.mean()) if kept.numel() else None


def _plain_list(values: torch.Tensor) -> list[float | None]:
    return [None if v != v else float(v) for v in values.tolist()]
