"""Read the model and GPU catalogs from `configs/models/*.yaml` and `configs/gpus/*.yaml`.

The shipped catalog is the repository's `configs/` folder beside the `planner` package
(a checkout or editable install), or its copy inside an installed wheel
(`planner.io.shipped`). `PLANNER_CONFIGS` or an explicit directory overrides it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any

import yaml

from planner.catalog import Calibration, Catalog, GpuSpec, ModelSpec, gpu_names, model_names
from planner.config import parse_config
from planner.errors import ConfigError
from planner.io.atomic import write_text_atomic
from planner.io.shipped import shipped_dir

CONFIGS_ENV = "PLANNER_CONFIGS"


def default_configs_dir() -> Path:
    """The catalog folder: $PLANNER_CONFIGS, else the shipped one, else ./configs.

    Raises:
        ConfigError: none of these holds `models/` and `gpus/`.
    """
    candidates = []
    if os.environ.get(CONFIGS_ENV):
        candidates.append(Path(os.environ[CONFIGS_ENV]))
    shipped = shipped_dir("configs")  # the repository's, else the installed package's
    if shipped is not None:
        candidates.append(shipped)
    candidates.append(Path.cwd() / "configs")
    for path in candidates:
        if (path / "models").is_dir() and (path / "gpus").is_dir():
            return path
    tried = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"no catalog found (looked in {tried}); pass --configs DIR or set {CONFIGS_ENV} to "
        "a folder holding models/*.yaml and gpus/*.yaml"
    )


# libyaml's C loader parses the catalog several times faster than the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML ({exc}); fix the syntax") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def _check_unique(kind: str, owners: dict[str, str], names: tuple[str, ...], path: Path) -> None:
    for name in names:
        key = name.lower()
        if key in owners and owners[key] != str(path):
            raise ConfigError(
                f"{path}: {kind} name '{name}' is also used by {owners[key]}; "
                "names and aliases must be unique (case-insensitive)"
            )
        owners[key] = str(path)


def load_catalog(configs_dir: Path | None = None) -> Catalog:
    """Parse every `models/*.yaml` and `gpus/*.yaml` under `configs_dir` into a Catalog.

    Args:
        configs_dir: folder with `models/` and `gpus/`; default the shipped `configs/`.

    Raises:
        ConfigError: a file is not valid YAML, has an unknown/missing key (named, with a
            did-you-mean), or reuses another entry's name or alias.
    """
    root = Path(configs_dir) if configs_dir is not None else default_configs_dir()
    for sub in ("models", "gpus"):
        if not (root / sub).is_dir():
            raise ConfigError(f"{root}: missing folder '{sub}/' (expected {sub}/*.yaml)")
    # Parsed once per process: the cache key is every file's name, size and mtime, so an
    # edited catalog is read again.
    files = sorted([*(root / "models").glob("*.yaml"), *(root / "gpus").glob("*.yaml")])
    signature = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _parse_catalog(root.resolve(), signature)


@functools.lru_cache(maxsize=8)
def _parse_catalog(root: Path, signature: tuple[tuple[str, int, int], ...]) -> Catalog:
    models: dict[str, ModelSpec] = {}
    owners: dict[str, str] = {}
    for path in sorted((root / "models").glob("*.yaml")):
        model = parse_config(_read_yaml(path), ModelSpec, str(path))
        _validate_model(model, path)
        _check_unique("model", owners, model_names(model), path)
        models[model.name] = model
    gpus: dict[str, GpuSpec] = {}
    owners = {}
    for path in sorted((root / "gpus").glob("*.yaml")):
        gpu = parse_config(_read_yaml(path), GpuSpec, str(path))
        _validate_gpu(gpu, path)
        _check_unique("GPU", owners, gpu_names(gpu), path)
        gpus[gpu.name] = gpu
    if not models or not gpus:
        raise ConfigError(f"{root}: no model or GPU files found (need models/*.yaml, gpus/*.yaml)")
    return Catalog(models=models, gpus=gpus)


def _positive(path: Path, values: dict[str, float | int | None]) -> None:
    for key, value in values.items():
        if value is not None and value <= 0:
            raise ConfigError(f"{path}: key '{key}' must be positive, got {value}")


def _validate_model(model: ModelSpec, path: Path) -> None:
    _positive(
        path,
        {
            "params_b": model.params_b,
            "layers": model.layers,
            "hidden": model.hidden,
            "heads": model.heads,
            "kv_heads": model.kv_heads,
            "head_dim": model.head_dim,
            "intermediate": model.intermediate,
            "vocab": model.vocab,
            "max_model_len": model.max_model_len,
            "active_params_b": model.active_params_b,
        },
    )
    if model.heads % model.kv_heads:
        raise ConfigError(
            f"{path}: key 'kv_heads' ({model.kv_heads}) must divide 'heads' ({model.heads})"
        )


def _validate_gpu(gpu: GpuSpec, path: Path) -> None:
    cal = gpu.calibration
    _positive(
        path,
        {
            "memory_gib": gpu.memory_gib,
            "hbm_tb_per_s": gpu.hbm_tb_per_s,
            "bf16_tflops": gpu.bf16_tflops,
            "fp8_tflops": gpu.fp8_tflops,
            "fp4_tflops": gpu.fp4_tflops,
            "link_gb_per_s": gpu.link_gb_per_s,
            "nvlink_domain_size": gpu.nvlink_domain_size,
            "calibration.memory_efficiency": cal.memory_efficiency,
            "calibration.compute_efficiency": cal.compute_efficiency,
        },
    )
    if cal.compute_efficiency > 1:
        raise ConfigError(
            f"{path}: key 'calibration.compute_efficiency' is a fraction of peak (<= 1), "
            f"got {cal.compute_efficiency}"
        )


def calibration_block(cal: Calibration, comments: tuple[str, ...] = ()) -> str:
    """The `calibration:` YAML block for a GPU file (4 significant digits, fixed order)."""
    lines = ["calibration:"]
    lines += [f"  # {c}" for c in comments]
    for f in dataclasses.fields(Calibration):
        value = getattr(cal, f.name)
        if f.name == "source":
            continue
        lines.append(f"  {f.name}: {float(f'{value:.4g}')!r}")
    lines.append(f"  source: {json.dumps(cal.source)}")
    return "\n".join(lines) + "\n"


def write_calibration(path: Path, cal: Calibration, comments: tuple[str, ...] = ()) -> None:
    """Replace the trailing `calibration:` block of a GPU file, keeping everything above it.

    Raises:
        ConfigError: the file has no top-level `calibration:` line.
    """
    text = path.read_text(encoding="utf-8")
    marker = "\ncalibration:"
    at = text.find(marker)
    if at < 0:
        raise ConfigError(f"{path}: no top-level 'calibration:' block to replace")
    write_text_atomic(path, text[: at + 1] + calibration_block(cal, comments))
