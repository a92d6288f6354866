"""What a loaded config must satisfy beyond its types: value ranges, model arguments, resume rules."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from segdil.config.coerce import coerce, plain
from segdil.config.schema import Config
from segdil.errors import SegdilError, shown

MAX_SYNTH_SAMPLES = 10_000_000  # synthetic samples are drawn on the fly: 10M is about a day per pass on a CPU
MAX_OBJECTS_PER_IMAGE = 10_000  # each object is drawn in turn: more would take minutes per image
MAX_WORKERS = 256  # data-loader worker processes; more is a process bomb, not a speed-up

# Every numeric setting with a valid range, checked in one place (config_from_dict): key -> (low,
# high, low_open). None: unbounded on that side. A list value has each item checked.
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "data.synth.n_train": (1, MAX_SYNTH_SAMPLES, False),
    "data.synth.n_val": (1, MAX_SYNTH_SAMPLES, False),
    "data.synth.size": (8, None, False),
    "data.synth.min_object": (0, None, True),
    "data.synth.max_object": (0, None, True),
    "data.synth.objects_per_image": (0, MAX_OBJECTS_PER_IMAGE, False),
    "data.crop_size": (8, None, False),
    "data.scale_range": (0, None, True),
    "data.color_jitter": (0, None, False),
    "data.noise": (0, 1, False),
    "data.val_pad_multiple": (1, None, False),
    "data.std": (0, None, True),
    "data.num_workers": (0, MAX_WORKERS, False),
    "train.max_steps": (1, None, False),
    "train.batch_size": (1, None, False),
    "train.lr": (0, None, True),
    "train.momentum": (0, 1, False),
    "train.weight_decay": (0, None, False),
    "train.warmup_steps": (0, None, False),
    "train.poly_power": (0, None, True),
    "train.grad_clip": (0, None, True),
    "train.loss.ce": (0, None, False),
    "train.loss.dice": (0, None, False),
    "train.loss.focal": (0, None, False),
    "train.loss.lovasz": (0, None, False),
    "train.loss.class_weights": (0, None, False),
    "train.seed": (0, 2**32 - 1, False),  # numpy's seeds are 32-bit
    "train.val_every": (1, None, False),
    "train.ckpt_every": (1, None, False),
    "train.log_every": (1, None, False),
    "train.budget_s": (0, None, True),
    "eval.size_bins": (0, None, True),
    "eval.small_threshold": (0, None, True),
    "eval.background_class": (0, 254, False),
}


def check_ranges(cfg: Config) -> None:
    """Every key of ``RANGES`` within its range; else a one-line error with the valid range."""
    plain = cfg.to_dict()
    for key, (low, high, low_open) in RANGES.items():
        value: Any = plain
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        for item in value if isinstance(value, list) else [value]:
            if item is None or isinstance(item, (bool, str)):  # words such as crop_size: auto are checked by their type
                continue
            too_low = low is not None and (item <= low if low_open else item < low)
            too_high = high is not None and item > high
            if too_low or too_high:
                lower = "" if low is None else f"{'>' if low_open else '>='} {_number(low)}"
                upper = "" if high is None else f"<= {_number(high)}"
                valid = " and ".join(x for x in (lower, upper) if x)
                raise SegdilError(f"{key}: {shown(value)} is out of range; valid: {valid}")
    check_shapes(cfg)


def _number(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


# list settings with a fixed number of values, or an order: key -> (count or None, order or None)
SHAPES: dict[str, tuple[int | None, str | None, str]] = {
    "data.mean": (3, None, "one per RGB channel"),
    "data.std": (3, None, "one per RGB channel"),
    "data.scale_range": (2, "<=", "[low, high]"),
    "data.synth.objects_per_image": (2, "<=", "[min, max]"),
    "eval.size_bins": (None, "<", "object sizes in pixels, increasing"),
}


def check_shapes(cfg: Config) -> None:
    """Every key of ``SHAPES`` with its count of values, in its order; else a one-line error."""
    tree = cfg.to_dict()
    for key, (count, order, meaning) in SHAPES.items():
        value: Any = tree
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, list):
            continue
        wrong_count = count is not None and len(value) != count
        pairs = list(zip(value, value[1:]))
        wrong_order = order == "<" and any(a >= b for a, b in pairs) or order == "<=" and any(a > b for a, b in pairs)
        if wrong_count or not value:
            need = f"{count} values" if count else "at least one value"
            raise SegdilError(f"{key}: {shown(value)} has {len(value)} value(s); valid: {need} ({meaning})")
        if wrong_order:
            how = "each larger than the one before" if order == "<" else "none smaller than the one before"
            raise SegdilError(f"{key}: {shown(value)} is out of order; valid: {how} ({meaning})")


# Keys that may differ between a run's saved config.yaml and the config given with --resume:
# how long and how often, where it runs; nothing that changes the model, the data or the optimisation.
RESUMABLE_KEYS: tuple[str, ...] = (
    "name", "train.max_steps", "train.val_every", "train.ckpt_every", "train.log_every",
    "train.device", "train.budget_s", "data.num_workers", "train.compile",
)


def resume_changes(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dicts, except ``RESUMABLE_KEYS``; the
    model sections are compared with the constructor's defaults filled in (``widths: [32]`` and
    no ``widths`` at all are the same model when 32 is the default)."""
    changed: list[str] = []
    saved, new = upgrade_moved_keys(saved), upgrade_moved_keys(new)

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict) and key != "model":
            for sub in sorted(set(a) | set(b), key=str):
                walk(a.get(sub), b.get(sub), f"{key}.{sub}" if key else str(sub))
        elif key == "model" and isinstance(a, dict) and isinstance(b, dict):
            if a.get("name") == b.get("name"):
                a, b = with_defaults(a), with_defaults(b)
            changed.extend(f"model.{sub}" for sub in sorted(set(a) | set(b), key=str) if plain(a.get(sub)) != plain(b.get(sub)))
        elif key not in RESUMABLE_KEYS and plain(a) != plain(b):
            changed.append(key)

    walk(saved, new, "")
    return changed


