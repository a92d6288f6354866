"""Checkpoints: written atomically (temporary file, fsync, rename), read with ``weights_only=True``.

A checkpoint is a plain dict:
    model_args   the ``create_model`` kwargs, ``name`` included
    model        the state_dict
    config       the resolved config as a plain dict
    class_names  list of class names (index = class id)
    step, metrics, and for resuming: optimizer, train_s (seconds trained), scaler, rng, data_position
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segdil.atomic import save_torch
from segdil.config import WEIGHT_ARGS, check_model_args, config_from_dict, validate_model_section
from segdil.errors import SegdilError, shown
from segdil.file_sniff import text_start
from segdil.models import create_model_quietly


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> None:
    """Write ``obj`` to ``path`` so that a crash at any moment leaves the previous file intact."""
    save_torch(obj, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a missing, empty or broken file, a pickle with
    code in it, or ``model_args`` that describe no segdil model are one-line errors."""
    path = Path(path)
    if path.is_dir():
        raise SegdilError(f"{path}: a folder, not a checkpoint file; name the file inside it (a run's work dir holds last.pt and best.pt)")
    if not path.is_file():
        raise SegdilError(f"{path}: checkpoint not found" if not path.exists() else f"{path}: not a regular file, not a checkpoint")
    if path.stat().st_size == 0:
        raise SegdilError(f"{path}: empty file (0 bytes), not a segdil checkpoint; was its writing interrupted by something other than segdil?")
    foreign = _foreign_format(path)
    if foreign:
        raise SegdilError(f"{path}: {foreign}, not a segdil checkpoint (a .pt file written by segdil train)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's message suggests weights_only=False, i.e. running the file's code: never for an untrusted file
        raise SegdilError(f"{path}: not a segdil checkpoint (it holds Python objects other than tensors and plain values, which segdil never loads)") from None
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise SegdilError(f"{path}: not a readable segdil checkpoint ({_first_line(exc)})") from None
    if not isinstance(ckpt, dict) or "model_args" not in ckpt or "model" not in ckpt:
        raise SegdilError(f"{path}: not a segdil checkpoint (no model_args/model); was it written by segdil train?")
    if not isinstance(ckpt["model_args"], dict) or not isinstance(ckpt["model"], dict):
        raise SegdilError(f"{path}: not a segdil checkpoint (model_args and model must be mappings)")
    ckpt["_path"] = str(path)
    checked_model_args(ckpt)  # a foreign or crafted model_args is refused here, before any model is built
    return ckpt


TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive; a legacy (pickle protocol >= 2) file


def _foreign_format(path: Path) -> str | None:
    """What the file is when its first bytes say it is no torch file (text, an image, ...); None: it may be one."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(TORCH_MAGIC):
        return None
    text = text_start(head)
    if text is not None:
        return text
    return "not a torch file (its first bytes are " + head[:8].hex(" ") + ")"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


# model_args keys that checkpoints of earlier versions hold and that no longer describe the model
# (init_from: the warm start they began from, now train.init_from)
RETIRED_MODEL_KEYS = ("init_from",)


def checked_model_args(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's ``model_args``, checked like a config's ``model:`` section (name, keys,
    types, what the constructor accepts); one-line errors name the file."""
    where = ckpt.get("_path", "checkpoint")
    try:
        args = validate_model_section({k: v for k, v in ckpt["model_args"].items() if k not in RETIRED_MODEL_KEYS})
        check_model_args(args, "model_args", memory=False)
    except SegdilError as exc:
        raise SegdilError(f"{where}: {exc.message}; the checkpoint's model_args do not describe a segdil model") from None
    return args


def check_state_shapes(model: nn.Module, state: dict[str, Any], where: str) -> None:
    """Compare the weights' names and shapes with ``model``'s (a meta model: nothing allocated)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} tensor(s) of the wrong shape, e.g. {shown(k)} is {tuple(getattr(state[k], 'shape', ()))} but the model needs {tuple(own[k].shape)}")
        if missing:
            parts.append(f"{len(missing)} missing, e.g. {shown(missing[0])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {shown(unexpected[0])}")
        raise SegdilError(f"{where}: the weights do not fit the model its model_args describe ({'; '.join(parts)})")


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model a checkpoint describes, load its weights, put it in eval mode."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    args = checked_model_args(ckpt)
    state = checkpoint_state_dict(ckpt)
    built = {k: v for k, v in args.items() if k not in WEIGHT_ARGS}  # the checkpoint holds the weights: none are read or downloaded
    with torch.device("meta"):
        check_state_shapes(create_model_quietly(**built), state, ckpt.get("_path", "checkpoint"))
    model = create_model_quietly(**built)
    model.load_state_dict(state)
    return model.to(device).eval()


def checkpoint_config(ckpt: dict[str, Any]):
    """The typed ``Config`` a checkpoint was trained with (defaults for what an older one lacks)."""
    return config_from_dict(ckpt.get("config") or {"model": dict(ckpt["model_args"])})


def checkpoint_state_dict(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The model weights, with the prefixes DDP (``module.``) and ``torch.compile`` add removed."""
    return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
