"""YAML configuration: typed sections, one-to-one with constructor arguments.

A config file has four sections. ``model:`` is passed as ``create_model(**model)``; ``data:``,
``train:`` and ``eval:`` fill the dataclasses below. A file may name one ``base:`` file whose
values it overrides (one level only). ``--set key.sub=value`` overrides any value; the value is
parsed as a YAML scalar or list. Unknown keys and wrong types are one-line errors (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from segdil.config.bounded_yaml import safe_load_bounded
from segdil.config.rules import check_model_args, check_ranges, validate_model_section
from segdil.config.schema import Config, default_model_section
from segdil.config.values import build_dataclass, plain
from segdil.errors import SegdilError, shown


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
    cfg = build_dataclass(Config, raw, "")
    cfg.model = validate_model_section(cfg.model)
    check_ranges(cfg)
    return cfg


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


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML, as printed at start and saved beside every output."""
    return yaml.safe_dump(plain(cfg.to_dict()), sort_keys=False)


