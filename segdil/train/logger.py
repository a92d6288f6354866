"""Progress, metrics.jsonl and (when installed) TensorBoard scalars — rank 0 only.

On a terminal progress is a tqdm bar. When the output is not a terminal (a log file, CI, the
per-run logs of ``segdil compare``) it is plain lines instead of ``\r`` updates: one at the first
step, then one whenever another tenth of the steps is done or ``PLAIN_EVERY_S`` seconds have
passed, and one at the last step (:class:`PlainProgress`). Each such line reads
``step 40/400 (10%) loss 0.5123 lr 3.00e-03 img/s 12.3 elapsed 31s eta 279s`` and
:func:`parse_progress` reads it back (``segdil compare`` follows its runs' logs with it).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable

from segdil.atomic import open_log
from segdil.data.io import default_palette

PLAIN_EVERY_S = 30.0  # seconds between plain progress lines at most
PLAIN_FRACTION = 0.1  # a plain line whenever another tenth of the steps is done
_PROGRESS_RE = re.compile(r"^step (\d+)/(\d+) \(\d+%\) loss (\S+) lr (\S+) img/s (\S+) elapsed (\d+)s eta (\d+)s$")


def _fmt_s(seconds: float) -> str:
    return f"{max(0.0, seconds):.0f}s"


def progress_line(step: int, total: int, loss: float, lr: float, img_per_s: float, elapsed: float, budget: tuple[float, float] | None = None) -> str:
    """One plain progress line (see the module doc); with a time ``budget`` (seconds trained, the
    budget) the share done and the ETA are those of whichever of steps and seconds runs out first."""
    done = step / max(total, 1)
    eta = elapsed / step * (total - step) if step else 0.0
    if budget is not None:
        used, budget_s = budget
        done, eta = max(done, used / budget_s), min(eta, budget_s - used)
    return f"step {step}/{total} ({min(100, int(100 * done))}%) loss {loss:.4f} lr {lr:.2e} img/s {img_per_s:.1f} elapsed {_fmt_s(elapsed)} eta {_fmt_s(eta)}"


def parse_progress(line: str) -> dict[str, float] | None:
    """The numbers of a :func:`progress_line` (``step, total, loss, lr, img_per_s, elapsed_s, eta_s``), else None."""
    match = _PROGRESS_RE.match(line.strip())
    if not match:
        return None
    keys = ("step", "total", "loss", "lr", "img_per_s", "elapsed_s", "eta_s")
    try:
        return {k: float(v) for k, v in zip(keys, match.groups())}
    except ValueError:
        return None


class PlainProgress:
    """tqdm's ``n``/``set_postfix``/``refresh``/``write``/``close``, as periodic plain lines."""

    def __init__(self, total: int, stream: IO[str], every_s: float = PLAIN_EVERY_S, clock: Callable[[], float] = time.monotonic, budget_s: float | None = None):
        self.total, self.stream, self.every_s, self.clock, self.budget_s = total, stream, every_s, clock, budget_s
        self.n = 0
        self.started = clock()
        self.last_time: float | None = None
        self.last_step = 0
        self.postfix: dict[str, float] = {}

    def set_postfix(self, refresh: bool = False, **values: float) -> None:
        self.postfix = values

    def refresh(self) -> None:
        now = self.clock()
        step_gap = max(1, int(self.total * PLAIN_FRACTION))
        due = (
            self.last_time is None
            or self.n >= self.total
            or self.n // step_gap > self.last_step // step_gap
            or now - self.last_time >= self.every_s
        )
        if not due or self.n == self.last_step:
            return
        p = self.postfix
        self.write(progress_line(self.n, self.total, p.get("loss", float("nan")), p.get("lr", float("nan")), p.get("img_s", 0.0), now - self.started, self._budget()))
        self.last_time, self.last_step = now, self.n

    def _budget(self) -> tuple[float, float] | None:
        return None if self.budget_s is None else (self.postfix.get("train_s", 0.0), self.budget_s)

    def write(self, message: str, file: IO[str] | None = None) -> None:
        stream = file or self.stream
        stream.write(message.rstrip("\n") + "\n")
        stream.flush()

    def close(self) -> None:
        self.stream.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def per_class_iou(metrics: dict[str, Any], class_names: list[str]) -> dict[str, float | None]:
    """{class name: pixel IoU} of a validation's ``per_class_iou`` (class ``i`` where a name is missing)."""
    values = metrics.get("per_class_iou") or []
    return {str(class_names[i]) if i < len(class_names) else f"class {i}": value for i, value in enumerate(values)}


