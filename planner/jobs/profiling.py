"""Profiling jobs: measure a model on real vLLM, import benchmark results, list what is
stored. The analytic `profile predict` needs no job: it is one stage call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from planner.catalog import Catalog, resolve_gpu, resolve_model
from planner.errors import InputError, ProfileError

if TYPE_CHECKING:
    import pandas as pd

    from planner.io.kernel_bench import KernelRun
    from planner.profiles.imported import ImportOverrides
    from planner.profiles.measured import SweepSpec, TokenShape

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ProfileRunRequest:
    """What `planner profile run` sweeps (see `SweepSpec` for each field's meaning)."""

    model: str
    tps: tuple[int, ...]
    gpu_fractions: tuple[float, ...]
    concurrencies: tuple[int, ...]
    request_rates: tuple[float, ...]
    prompts_per_client: int
    pipeline: Path | None = None  # APL JSON from `planner ingest --json`: token shapes
    input_tokens: int | None = None
    output_tokens: int | None = None
    model_path: str | None = None  # default: the model's HF id
    gpu_type: str | None = None  # default: detected, or `cpu`
    vllm_args: tuple[str, ...] = ()
    kv_cache_gib: float = 1.0
    max_model_len: int | None = None
    python: str = ""  # interpreter with vLLM installed (default: this one)
    start_timeout_s: float = 600.0
    results_dir: Path | None = None
    configs_dir: Path | None = None
    profiles_dir: Path | None = None


@dataclass(frozen=True)
class StoredPoints:
    points: pd.DataFrame
    written: tuple[Path, ...]


def profile_run_job(request: ProfileRunRequest, progress: Progress | None = None) -> StoredPoints:
    """Start real vLLM per configuration, drive the load ladder, store what it measured.

    Raises:
        InputError: no token shape, or a share above one GPU.
        ProfileError: unknown model or GPU type.
    """
    import sys
    import tempfile

    from planner.io import profiles as store
    from planner.io import vllm_engine
    from planner.io.configs import load_catalog
    from planner.profiles.points import SWEEP_COLUMNS

    catalog = load_catalog(request.configs_dir)
    spec = sweep_spec(request, catalog, vllm_engine.detect_gpu_type)
    with tempfile.TemporaryDirectory(prefix="planner-profile-") as tmp:
        swept = vllm_engine.run_sweep(
            spec,
            request.results_dir or Path(tmp),
            python=request.python or sys.executable,
            start_timeout_s=request.start_timeout_s,
            progress=progress,
        )
    target = request.profiles_dir or store.PROFILES_DIR
    written = store.write_points(swept.points, target, replace_on=SWEEP_COLUMNS)
    return StoredPoints(swept.points, tuple(written))


def sweep_spec(
    request: ProfileRunRequest, catalog: Catalog, detect_gpu: Callable[[], tuple[str, int]]
) -> SweepSpec:
    """The sweep a run request asks for, with names resolved through the catalog."""
    from planner.profiles.measured import SweepSpec

    model = resolve_model(catalog, request.model)
    shapes = _token_shapes(request, catalog, model.name)
    if any(f > 1 for f in request.gpu_fractions):
        raise InputError(f"--gpu-fraction: shares must be at most 1, got {request.gpu_fractions}")
    return SweepSpec(
        model=model.name,
        model_path=request.model_path or model.hf_id,
        gpu_type=gpu_for_run(catalog, request.gpu_type or detect_gpu()[0]),
        tps=request.tps,
        gpu_fractions=request.gpu_fractions,
        shapes=shapes,
        concurrencies=request.concurrencies,
        request_rates=request.request_rates,
        prompts_per_client=request.prompts_per_client,
        max_model_len=request.max_model_len,
        kv_cache_gib=request.kv_cache_gib,
        vllm_args=(
            *without_max_len(model.vllm_args, request.max_model_len),
            *request.vllm_args,
        ),
    )


def _token_shapes(
    request: ProfileRunRequest, catalog: Catalog, model: str
) -> tuple[TokenShape, ...]:
    from planner.profiles.measured import TokenShape, shapes_from_pipeline

    if request.pipeline is not None:
        return shapes_from_pipeline(
            _read_json(request.pipeline),
            model,
            lambda n: known_or_same(catalog, n),
            str(request.pipeline),
        )
    if request.input_tokens and request.output_tokens:
        return (TokenShape(request.input_tokens, request.output_tokens),)
    raise InputError("give --pipeline APL.json or both --input-tokens and --output-tokens")


@dataclass(frozen=True)
class ImportedPoints:
    """What `profile import` stored, and what the replay results among the files corrected.

    Attributes:
        corrections: one line per replayed point: the stored profiles' prediction there
            before the import (and its source) beside the measurement.
        notes: replayed models that were not filed, and why.
    """

    points: pd.DataFrame
    written: tuple[Path, ...]
    corrections: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def profile_import_job(
    files: Sequence[Path],
    overrides: ImportOverrides,
    configs_dir: Path | None = None,
    profiles_dir: Path | None = None,
) -> ImportedPoints:
    """Store `vllm bench serve --save-result` JSON files and `planner replay --json`
    results (filed under the compared plan's shapes) as profile points."""
    from dataclasses import replace

    import pandas as pd

    from planner.io import profiles as store
    from planner.io.configs import load_catalog
    from planner.profiles.replayed import correction_lines, corrections

    catalog = load_catalog(configs_dir)

    def gpu(name: str) -> str:
        return name if name == "cpu" else resolve_gpu(catalog, name).name

    if overrides.gpu_type:
        overrides = replace(overrides, gpu_type=gpu(overrides.gpu_type))
    target = profiles_dir or store.PROFILES_DIR
    results = store.read_results(
        files,
        overrides,
        resolve_model=lambda n: resolve_model(catalog, n).name,
        resolve_gpu=gpu,
    )
    replayed = results.replay_points
    fixed = corrections(replayed, store.load_profiles(target, catalog))
    frames = [p for p in (results.bench_points, replayed) if not p.empty]
    points = pd.concat(frames, ignore_index=True) if frames else results.bench_points
    written = store.write_points(points, target)
    return ImportedPoints(
        points, tuple(written), tuple(correction_lines(fixed)), tuple(results.notes)
    )


@dataclass(frozen=True)
class KernelsRequest:
    """What `planner profile kernels` measures (see `planner.io.kernel_bench`)."""

    device: str
    grid: str
    output: Path
    repeats: int = 5
    threads: int = 1
    devices: int | None = None


def profile_kernels_job(request: KernelsRequest, progress: Progress | None = None) -> KernelRun:
    """Measure kernel latencies on this machine and write the tables.

    Raises:
        InputError: an unknown device or grid; torch missing; no GPU for cuda.
    """
    from planner.io.kernel_bench import collect_kernels
    from planner.profiles.kernel_grid import GRIDS

    if request.device not in ("cpu", "cuda"):
        raise InputError(f"--device must be cpu or cuda, got {request.device!r}")
    if request.grid not in GRIDS:
        raise InputError(f"--grid must be one of {', '.join(GRIDS)}, got {request.grid!r}")
    return collect_kernels(
        "cuda" if request.device == "cuda" else "cpu",
        GRIDS[request.grid],
        request.output,
        repeats=request.repeats,
        threads=request.threads,
        devices=request.devices,
        progress=progress,
    )


def gpu_for_run(catalog: Catalog, name: str) -> str:
    """Catalog GPU type of a user's or nvidia-smi's name, or `cpu` (our CI's engine).

    nvidia-smi says "NVIDIA H100 80GB HBM3" where Kubernetes product labels (which the
    catalog lists) say "NVIDIA-H100-80GB-HBM3".
    """
    if name == "cpu":
        return name
    try:
        return resolve_gpu(catalog, name).name
    except ProfileError:
        if " " not in name:
            raise
        return resolve_gpu(catalog, name.replace(" ", "-")).name


def known_or_same(catalog: Catalog, name: str) -> str:
    """Catalog name of a trace's model, or the name itself for models outside the catalog."""
    try:
        return resolve_model(catalog, name).name
    except ProfileError:
        return name


def without_max_len(args: tuple[str, ...], override: int | None) -> tuple[str, ...]:
    """The catalog's vLLM args without its --max-model-len when the user gives one."""
    if override is None or "--max-model-len" not in args:
        return args
    i = args.index("--max-model-len")
    return (*args[:i], *args[i + 2 :])


def _read_json(path: Path) -> object:
    import json

    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
