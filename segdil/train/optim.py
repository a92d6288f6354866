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
