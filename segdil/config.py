"""YAML configuration: typed sections, one-to-one with constructor arguments.

A config file has four sections. ``model:`` is passed as ``create_model(**model)``; ``data:``,
``train:`` and ``eval:`` fill the dataclasses below. A file may name one ``base:`` file whose
values it overrides (one level only). ``--set key.sub=value`` overrides any value; the value is
parsed as a YAML scalar or list. Unknown keys and wrong types are one-line errors (exit 2).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from segdil.errors import SegdilError, shown


@dataclass
class SynthConfig:
    """The built-in synthetic benchmark (see ``segdil.data.synth``)."""

    n_train: int = 256
    n_val: int = 64
    size: int = 96
    min_object: float = 2.0
    max_object: float = 48.0
    objects_per_image: list[int] = field(default_factory=lambda: [6, 16])
    thin_lines: bool = True
    seed: int = 0
    scene: Literal["standard", "hard"] = "standard"  # hard: fields, look-alike decoys, camouflage


@dataclass
class DataConfig:
    """Where images come from and how they are augmented.

    ``root: null`` uses the built-in synthetic benchmark, generated in memory on first use.
    ``format``: the layout of ``root``, read in place (docs/data.md): folder, voc, cityscapes, ade20k.
    """

    root: Optional[str] = None
    format: Literal["folder", "voc", "cityscapes", "ade20k"] = "folder"
    train_split: str = "train"
    val_split: str = "val"
    synth: SynthConfig = field(default_factory=SynthConfig)
    crop_size: int | Literal["auto"] = 96  # auto: see segdil.data.transforms.resolve_crop_size
    scale_range: list[float] = field(default_factory=lambda: [0.75, 1.25])
    hflip: bool = True
    vflip: bool = False
    color_jitter: float = 0.2
    noise: float = 0.0
    val_pad_multiple: int = 1
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    num_workers: int = 2


@dataclass
class LossConfig:
    """Cross-entropy (ignore 255) plus optional smp terms, each with its weight."""

    ce: float = 1.0
    dice: float = 0.0
    focal: float = 0.0
    lovasz: float = 0.0
    class_weights: Optional[list[float]] = None


@dataclass
class TrainConfig:
    max_steps: int = 1500
    batch_size: int = 8
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 0.003
    momentum: float = 0.9
    weight_decay: float = 0.0001
    schedule: Literal["poly", "cosine", "constant"] = "poly"
    warmup_steps: int = 50
    poly_power: float = 0.9
    grad_clip: Optional[float] = 5.0
    loss: LossConfig = field(default_factory=LossConfig)
    seed: int = 0
    val_every: int = 500
    ckpt_every: int = 500
    log_every: int = 10
    best_metric: str = "small_object_iou"
    device: str = "auto"
    amp: Literal["auto", "bf16", "off"] = "auto"
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False
    sync_bn: bool = False
    budget_s: Optional[float] = None


@dataclass
class EvalConfig:
    """Object-metric settings (see docs/metrics.md)."""

    size_bins: list[float] = field(default_factory=lambda: [8.0, 16.0, 32.0, 64.0])
    small_threshold: float = 16.0
    background_class: Optional[int] = 0


def default_model_section() -> dict[str, Any]:
    from segdil.models import DEFAULT_MODEL

    return {"name": DEFAULT_MODEL}


@dataclass
class Config:
    model: dict[str, Any] = field(default_factory=default_model_section)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = "config"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML file (or start from defaults when ``path`` is None) and apply ``--set`` overrides."""
    raw: dict[str, Any] = {"model": default_model_section()}
    name = "config"
    if path is not None:
        path = Path(path)
        raw = _read_yaml(path)
        name = path.stem
        if "base" in raw:
            base_value = raw.pop("base")
            if not isinstance(base_value, str):
                raise SegdilError(f"{path}: base: expected a file name, got {shown(base_value)}")
            base_path = (path.parent / base_value).resolve()
            base = _read_yaml(base_path)
            if "base" in base:
                raise SegdilError(f"{base_path}: a base config cannot name another base (one level of inheritance only)")
            raw = _merge(base, raw)
    raw.setdefault("name", name)
    for item in overrides:
        key, value = parse_override(item)
        _set_path(raw, key, value)
    cfg = config_from_dict(raw)
    check_model_args(cfg.model)
    return cfg


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Validate a plain dict (e.g. the one saved in a checkpoint) into a Config."""
    if not isinstance(raw, dict):
        raise SegdilError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    cfg = _build_dataclass(Config, raw, "")
    cfg.model = validate_model_section(cfg.model)
    check_ranges(cfg)
    return cfg


# Every numeric setting with a valid range, checked in one place (config_from_dict): key -> (low,
# high, low_open). None: unbounded on that side. A list value has each item checked.
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "data.synth.n_train": (1, None, False),
    "data.synth.n_val": (1, None, False),
    "data.synth.size": (8, None, False),
    "data.synth.min_object": (0, None, True),
    "data.synth.max_object": (0, None, True),
    "data.synth.objects_per_image": (0, None, False),
    "data.crop_size": (0, None, False),
    "data.scale_range": (0, None, True),
    "data.color_jitter": (0, None, False),
    "data.noise": (0, 1, False),
    "data.val_pad_multiple": (1, None, False),
    "data.std": (0, None, True),
    "data.num_workers": (0, None, False),
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
    "train.seed": (0, None, False),
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
                lower = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
                upper = "" if high is None else f"<= {high:g}"
                valid = " and ".join(x for x in (lower, upper) if x)
                raise SegdilError(f"{key}: {shown(value)} is out of range; valid: {valid}")


def check_model_args(model_args: dict[str, Any], where: str = "model") -> None:
    """Build the model on the meta device (no memory, no weights) so that arguments its
    constructor refuses (e.g. a dilation rate of 0) are a one-line error before anything runs.
    Weight files and downloads are not touched."""
    import warnings

    import torch

    from segdil.models import create_model

    args = {k: v for k, v in model_args.items() if k not in ("init_from", "encoder_weights")}
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            create_model(**args)
    except (ValueError, TypeError, AssertionError, RuntimeError, KeyError, IndexError, ZeroDivisionError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SegdilError(f"{where}: model {shown(model_args.get('name'))} refuses its arguments ({shown(reason, 200)[1:-1]})") from None


# Keys that may differ between a run's saved config.yaml and the config given with --resume:
# how long and how often, where it runs; nothing that changes the model, the data or the optimisation.
RESUMABLE_KEYS: tuple[str, ...] = (
    "name", "train.max_steps", "train.val_every", "train.ckpt_every", "train.log_every",
    "train.device", "train.budget_s", "data.num_workers", "train.compile",
)


def resume_changes(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dicts, except ``RESUMABLE_KEYS``."""
    changed: list[str] = []

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict) and key != "model":
            for sub in sorted(set(a) | set(b), key=str):
                walk(a.get(sub), b.get(sub), f"{key}.{sub}" if key else str(sub))
        elif key == "model" and isinstance(a, dict) and isinstance(b, dict):
            changed.extend(f"model.{sub}" for sub in sorted(set(a) | set(b), key=str) if _plain(a.get(sub)) != _plain(b.get(sub)))
        elif key not in RESUMABLE_KEYS and _plain(a) != _plain(b):
            changed.append(key)

    walk(saved, new, "")
    return changed


