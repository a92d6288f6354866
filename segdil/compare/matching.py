"""``--match params|flops``: scale model widths so every model costs about what the first one does.

The width arguments of a model (its class's ``width_args``: for ``hdc`` ``widths`` and
``stem_width``, for ``fcn`` ``width`` and ``max_width``) are multiplied by one factor, found by bisection on log2(factor), and rounded to
whole channels. smp models have no width argument and are kept as they are. Costs are counted on
the ``meta`` device (no memory, no arithmetic): parameters, or forward FLOPs of one 256×256 image.
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from segdil.models import MODELS, count_flops, count_params, create_model_quietly, model_class

CostKind = Literal["params", "flops"]

COST_SIZE = 256


@dataclass
class Match:
    """The outcome for one model: its (scaled) model section and how close it came."""

    model: dict[str, Any]
    factor: float
    cost: int
    target: int
    scalable: bool
    within: bool

    @property
    def ratio(self) -> float:
        return self.cost / self.target if self.target else math.nan

    def note(self, kind: CostKind, tolerance: float) -> str:
        if not self.scalable:
            return f"{self.model['name']} has no width argument: kept as is ({kind} {self.ratio:.2f}× the reference)"
        if not self.within:
            return f"no width gives {kind} within ±{tolerance:.0%}; closest is {self.ratio:.2f}× the reference (factor {self.factor:.3f})"
        return f"widths ×{self.factor:.3f}: {kind} {self.ratio:.3f}× the reference"


def width_args(name: str | None) -> tuple[str, ...]:
    """The constructor arguments of model family ``name`` that hold channel counts."""
    return model_class(name).width_args


def is_scalable(model: dict[str, Any]) -> bool:
    return bool(width_args(model.get("name")))


def _defaults(name: str) -> dict[str, Any]:
    return {k: p.default for k, p in inspect.signature(model_class(name)).parameters.items() if p.default is not inspect.Parameter.empty}


def scale_model(model: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of a model section with every width multiplied by ``factor`` (at least 1 channel).

    Unset widths start from the constructor's defaults; a zero ``stem_width`` (no stem) stays zero.
    """
    name = model.get("name")
    if not width_args(name):
        scalable = ", ".join(n for n, cls in MODELS.items() if cls.width_args)
        raise ValueError(f"model {name!r} has no width argument to scale; scalable: {scalable}")
    defaults = _defaults(name)
    out = dict(model)
    for key in width_args(name):
        value = model.get(key, defaults.get(key))
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out[key] = [max(1, round(int(v) * factor)) for v in value]
        elif int(value) > 0:
            out[key] = max(1, round(int(value) * factor))
    return out


def model_cost(model: dict[str, Any], kind: CostKind, num_classes: int | None = None, size: int = COST_SIZE) -> int:
    """Parameters, or forward FLOPs of one ``size``×``size`` image, of the model a section describes."""
    args = dict(model)
    args.pop("encoder_weights", None)  # pretrained weights change neither count; nothing is loaded
    if num_classes is not None:
        args["num_classes"] = num_classes
    with torch.device("meta"):
        net = create_model_quietly(**args)
    if kind == "params":
        return count_params(net)
    if kind == "flops":
        return count_flops(net, size, size)
    raise ValueError(f"cost kind {kind!r}: valid kinds are params, flops")


def match_to(model: dict[str, Any], target: int, kind: CostKind, num_classes: int | None = None, tolerance: float = 0.1, max_iter: int = 40) -> Match:
    """Bisect the width factor of ``model`` until its cost is within ``tolerance`` of ``target``.

    Rounding to whole channels makes the cost a step function of the factor, so the search keeps the
    closest factor it has seen and stops early once the cost is within a quarter of the tolerance.
    """
    if not is_scalable(model):
        cost = model_cost(model, kind, num_classes)
        return Match(dict(model), 1.0, cost, target, scalable=False, within=abs(cost / target - 1) <= tolerance)
    cache: dict[str, int] = {}

    def cost_at(log_factor: float) -> tuple[dict[str, Any], int]:
        scaled = scale_model(model, 2.0**log_factor)
        key = json.dumps(scaled, sort_keys=True, default=str)
        if key not in cache:
            cache[key] = model_cost(scaled, kind, num_classes)
        return scaled, cache[key]

    lo, hi = -8.0, 8.0
    best: tuple[float, float, dict[str, Any], int] | None = None  # (error, log factor, model, cost)
    for log_factor in [0.0] + [None] * max_iter:  # the unscaled model first: it may already match
        if log_factor is None:
            log_factor = (lo + hi) / 2
        scaled, cost = cost_at(log_factor)
        error = abs(math.log(cost / target))
        if best is None or error < best[0]:
            best = (error, log_factor, scaled, cost)
        if abs(cost / target - 1) <= tolerance / 4 or hi - lo < 1e-4:
            break
        if cost < target:
            lo = log_factor
        else:
            hi = log_factor
    _, log_factor, scaled, cost = best
    return Match(scaled, 2.0**log_factor, cost, target, scalable=True, within=abs(cost / target - 1) <= tolerance)


def match_models(models: list[dict[str, Any]], kind: CostKind, num_classes: int | None = None, tolerance: float = 0.1) -> list[Match]:
    """Scale every model to the cost of the first (the reference, kept as it is)."""
    if not models:
        return []
    target = model_cost(models[0], kind, num_classes)
    reference = Match(dict(models[0]), 1.0, target, target, scalable=is_scalable(models[0]), within=True)
    return [reference] + [match_to(m, target, kind, num_classes, tolerance) for m in models[1:]]
