"""YAML configuration: typed sections, one-to-one with constructor arguments.

A config file has four sections. ``model:`` is passed as ``create_model(**model)``; ``data:``,
``train:`` and ``eval:`` fill the dataclasses below. A file may name a ``base:`` file whose
values it overrides, and that file one more (at most ``MAX_BASE_LEVELS`` levels: an ablation is
``base:`` its flagship, which is ``base:`` the benchmark's settings). ``--set key.sub=value``
overrides any value; the value is parsed as a YAML scalar or list. Unknown keys and wrong types
are one-line errors (exit 2) that name the file which set the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from segdil.config.bounded_yaml import safe_load_bounded
from segdil.config.coerce import build_dataclass, plain
from segdil.config.model_check import check_model_args
from segdil.config.schema import Config, default_model_section
from segdil.config.validate import (
    check_moved_keys,
    check_ranges,
    upgrade_moved_keys,
    validate_model_section,
)
from segdil.device import check_precision
from segdil.errors import SegdilError, shown
from segdil.path_names import check_path_name

MAX_BASE_LEVELS = 2  # a file, its base, and that base's base
_KEY = re.compile(r"^([A-Za-z_][\w.]*)(?:\[\d+\])*(?:=[^:]*)?: ")  # the dotted key an error message starts with (``key: `` or ``key=value: ``)


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML file and its ``base:`` chain (or start from defaults when ``path`` is None) and
    apply ``--set`` overrides. An error about a key names the file that set it."""
    raw: dict[str, Any] = {"model": default_model_section()}
    sources: dict[str, str] = {}  # dotted key -> the file that set it
    name = "config"
    if path is not None:
        path = Path(path)
        raw = {}
        for layer_path, layer in reversed(_base_chain(path)):
            _record_sources(sources, raw, layer, str(layer_path))
            raw = _merge(raw, layer)
        name = path.stem
    raw.setdefault("name", name)
    for item in overrides:
        key, value = parse_override(item)
        _record_sources(sources, raw, _nested(key, value), None)
        _set_path(raw, key, value)
    try:
        check_moved_keys(raw)  # a user's config is told; a saved one is translated (config_from_dict)
        cfg = config_from_dict(raw)
        check_model_args(cfg.model)
    except SegdilError as exc:
        raise SegdilError(_named_source(exc.message, sources)) from None
    return cfg


def _base_chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """``path`` and the files its ``base:`` chain names, each with its values (``base:`` removed)."""
    chain = [(path, _read_yaml(path))]
    while "base" in chain[-1][1]:
        here, layer = chain[-1]
        base_value = layer.pop("base")
        if not isinstance(base_value, str):
            raise SegdilError(f"{here}: base: expected a file name, got {shown(base_value)}")
        base_path = (here.parent / base_value).resolve()
        if len(chain) > MAX_BASE_LEVELS:
            files = " -> ".join(str(p) for p, _ in chain) + f" -> {base_path}"
            raise SegdilError(f"{here}: base: at most {MAX_BASE_LEVELS} levels of base files, this chain has more: {files}")
        if not base_path.is_file():
            raise SegdilError(f"{here}: base: {shown(base_value)}: config file not found ({base_path})")
        chain.append((base_path, _read_yaml(base_path)))
    return chain


def _record_sources(sources: dict[str, str], merged: dict[str, Any], layer: dict[str, Any], where: str | None) -> None:
    """Note ``where`` (None: ``--set``) as the source of every key ``layer`` sets over ``merged``;
    another model name starts the model section afresh, and its keys' sources with it."""
    model = layer.get("model")
    if isinstance(model, dict) and isinstance(merged.get("model"), dict) and model.get("name", merged["model"].get("name")) != merged["model"].get("name"):
        for key in [k for k in sources if k.startswith("model.")]:
            del sources[key]
    for key in _flatten(layer):
        parts = key.split(".")
        for stale in [k for k in sources if k.startswith(key + ".")] + [".".join(parts[:i]) for i in range(1, len(parts))]:
            sources.pop(stale, None)
        if where is None:
            sources.pop(key, None)
        else:
            sources[key] = where


def _flatten(tree: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            keys += _flatten(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def _nested(key: str, value: Any) -> dict[str, Any]:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _named_source(message: str, sources: dict[str, str]) -> str:
    """``message`` led by the file that set the key it is about (none for ``--set`` and defaults)."""
    match = _KEY.match(message)
    if not match:
        return message
    key = match.group(1)
    files = list(dict.fromkeys(f for k, f in sources.items() if k == key or k.startswith(key + ".")))
    parent = key
    while not files and "." in parent:
        parent = parent.rsplit(".", 1)[0]
        files = [sources[parent]] if parent in sources else []
    return f"{', '.join(files)}: {message}" if files else message


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Validate a plain dict (e.g. the one saved in a checkpoint) into a Config."""
    if not isinstance(raw, dict):
        raise SegdilError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    cfg = build_dataclass(Config, upgrade_moved_keys(raw), "")
    cfg.model = validate_model_section(cfg.model)
    check_ranges(cfg)
    check_precision(cfg.train.precision, "train.precision")
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
    check_path_name(path, "config")
    if not path.is_file():
        raise SegdilError(f"{path}: config file not found")
    try:
        data = safe_load_bounded(path.read_text(), path)
    except PermissionError:
        raise SegdilError(f"{path}: this user may not read the config file (permission denied)") from None
    except UnicodeDecodeError:
        raise SegdilError(f"{path}: not a text file; a config is YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SegdilError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        raise SegdilError(f"{path} is empty (no settings, only comments or nothing); start from a shipped config such as configs/hdc_synth.yaml, or name one with base: hdc_synth.yaml")
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


