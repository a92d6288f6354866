"""Validation during training: the evaluation metrics, all-reduced across processes.

It runs the training model directly, not through ``inference.engine.Predictor``: the Predictor would fold BatchNorm into a copy at every validation, switch from training's autocast to the inference precision policy (bf16 guard) and gather logits on the CPU, changing the numbers that pick ``best.pt`` and slowing every validation.
"""

from __future__ import annotations

from typing import Any

import torch

from segdil.config import Config
from segdil.metrics import Evaluator


@torch.no_grad()
def validate(model: torch.nn.Module, loader, num_classes: int, cfg: Config, device: torch.device, autocast, keep: int = 0) -> tuple[dict[str, Any], tuple]:
    """The validation metrics, and the first ``keep`` (image, mask, prediction) triples for pictures."""
    ev = cfg.eval
    evaluator = Evaluator(num_classes, size_bins=tuple(ev.size_bins), small_threshold=ev.small_threshold, background_class=ev.background_class, device=device)
    model.eval()
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    samples: tuple = ()
    for images, masks in loader:
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        with autocast:
            logits = model(images)
        preds = logits.argmax(1)
        evaluator.update(preds, masks.to(device, non_blocking=True))
        if keep and not samples:
            samples = (images[:keep].float().cpu(), masks[:keep].cpu(), preds[:keep].cpu())
    evaluator.all_reduce()
    return evaluator.compute(), samples
