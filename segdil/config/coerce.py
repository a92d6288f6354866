"""Config values against their type hints: coercion with one-line errors, and back to plain data."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from segdil.errors import SegdilError, shown


def type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(hint))
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {type_name(args[0])}" if args else "a list"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted for floats. Raises SegdilError."""
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, key + ".")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except SegdilError:
                pass
        raise SegdilError(f"{key}: expected {type_name(hint)}, got {shown(value)}")
    if origin is dict:
        if isinstance(value, dict):
            return dict(value)
        raise SegdilError(f"{key}: expected a mapping, got {shown(value)}")
    if origin is Literal:
        if value in args:
            return value
        raise SegdilError(f"{key}: expected {type_name(hint)}, got {shown(value)}")
    if origin in (list, tuple, typing.Sequence, typing.get_origin(typing.Sequence[int])) or hint in (list, tuple):
        item = [a for a in args if a is not Ellipsis]
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and item:
            value = [value] if not isinstance(value, str) else value
        if not isinstance(value, (list, tuple)):
            raise SegdilError(f"{key}: expected {type_name(hint)}, got {shown(value)}")
        if origin is tuple and len(item) > 1 and len(item) != len(value):
            raise SegdilError(f"{key}: expected {len(item)} values, got {shown(value)}")
        if not item:
            return list(value)
        if origin is tuple and len(item) > 1:
            return tuple(coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, item)))
        return [coerce(v, item[0], f"{key}[{i}]") for i, v in enumerate(value)]
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
    raise SegdilError(f"{key}: expected {type_name(hint)}, got {shown(value)}")


def plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def build_dataclass(cls: type, raw: Any, prefix: str) -> Any:
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
        kwargs[key] = coerce(value, hints[key], f"{prefix}{key}")
    return cls(**kwargs)
