"""Write a catalog model entry (`configs/models/<name>.yaml`) and read HF config files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from planner.catalog import ModelSpec
from planner.errors import ConfigError, InputError
from planner.io.atomic import write_text_atomic

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ModelSpec)}


def read_json_file(path: Path) -> dict[str, Any]:
    """A JSON object from `path`.

    Raises:
        InputError: the file is missing, unreadable or not a JSON object.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def model_yaml(spec: ModelSpec) -> str:
    """The YAML text of a catalog entry: `schema_version`, then every field that differs
    from its default, in declaration order (deterministic)."""
    out: dict[str, Any] = {"schema_version": 1}
    for field in dataclasses.fields(ModelSpec):
        value = getattr(spec, field.name)
        required = field.default is dataclasses.MISSING
        if required or value != _DEFAULTS[field.name]:
            out[field.name] = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump(out, sort_keys=False, default_flow_style=None, width=100)


def write_model_file(spec: ModelSpec, configs_dir: Path, *, overwrite: bool = False) -> Path:
    """Write `configs_dir/models/<name>.yaml`.

    Raises:
        ConfigError: the file exists and `overwrite` is false.
    """
    path = Path(configs_dir) / "models" / f"{spec.name}.yaml"
    if path.exists() and not overwrite:
        raise ConfigError(f"{path}: already exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, model_yaml(spec))
    return path
