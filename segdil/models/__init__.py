"""The model registry: a plain dict from name to constructor.

``create_model(name, **kwargs)`` builds a model; None-valued kwargs are dropped so that config
values left empty fall back to the constructor's defaults.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from segdil.models.base import SegModel
from segdil.models.fcn import FCN
from segdil.models.hdc import HDCNet
from segdil.models.hdc_context import HDCContextNet
from segdil.models.seed_classifier import SeedClassifier
from segdil.models.smp import SMPModel

# the model a config gets when it names none
DEFAULT_MODEL = "hdc"

MODELS: dict[str, type[SegModel]] = {
    "hdc": HDCNet,
    "hdc_context": HDCContextNet,
    "fcn": FCN,
    "seed_classifier": SeedClassifier,
    "smp": SMPModel,
}


def model_class(name: str | None) -> type[SegModel]:
    """The class registered as ``name``; unknown names raise a ValueError listing the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def create_model(name: str, **kwargs: Any) -> SegModel:
    """Build a registered model by name. Unknown names raise a ValueError listing the valid ones."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return model_class(name)(**kwargs)


def create_model_quietly(**model_args: Any) -> SegModel:
    """``create_model`` with construction warnings (gridding) silenced, for code that reports the
    analysis elsewhere or builds models only to count or run them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_model(**model_args)


def rf_stack_args(model_args: dict[str, Any]) -> dict[str, Any]:
    """``segdil.rf.analyze_stack`` arguments of a model section; ValueError for a family without
    an analytic receptive field."""
    name = model_args.get("name")
    stack = model_class(name).rf_stack_args(model_args)
    if stack is None:
        analysed = ", ".join(n for n, cls in MODELS.items() if cls.rf_stack_args({}) is not None)
        raise ValueError(f"model {name!r} has no dilation-rate stack to analyse; the analytic receptive field covers {analysed}")
    return stack


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
