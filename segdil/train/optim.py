"""Optimizer and learning-rate schedule: SGD or AdamW; linear warm-up then poly, cosine or constant,
over the step limit or the time budget."""

from __future__ import annotations

import math

import torch
from torch import nn

from segdil.config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on convolution and linear weights only, not on norms and biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(step: int, cfg: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based), ``elapsed_s`` seconds into training.

    The schedule ends at ``train.max_steps`` or, with ``train.budget_s``, at the budget's last
    second, whichever comes first: a run stopped by its clock has decayed like one stopped by
    its step count.
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    if cfg.budget_s is not None:
        progress = max(progress, elapsed_s / cfg.budget_s)
    progress = min(1.0, progress)
    if cfg.schedule == "poly":
        return (1.0 - progress) ** cfg.poly_power
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def set_learning_rate(optimizer: torch.optim.Optimizer, cfg: TrainConfig, step: int, elapsed_s: float) -> float:
    """Set every parameter group's rate for ``step`` (see ``lr_factor``); returns it."""
    lr = cfg.lr * lr_factor(step, cfg, elapsed_s)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def schedule_notes(cfg: TrainConfig) -> list[str]:
    """One line each for a schedule that a short run leaves unfinished: a warm-up as long as the run
    (the rate never reaches ``train.lr``) and validation only at the last step. Said, not changed:
    the run trains as configured. A ``train.budget_s`` run ends by its clock: ``max_steps`` is only its cap."""
    if cfg.budget_s is not None:
        return []
    notes = []
    if cfg.warmup_steps > cfg.max_steps:
        top = cfg.lr * lr_factor(cfg.max_steps - 1, cfg)
        notes.append(
            f"note: train.warmup_steps={cfg.warmup_steps} > train.max_steps={cfg.max_steps}: the learning rate never leaves warm-up "
            f"(it ends at {top:.2e}, train.lr is {cfg.lr:.2e}); for a short run set train.warmup_steps={cfg.max_steps // 10}"
        )
    if cfg.val_every > cfg.max_steps:
        notes.append(
            f"note: train.val_every={cfg.val_every} > train.max_steps={cfg.max_steps}: validation runs once, at the last step; "
            f"set train.val_every={max(1, cfg.max_steps // 4)} to see progress"
        )
    return notes
