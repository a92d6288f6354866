"""Checkpoints: written atomically (temporary file, fsync, rename), read with ``weights_only=True``.

A checkpoint is a plain dict:
    model_args   the ``create_model`` kwargs, ``name`` included
    model        the state_dict
    config       the resolved config as a plain dict
    class_names  list of class names (index = class id)
    step, metrics, and for resuming: optimizer, scheduler, scaler, rng, data_position
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from segdil.atomic import save_torch
from segdil.errors import SegdilError


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> None:
    """Write ``obj`` to ``path`` so that a crash at any moment leaves the previous file intact."""
    save_torch(obj, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a missing or broken file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise SegdilError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise SegdilError(f"{path}: not a readable segdil checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or "model_args" not in ckpt or "model" not in ckpt:
        raise SegdilError(f"{path}: not a segdil checkpoint (no model_args/model); was it written by segdil train?")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model a checkpoint describes, load its weights, put it in eval mode."""
    from segdil.models import create_model_quietly

    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    # init_from was the starting point of training; the checkpoint's own weights replace it
    model = create_model_quietly(**{k: v for k, v in ckpt["model_args"].items() if k != "init_from"})
    model.load_state_dict(checkpoint_state_dict(ckpt))
    return model.to(device).eval()


def checkpoint_config(ckpt: dict[str, Any]):
    """The typed ``Config`` a checkpoint was trained with (defaults for what an older one lacks)."""
    from segdil.config import config_from_dict

    return config_from_dict(ckpt.get("config") or {"model": dict(ckpt["model_args"])})


def checkpoint_state_dict(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The model weights, with the prefixes DDP (``module.``) and ``torch.compile`` add removed."""
    return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
