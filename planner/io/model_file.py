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


def add_model_from_hf(
    config_path: Path,
    configs_dir: Path,
    *,
    hf_id: str | None = None,
    quant_config_path: Path | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> tuple[ModelSpec, Path]:
    """Read a Hugging Face `config.json`, build the catalog entry and write it.

    The HF id defaults from the `org--name_config.json` file name; a ModelOpt
    `hf_quant_config.json` beside the config (same prefix) is read when none is given.

    Raises:
        InputError: unreadable files, or no HF id given nor derivable from the file name.
        ConfigError: unsupported architecture or quantisation (one line naming what),
            or the entry exists and `overwrite` is false.
    """
    from planner.model_import import hf_id_from_file_name, model_spec_from_hf

    config_path = Path(config_path)
    config = read_json_file(config_path)
    hf_id = hf_id or hf_id_from_file_name(config_path.name)
    if not hf_id:
        raise InputError(
            f"{config_path}: cannot tell the Hugging Face id from the file name; "
            "pass --hf-id ORG/NAME"
        )
    if quant_config_path is None:
        beside = config_path.with_name(
            config_path.name.replace("_config.json", "_hf_quant_config.json")
        )
        if beside != config_path and beside.exists():
            quant_config_path = beside
    quant = read_json_file(quant_config_path) if quant_config_path is not None else None
    spec = model_spec_from_hf(
        config, hf_id, name=name, quant_config=quant, where=str(config_path.name)
    )
    return spec, write_model_file(spec, configs_dir, overwrite=overwrite)
