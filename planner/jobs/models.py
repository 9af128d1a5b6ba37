"""The model-add job: a Hugging Face config -> a catalog entry written under configs/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.catalog import ModelSpec
from planner.errors import InputError


@dataclass(frozen=True)
class AddedModel:
    spec: ModelSpec
    path: Path  # the catalog file written


def add_model_job(
    config_path: Path,
    configs_dir: Path | None = None,
    *,
    hf_id: str | None = None,
    quant_config_path: Path | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> AddedModel:
    """Read a Hugging Face `config.json`, build the catalog entry and write it to
    `configs_dir/models/<name>.yaml` (default: the shipped catalog).

    The HF id defaults from the `org--name_config.json` file names of the shared
    configs; a ModelOpt `hf_quant_config.json` beside the config (same prefix) is read
    when none is given.

    Raises:
        InputError: unreadable files, or no HF id given nor derivable from the file name.
        ConfigError: unsupported architecture or quantisation (one line naming what),
            or the entry exists and `overwrite` is false.
    """
    from planner.io.configs import default_configs_dir
    from planner.io.model_file import read_json_file, write_model_file
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
    root = configs_dir if configs_dir is not None else default_configs_dir()
    return AddedModel(spec, write_model_file(spec, root, overwrite=overwrite))
