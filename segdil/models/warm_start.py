"""``model.init_from``: start from another segdil run's checkpoint, parameters matched by name and shape.

A practical warm start for fine-tuning on other data: the head of a model with another number of
classes is skipped (its shape differs), everything else that matches is copied. A summary line is
printed; a checkpoint that matches nothing is an error.
"""

from __future__ import annotations

import sys
from pathlib import Path

from torch import nn

from segdil.errors import SegdilError


def warm_start(model: nn.Module, path: str | Path, *, quiet: bool = False) -> dict[str, list[str]]:
    """Copy the parameters and buffers of checkpoint ``path`` whose name and shape match into ``model``.

    Returns ``{"loaded": [...], "shape_mismatch": [...], "not_in_checkpoint": [...], "unused": [...]}``.
    """
    from segdil.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    theirs = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
    own = model.state_dict()
    loaded = [k for k in own if k in theirs and theirs[k].shape == own[k].shape]
    report = {
        "loaded": loaded,
        "shape_mismatch": [k for k in own if k in theirs and theirs[k].shape != own[k].shape],
        "not_in_checkpoint": [k for k in own if k not in theirs],
        "unused": [k for k in theirs if k not in own],
    }
    if not any(k in dict(model.named_parameters()) for k in loaded):
        raise SegdilError(f"{path}: model.init_from matches no parameter of this model (checkpoint of {ckpt['model_args'].get('name')!r}); check the model settings")
    model.load_state_dict({k: theirs[k] for k in loaded}, strict=False)
    if not quiet:
        params = dict(model.named_parameters())
        count = sum(params[k].numel() for k in loaded if k in params)
        total = sum(p.numel() for p in params.values())
        skipped = report["shape_mismatch"] + report["not_in_checkpoint"]
        detail = f"; kept fresh: {', '.join(skipped[:4])}{', ...' if len(skipped) > 4 else ''}" if skipped else ""
        print(
            f"init_from {path}: loaded {len(loaded)}/{len(own)} tensors ({count:,} of {total:,} parameters), "
            f"{len(report['shape_mismatch'])} with another shape, {len(report['not_in_checkpoint'])} not in the checkpoint{detail}",
            file=sys.stderr,
            flush=True,
        )
    return report
