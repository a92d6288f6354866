"""Model arguments tried before anything runs: the model is built on the meta device (no memory, no
weights read), so that arguments its constructor refuses, a layer left with no weights (a width of
0) or more parameters than the machine can hold are one-line errors naming ``model.<argument>``.

Nothing here knows a model family: the argument to blame is found by building the model again with
each argument the user set put back to the constructor's default (the first one that cures the
problem is named), or, for a constructor's message, by the argument the message itself names.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

from segdil.config.memory import BYTES_PER_TRAINED_PARAM, format_bytes, machine_memory_bytes
from segdil.errors import SegdilError, shown

# what a constructor raises for arguments it cannot build (a weights file that is not one: UnpicklingError is an Exception)
REFUSALS = (ValueError, TypeError, AssertionError, RuntimeError, KeyError, IndexError, ZeroDivisionError, OverflowError, OSError)
WEIGHT_ARGS = ("encoder_weights",)  # arguments that name weights to read: tried only with ``weights=True``


def check_model_args(model_args: dict[str, Any], where: str = "model", weights: bool = False, memory: bool = True) -> int:
    """Build the model ``model_args`` describe on the meta device; returns its parameter count.

    One-line errors (``SegdilError``) for arguments the constructor refuses, a parameter with no
    elements, or (with ``memory``) parameters that alone need more memory to train than this
    machine has (a checkpoint's arguments are checked without: its weights say more). With ``weights``
    the weight arguments (``encoder_weights``) are tried too: the file or name is checked, offline
    at once, nothing downloaded (the family reads no weights on the meta device)."""
    args = {k: v for k, v in model_args.items() if weights or k not in WEIGHT_ARGS}
    name = model_args.get("name")
    problem = _problem(args, memory)
    if problem is None:
        return _param_count(args)
    culprit = _named_argument(problem, args) or _culprit(args, memory)
    if culprit is None:
        raise SegdilError(f"{where}: model {shown(name)} refuses its arguments ({_bounded(problem)})")
    own = f"{culprit}={args[culprit]!r}: "
    if problem.startswith(own):  # the constructor's own message already says what is wrong with the value
        raise SegdilError(f"{where}.{culprit}={shown(args[culprit])}: {_bounded(problem[len(own):])}")
    raise SegdilError(f"{where}.{culprit}={shown(args[culprit])}: model {shown(name)} refuses it ({_bounded(problem)}){_default_hint(name, culprit)}")


def _bounded(text: str, limit: int = 360) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _build(args: dict[str, Any]):
    import torch

    from segdil.models import create_model  # torch: command modules import segdil.config at their top

    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        return create_model(**args)


def _problem(args: dict[str, Any], memory: bool = True) -> str | None:
    """Why the model of ``args`` cannot be trained, in one line; None: it can (as far as the meta build shows)."""
    try:
        model = _build(args)
    except REFUSALS as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        if not lines:
            return type(exc).__name__
        return " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]  # torch's "Error(s) in loading state_dict for X:" says what on the next line
    except SegdilError as exc:  # a family's own one-line refusal
        return exc.message
    except Exception as exc:  # e.g. pickle.UnpicklingError of a weights file, whose own text advises running its code
        return f"{type(exc).__name__} while building it"
    empty = next(((n, tuple(p.shape)) for n, p in model.named_parameters() if p.numel() == 0), None)
    if empty is not None:
        return f"it leaves a layer with no weights: {empty[0]} has shape {empty[1]}"
    params = sum(p.numel() for p in model.parameters())
    if not memory:
        return None
    need, have = params * BYTES_PER_TRAINED_PARAM, machine_memory_bytes()
    if have is not None and need > have:
        return f"{params:,} parameters need at least {format_bytes(need)} to train (weights, gradients, optimizer state); this machine has {format_bytes(have)} available"
    return None


def _param_count(args: dict[str, Any]) -> int:
    return sum(p.numel() for p in _build(args).parameters())


def _named_argument(problem: str, args: dict[str, Any]) -> str | None:
    """The argument a constructor's message names as ``arg=`` or ``arg ``, if exactly one does."""
    named = [k for k in args if k != "name" and (f"{k}=" in problem or problem.startswith(f"{k} ") or f" {k} " in problem)]
    return named[0] if len(named) == 1 else None


def _culprit(args: dict[str, Any], memory: bool) -> str | None:
    """The first argument the user set whose constructor default cures the model of ``args``."""
    from segdil.models import MODELS  # torch: command modules import segdil.config at their top

    cls = MODELS.get(args.get("name"))
    if cls is None:
        return None
    defaults = {p.name: p.default for p in inspect.signature(cls).parameters.values() if p.default is not inspect.Parameter.empty}
    for key in [k for k in args if k in defaults and k != "num_classes"]:
        trial = {**args, key: defaults[key]}
        if defaults[key] is None:
            trial.pop(key)
        if _problem(trial, memory) is None:
            return key
    return None


def _default_hint(name: Any, culprit: str | None) -> str:
    from segdil.models import MODELS  # torch: command modules import segdil.config at their top

    cls = MODELS.get(name) if isinstance(name, str) else None
    if cls is None or culprit is None:
        return ""
    parameter = inspect.signature(cls).parameters.get(culprit)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return ""
    return f"; the default is {shown(parameter.default)}"

