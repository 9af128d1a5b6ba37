"""Parse flat YAML configuration mappings into frozen dataclasses.

Every config file carries `schema_version: 1`. Keys are checked against the target
dataclass's fields: an unknown key is an error with a "did you mean" suggestion, a missing
required key names the key, and a wrong type names the expected one. Parsing is pure; the
caller (`planner.io`) reads the file and passes its path only for messages.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

from planner.errors import ConfigError, did_you_mean

SCHEMA_VERSION = 1

T = TypeVar("T")


def parse_config(data: object, cls: type[T], where: str, *, versioned: bool = True) -> T:
    """Build `cls` (a dataclass) from a parsed YAML mapping.

    Args:
        data: the parsed YAML document.
        cls: the target dataclass; nested dataclasses, tuples, lists, dicts and optionals
            are converted recursively.
        where: the file (and optionally the key path) used in error messages.
        versioned: require `schema_version: 1` at the top level.

    Raises:
        ConfigError: unknown or missing keys, wrong types, wrong schema version.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {_kind(data)}")
    if versioned:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"{where}: schema_version must be {SCHEMA_VERSION}, got {version!r}; "
                f"add 'schema_version: {SCHEMA_VERSION}' at the top of the file"
            )
        data = {k: v for k, v in data.items() if k != "schema_version"}
    return _build(data, cls, where)


def _build(data: Mapping[str, Any], cls: type[T], where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown key '{key}'{did_you_mean(str(key), fields)}; "
                f"allowed keys: {', '.join(sorted(fields))}"
            )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}: key '{name}'")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key '{name}'")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        raise ConfigError(f"{where}: {exc}") from None


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {_kind(value)}")
        return _build(value, hint, where)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {_kind(value)}")
        item = args[0] if args else Any
        items = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {_kind(value)}")
        kt, vt = args if args else (Any, Any)
        return {_convert(k, kt, where): _convert(v, vt, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {_kind(value)}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {_kind(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {_kind(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {_kind(value)}")
        return value
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where} must be one of {choices}, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r}")  # a bug in a dataclass, not input


def _kind(value: object) -> str:
    return (
        f"{type(value).__name__} {value!r}"
        if not isinstance(value, Mapping | list)
        else (type(value).__name__)
    )
