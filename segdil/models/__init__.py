"""The model registry: a plain dict from name to constructor.

``create_model(name, **kwargs)`` builds a model; None-valued kwargs are dropped so that config
values left empty fall back to the constructor's defaults.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from segdil.models.fcn import FCN
from segdil.models.hdc import HDCNet
from segdil.models.seed_classifier import SeedClassifier
from segdil.models.smp import SMPModel

MODELS: dict[str, type[nn.Module]] = {
    "hdc": HDCNet,
    "fcn": FCN,
    "seed_classifier": SeedClassifier,
    "smp": SMPModel,
}

# models that output (N, num_classes) instead of (N, num_classes, H, W)
CLASSIFIERS = frozenset({"seed_classifier"})


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name. Unknown names raise a ValueError listing the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return MODELS[name](**kwargs)


def model_names() -> list[str]:
    return sorted(MODELS)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, height: int = 256, width: int = 256, in_channels: int = 3) -> int:
    """Forward FLOPs of one image, from ``torch.utils.flop_counter`` (a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    param = next(model.parameters())
    x = torch.zeros(1, in_channels, height, width, device=param.device, dtype=param.dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())