class RunLogger:
    def __init__(self, work_dir: Path, enabled: bool, total_steps: int, stream: IO[str] | None = None, budget_s: float | None = None):
        self.enabled, self.budget_s = enabled, budget_s
        self.bar = self.tb = self.jsonl = None
        if not enabled:
            return
        from tqdm import tqdm

        self.jsonl = open_log(work_dir / "metrics.jsonl")
        stream = stream or sys.stderr
        if _isatty(stream):
            self.bar = tqdm(total=total_steps, desc="train", unit="step", dynamic_ncols=True, file=stream)
        else:
            self.bar = PlainProgress(total_steps, stream, budget_s=budget_s)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(work_dir / "tb"))
        except ImportError:
            self.tb = None
            if self.enabled:
                print(f"note: tensorboard is not installed: no TensorBoard logs in {work_dir / 'tb'} (metrics.jsonl holds the same scalars); pip install 'segdil[tensorboard]'")

    def echo(self, message: str) -> None:
        if self.enabled:
            (self.bar.write if self.bar else print)(message.rstrip("\n"))

    def step(self, step: int, *, loss: float, lr: float, img_per_s: float, every: int, train_s: float = 0.0) -> None:
        """Progress after ``step``; ``train_s``: seconds trained (across resumes), the clock of the budget."""
        if not self.enabled:
            return
        self.bar.n = step
        if isinstance(self.bar, PlainProgress):
            self.bar.set_postfix(loss=loss, lr=lr, img_s=img_per_s, train_s=train_s)
        else:
            budget = {"budget": f"{train_s:.0f}/{self.budget_s:g}s"} if self.budget_s is not None else {}
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{img_per_s:.1f}", **budget, refresh=False)
        self.bar.refresh()
        if step % every == 0 or step == 1:
            self._write({"step": step, "loss": loss, "lr": lr, "img_per_s": img_per_s})
            if self.tb:
                self.tb.add_scalar("train/loss", loss, step)
                self.tb.add_scalar("train/lr", lr, step)
                self.tb.add_scalar("train/img_per_s", img_per_s, step)

    def validation(self, step: int, metrics: dict[str, Any], class_names: list[str]) -> None:
        """A validation's metrics: in metrics.jsonl (``val``, and ``val_iou_per_class`` {class name:
        pixel IoU, None where the class is absent}) and as TensorBoard scalars (``val/<metric>``,
        ``val_iou_per_class/<class name>``)."""
        if not self.enabled:
            return
        per_class = per_class_iou(metrics, class_names)
        self._write({"step": step, "val": metrics, "val_iou_per_class": per_class})
        summary = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("mIoU", "small_object_iou", "iIoU") if isinstance(metrics.get(k), float))
        self.bar.write(f"step {step}: {summary}")
        if self.tb:
            for key, value in metrics.items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(f"val/{key}", value, step)
            for name, value in per_class.items():
                if value is not None:
                    self.tb.add_scalar(f"val_iou_per_class/{name}", value, step)

    def overlays(self, step: int, samples: tuple, mean: list[float], std: list[float], colors: list | None) -> None:
        """TensorBoard pictures: image | ground truth | prediction, one row per validation image."""
        if not (self.enabled and self.tb and samples):
            return
        import torch

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
