"""The training loss: cross-entropy (ignore 255) plus optional smp Dice, Focal and Lovasz terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segdil.config import LossConfig
from segdil.errors import SegdilError

IGNORE = 255


class SegmentationLoss(nn.Module):
    def __init__(self, cfg: LossConfig, num_classes: int):
        super().__init__()
        import segmentation_models_pytorch as smp

        if cfg.class_weights is not None and len(cfg.class_weights) != num_classes:
            raise SegdilError(f"train.loss.class_weights: {len(cfg.class_weights)} values for {num_classes} classes; give one weight per class")
        weight = torch.tensor(cfg.class_weights, dtype=torch.float32) if cfg.class_weights else None
        self.register_buffer("class_weights", weight, persistent=False)
        self.cfg = cfg
        self.terms = nn.ModuleDict()
        if cfg.dice:
            self.terms["dice"] = smp.losses.DiceLoss("multiclass", ignore_index=IGNORE)
        if cfg.focal:
            self.terms["focal"] = smp.losses.FocalLoss("multiclass", ignore_index=IGNORE)
        if cfg.lovasz:
            self.terms["lovasz"] = smp.losses.LovaszLoss("multiclass", ignore_index=IGNORE)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        loss = self.cfg.ce * F.cross_entropy(logits, target, weight=self.class_weights, ignore_index=IGNORE)
        for name, term in self.terms.items():
            loss = loss + getattr(self.cfg, name) * term(logits, target)
        return loss
