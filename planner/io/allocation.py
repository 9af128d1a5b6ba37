"""A user's own allocation file, for `planner evaluate --allocation FILE`.

    schema_version: 1
    allocations:
      - {model: Qwen/Qwen3-32B, gpu_type: H100-SXM-80GB, tensor_parallel: 2, replicas: 3}
      - {model: Qwen/Qwen3-Reranker-0.6B, gpu_type: H100-SXM-80GB, gpu_fraction: 0.5,
         replicas: 2}

A plan.yaml written by `planner plan` is accepted too (its allocations are used).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from planner.config import parse_config
from planner.errors import ConfigError
from planner.types.plan import Allocation
from planner.types.shapes import share_eighths


@dataclass(frozen=True)
class AllocationEntry:
    model: str
    gpu_type: str
    replicas: int
    tensor_parallel: int = 1
    gpu_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.replicas < 0 or self.tensor_parallel < 1:
            raise ValueError("replicas must be >= 0 and tensor_parallel >= 1")
        share_eighths(self.gpu_fraction)  # raises unless k/8 of a GPU


@dataclass(frozen=True)
class AllocationFile:
    allocations: tuple[AllocationEntry, ...]


def load_allocation(path: Path) -> tuple[Allocation, ...]:
    """Read an allocation file (or a plan.yaml) into Allocations.

    Raises:
        ConfigError: missing file, bad YAML, unknown keys, bad values.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such allocation file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}); fix the syntax") from None
    if isinstance(data, dict) and data.get("kind") == "plan":
        from planner.io.plan_file import read_plan

        return read_plan(path).allocations
    parsed = parse_config(data, AllocationFile, str(path))
    if not parsed.allocations:
        raise ConfigError(f"{path}: key 'allocations' lists no allocation; add at least one")
    return tuple(
        sorted(
            Allocation(
                e.model,
                e.gpu_type,
                e.tensor_parallel,
                share_eighths(e.gpu_fraction),
                e.replicas,
            )
            for e in parsed.allocations
        )
    )
