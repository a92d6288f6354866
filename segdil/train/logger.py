"""Progress bar, metrics.jsonl and (when installed) TensorBoard scalars — rank 0 only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class RunLogger:
    def __init__(self, work_dir: Path, enabled: bool, total_steps: int):
        self.enabled = enabled
        self.bar = self.tb = self.jsonl = None
        if not enabled:
            return
        from tqdm import tqdm

        from segdil.atomic import open_log

        self.jsonl = open_log(work_dir / "metrics.jsonl")
        self.bar = tqdm(total=total_steps, desc="train", unit="step", dynamic_ncols=True)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(work_dir / "tb"))
        except ImportError:
            self.tb = None

    def echo(self, message: str) -> None:
        if self.enabled:
            (self.bar.write if self.bar else print)(message.rstrip("\n"))

    def step(self, step: int, *, loss: float, lr: float, img_per_s: float, every: int) -> None:
        if not self.enabled:
            return
        self.bar.n = step
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{img_per_s:.1f}", refresh=False)
        self.bar.refresh()
        if step % every == 0 or step == 1:
            self._write({"step": step, "loss": loss, "lr": lr, "img_per_s": img_per_s})
            if self.tb:
                self.tb.add_scalar("train/loss", loss, step)
                self.tb.add_scalar("train/lr", lr, step)
                self.tb.add_scalar("train/img_per_s", img_per_s, step)

    def validation(self, step: int, metrics: dict[str, Any], class_names: list[str]) -> None:
        if not self.enabled:
            return
        self._write({"step": step, "val": metrics})
        summary = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("mIoU", "small_object_iou", "iIoU") if isinstance(metrics.get(k), float))
        self.bar.write(f"step {step}: {summary}")
        if self.tb:
            for key, value in metrics.items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(f"val/{key}", value, step)

    def overlays(self, step: int, samples: tuple, mean: list[float], std: list[float], colors: list | None) -> None:
        """TensorBoard pictures: image | ground truth | prediction, one row per validation image."""
        if not (self.enabled and self.tb and samples):
            return
        import torch

        from segdil.data.io import default_palette

        images, masks, preds = samples
        palette = torch.tensor(colors or default_palette(), dtype=torch.float32) / 255.0
        palette = torch.cat([palette, torch.zeros(256 - len(palette), 3)]) if len(palette) < 256 else palette[:256]
        rgb = (images * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)).clamp(0, 1)
        gt = palette[masks.clamp(0, 255)].permute(0, 3, 1, 2)
        pred = palette[preds.clamp(0, 255)].permute(0, 3, 1, 2)
        rows = torch.cat([rgb, 0.5 * rgb + 0.5 * gt, 0.5 * rgb + 0.5 * pred], dim=3)
        self.tb.add_images("val/image_gt_prediction", rows, step)

    def _write(self, record: dict[str, Any]) -> None:
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()

    def close(self) -> None:
        if self.enabled:
            self.bar.close()
            self.jsonl.close()
            if self.tb:
                self.tb.close()