def with_defaults(model: dict[str, Any]) -> dict[str, Any]:
    """A model section with every constructor argument it leaves out at its default (an unknown
    name: the section as it is)."""
    from segdil.models import MODELS  # torch: command modules import segdil.config at their top

    name = model.get("name")
    cls = MODELS.get(name) if isinstance(name, str) else None
    if cls is None:
        return dict(model)
    parameters = inspect.signature(cls).parameters.values()
    return {**{p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}, **model}


# keys that moved or were renamed: a config that still sets one is told where, in one line. A key
# with a value mapping is also translated in saved configs (checkpoints, --resume), which stay readable.
MOVED_KEYS: dict[str, tuple[str, str, dict[Any, Any] | None]] = {
    # old dotted key: (new dotted key, why or how, old value -> new value)
    "model.init_from": ("train.init_from", "a warm start is a training setting, for every model", None),
    "train.amp": ("train.precision", "auto, bf16 or fp32: amp auto -> precision auto, bf16 -> bf16, off -> fp32", {"auto": "auto", "bf16": "bf16", "off": "fp32"}),
}


def check_moved_keys(raw: dict[str, Any]) -> None:
    """A one-line error for the first key of ``MOVED_KEYS`` (outside ``model:``) that ``raw`` still sets."""
    for old, (new, how, _) in MOVED_KEYS.items():
        section, key = old.split(".", 1)
        if section != "model" and isinstance(raw.get(section), dict) and key in raw[section]:
            raise SegdilError(f"{old}: renamed to {new}; use {new} ({how})")


def upgrade_moved_keys(raw: dict[str, Any]) -> dict[str, Any]:
    """A saved config (a checkpoint's, a run's) with the keys of ``MOVED_KEYS`` that have a value
    mapping moved to their new names (an unknown old value is kept, and refused by its new key)."""
    out = dict(raw)
    for old, (new, _, values) in MOVED_KEYS.items():
        section, key = old.split(".", 1)
        if values is None or not isinstance(out.get(section), dict) or key not in out[section]:
            continue
        new_section, new_key = new.split(".", 1)
        part = dict(out[section])
        value = part.pop(key)
        out[section] = part
        target = out[new_section] = dict(out.get(new_section) or {})
        target.setdefault(new_key, values.get(value, value) if isinstance(value, str) else value)
    return out


def validate_model_section(model: Any) -> dict[str, Any]:
    """Check ``model:`` against the constructor of the named model: keys and types."""
    from segdil.models import MODELS  # torch: command modules import segdil.config at their top

    if not isinstance(model, dict):
        raise SegdilError(f"model: expected a mapping with at least 'name', got {shown(model)}")
    name = model.get("name")
    if name is None:
        raise SegdilError(f"model.name: missing; valid names: {', '.join(sorted(MODELS))}")
    if name not in MODELS:
        raise SegdilError(f"model.name: unknown model {shown(name)}; valid names: {', '.join(sorted(MODELS))}")
    signature = inspect.signature(MODELS[name])
    hints = typing.get_type_hints(MODELS[name].__init__) if inspect.isclass(MODELS[name]) else typing.get_type_hints(MODELS[name])
    valid = [p for p in signature.parameters if p not in ("self", "kwargs")]
    out = {"name": name}
    for key, value in model.items():
        if key == "name":
            continue
        if key not in valid and f"model.{key}" in MOVED_KEYS:
            new, why, _ = MOVED_KEYS[f"model.{key}"]
            raise SegdilError(f"model.{key}: no longer a model setting; use {new} ({why})")
        if key not in valid:
            raise SegdilError(f"model.{key}: unknown key for model {shown(name)}; valid keys: {', '.join(valid)}")
        hint = hints.get(key, Any)
        out[key] = coerce(value, hint, f"model.{key}")
    return out