def parse_override(item: str) -> tuple[str, Any]:
    """``"train.max_steps=10"`` -> ``("train.max_steps", 10)``; the value is parsed as YAML."""
    if "=" not in item:
        raise SegdilError(f"--set {shown(item)}: expected key.sub=value, e.g. --set train.max_steps=100")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key:
        raise SegdilError(f"--set {shown(item)}: the key before '=' is empty")
    try:
        value = safe_load_bounded(text, f"--set {key}") if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key, value


def validate_model_section(model: Any) -> dict[str, Any]:
    """Check ``model:`` against the constructor of the named model: keys and types."""
    from segdil.models import MODELS

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
        if key not in valid:
            raise SegdilError(f"model.{key}: unknown key for model {shown(name)}; valid keys: {', '.join(valid)}")
        hint = hints.get(key, Any)
        out[key] = _coerce(value, hint, f"model.{key}")
    return out


# --------------------------------------------------------------------------- helpers


MAX_YAML_NODES = 100_000  # scalars, lists and mappings after alias expansion; real configs hold < 2,000


def safe_load_bounded(text: str, where: str | Path) -> Any:
    """``yaml.safe_load`` that first counts the document's nodes with every alias expanded and
    refuses more than ``MAX_YAML_NODES`` ("billion laughs": a few lines that expand to billions)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        count = _expanded_nodes(node, {})
        if count > MAX_YAML_NODES:
            raise SegdilError(f"{where}: YAML expands to more than {MAX_YAML_NODES:,} values through aliases (an alias bomb?); remove the nested '*' aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_nodes(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once aliases are copied out (memoised: O(distinct nodes))."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_YAML_NODES + 1  # a node that contains itself (recursive alias) is refused
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_nodes(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[key] = min(total, 10 * MAX_YAML_NODES)
    return memo[key]


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SegdilError(f"{path}: config file not found")
    try:
        data = safe_load_bounded(path.read_text(), path)
    except UnicodeDecodeError:
        raise SegdilError(f"{path}: not a text file; a config is YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SegdilError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SegdilError(f"{path}: a config must be a mapping of sections (model, data, train, eval)")
    return data


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "model":
            out[key] = _merge(out[key], value)
        elif key == "model" and isinstance(value, dict) and isinstance(out.get(key), dict):
            # a different model name starts the model section afresh
            out[key] = dict(value) if value.get("name", out[key].get("name")) != out[key].get("name") else {**out[key], **value}
        else:
            out[key] = value
    return out


def _set_path(raw: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SegdilError(f"--set {key}: {part!r} is a value, not a section")
        node = child
    if parts[0] == "model" and parts[-1] == "name" and len(parts) == 2 and node.get("name") != value:
        node.clear()  # another model: its own defaults, not the old model's arguments
    node[parts[-1]] = value


def _build_dataclass(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SegdilError(f"{where}: expected a mapping, got {shown(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            raise SegdilError(f"{prefix}{key}: unknown key; valid keys{' in ' + where if prefix else ''}: {', '.join(fields)}")
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    return cls(**kwargs)


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted for floats. Raises SegdilError."""
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return _build_dataclass(hint, value, key + ".")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except SegdilError:
                pass
        raise SegdilError(f"{key}: expected {_type_name(hint)}, got {shown(value)}")
    if origin is dict:
        if isinstance(value, dict):
            return dict(value)
        raise SegdilError(f"{key}: expected a mapping, got {shown(value)}")
    if origin is Literal:
        if value in args:
            return value
        raise SegdilError(f"{key}: expected {_type_name(hint)}, got {shown(value)}")
    if origin in (list, tuple, typing.Sequence, typing.get_origin(typing.Sequence[int])) or hint in (list, tuple):
        item = [a for a in args if a is not Ellipsis]
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and item:
            value = [value] if not isinstance(value, str) else value
        if not isinstance(value, (list, tuple)):
            raise SegdilError(f"{key}: expected {_type_name(hint)}, got {shown(value)}")
        if origin is tuple and len(item) > 1 and len(item) != len(value):
            raise SegdilError(f"{key}: expected {len(item)} values, got {shown(value)}")
        if not item:
            return list(value)
        if origin is tuple and len(item) > 1:
            return tuple(_coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, item)))
        return [_coerce(v, item[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    raise SegdilError(f"{key}: expected {_type_name(hint)}, got {shown(value)}")


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML, as printed at start and saved beside every output."""
    return yaml.safe_dump(_plain(cfg.to_dict()), sort_keys=False)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
