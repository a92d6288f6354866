"""``train.init_from``: start training from another segdil run's checkpoint, parameters matched by name and shape.

A warm start for any registered model, e.g. fine-tuning on other data: the head of a model with
another number of classes is skipped (its shape differs), everything else that matches is copied.
``segdil/train/main.py`` reads and checks the checkpoint before anything is written
(``read_init_from``) and applies it once, after the model is built and before the optimizer
(``warm_start``); a resumed run takes its weights from its own ``last.pt`` instead. A summary line
is printed; a checkpoint that matches no parameter is an error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from segdil.checkpoint import checkpoint_state_dict, load_checkpoint
from segdil.errors import SegdilError
from segdil.models import create_model_quietly


def read_init_from(path: str | Path, model_args: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint ``train.init_from`` names, read and matched against the model ``model_args``
    describe (built on the meta device: nothing allocated, no weight files read); one-line errors."""
    try:
        ckpt = load_checkpoint(path)
    except SegdilError as exc:
        raise SegdilError(f"train.init_from: {exc.message}") from None
    with torch.device("meta"):
        model = create_model_quietly(**{k: v for k, v in model_args.items() if k != "encoder_weights"})
    match_state(model, ckpt)
    return ckpt


def match_state(model: nn.Module, ckpt: dict[str, Any]) -> dict[str, list[str]]:
    """Which of ``model``'s tensors the checkpoint ``ckpt`` holds with the same name and shape:
    ``{"loaded": [...], "shape_mismatch": [...], "not_in_checkpoint": [...], "unused": [...]}``."""
    theirs = checkpoint_state_dict(ckpt)
    own = model.state_dict()
    loaded = [k for k in own if k in theirs and tuple(theirs[k].shape) == tuple(own[k].shape)]
    if not any(k in dict(model.named_parameters()) for k in loaded):
        where = ckpt.get("_path", "checkpoint")
        raise SegdilError(f"train.init_from {where}: matches no parameter of this model (checkpoint of {ckpt['model_args'].get('name')!r}); check the model settings")
    return {
        "loaded": loaded,
        "shape_mismatch": [k for k in own if k in theirs and tuple(theirs[k].shape) != tuple(own[k].shape)],
        "not_in_checkpoint": [k for k in own if k not in theirs],
        "unused": [k for k in theirs if k not in own],
    }


def warm_start(model: nn.Module, source: str | Path | dict[str, Any], echo: Callable[[str], None] | None = None) -> dict[str, list[str]]:
    """Copy the parameters and buffers of the checkpoint ``source`` (a path or a loaded checkpoint)
    whose name and shape match into ``model``; returns ``match_state``'s report.

    ``echo`` receives the one-line summary (default: standard error)."""
    ckpt = source if isinstance(source, dict) else load_checkpoint(source)
    report = match_state(model, ckpt)
    theirs = checkpoint_state_dict(ckpt)
    model.load_state_dict({k: theirs[k] for k in report["loaded"]}, strict=False)
    (echo or _to_stderr)(summary(model, report, ckpt.get("_path", source if not isinstance(source, dict) else "checkpoint")))
    return report


def summary(model: nn.Module, report: dict[str, list[str]], path: str | Path) -> str:
    """``train.init_from PATH: loaded 10/12 tensors (...), 2 with another shape, ...``."""
    params = dict(model.named_parameters())
    loaded = report["loaded"]
    count = sum(params[k].numel() for k in loaded if k in params)
    total = sum(p.numel() for p in params.values())
    skipped = report["shape_mismatch"] + report["not_in_checkpoint"]
    detail = f"; kept fresh: {', '.join(skipped[:4])}{', ...' if len(skipped) > 4 else ''}" if skipped else ""
    own = len(loaded) + len(skipped)
    return (
        f"train.init_from {path}: loaded {len(loaded)}/{own} tensors ({count:,} of {total:,} parameters), "
        f"{len(report['shape_mismatch'])} with another shape, {len(report['not_in_checkpoint'])} not in the checkpoint{detail}"
    )


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
