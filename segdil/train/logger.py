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

        self.jsonl = open(work_dir / "metrics.jsonl", "a")
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

    def _write(self, record: dict[str, Any]) -> None:
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()

    def close(self) -> None:
        if self.enabled:
            self.bar.close()
            self.jsonl.close()
            if self.tb:
                self.tb.close()
