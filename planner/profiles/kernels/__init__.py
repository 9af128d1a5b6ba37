"""The `kernels` profile source: vLLM engine steps composed from measured kernel latencies.

For a GPU type whose catalog entry names shipped kernel tables (`kernel_tables:` in
configs/gpus/*.yaml), every prediction is composed per layer from GEMM, attention, MoE
and collective latencies measured with vLLM on that GPU (`step`), turned into a steady
state of chunked-prefill serving with the engine's fitted non-kernel time (`steady`).
Memory fit, open-loop rates, capacity and the request checks are the roofline model's
(`planner.profiles.analytic`), which also answers every GPU type without tables
(`source = "roofline"`).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import fields

from planner.catalog import Catalog
from planner.errors import ProfileError
from planner.defaults import GPU_MEMORY_UTILIZATION
from planner.profiles import PerfPoint, Source
from planner.profiles.analytic import AnalyticProfiles, max_concurrency
from planner.profiles.kernels.steady import EngineOverhead, kernel_steady_state
from planner.profiles.kernels.step import StepModel
from planner.profiles.kernels.tables import DATA_PACKAGE, kernel_tables, shipped_systems
from planner.types.shapes import ShapeKey

OVERHEAD_FILE = "engine_overhead.json"


@functools.cache
def shipped_overhead() -> EngineOverhead:
    """The engine overhead fitted by benchmarks/fit_kernel_overhead.py (shipped JSON)."""
    text = (
        importlib.resources.files(DATA_PACKAGE).joinpath("data", OVERHEAD_FILE).read_text("utf-8")
    )
    data = json.loads(text)
    names = {f.name for f in fields(EngineOverhead)}
    return EngineOverhead(**{k: v for k, v in data.items() if k in names})


class KernelProfiles(AnalyticProfiles):
    """ProfileTable answering from kernel-composed steps where a GPU has tables.

    Args:
        catalog: models and GPU types.
        gpu_memory_utilization: vLLM's `--gpu-memory-utilization` of a whole GPU.
        overhead: the engine's non-kernel time; default the shipped fit.
    """

    def __init__(
        self,
        catalog: Catalog,
        gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION,
        overhead: EngineOverhead | None = None,
    ) -> None:
        super().__init__(catalog, gpu_memory_utilization)
        self._overhead = overhead
        self._steps: dict[ShapeKey, StepModel] = {}

    @property
    def overhead(self) -> EngineOverhead:
        """The engine overhead in use (the shipped fit unless one was given)."""
        return self._overhead if self._overhead is not None else shipped_overhead()

    def source_of(self, key: ShapeKey) -> Source:
        """`kernels` for a GPU type with shipped tables, else `roofline`."""
        _, gpu = self._specs(key)
        return "kernels" if gpu.kernel_tables in shipped_systems() else "roofline"

    def step_model(self, key: ShapeKey) -> StepModel:
        """The kernel-composed step model of a shape (cached).

        Raises:
            ProfileError: the GPU type has no tables, or EP is asked of a dense model.
        """
        step = self._steps.get(key)
        if step is None:
            model, gpu = self._specs(key)
            if gpu.kernel_tables not in shipped_systems():
                raise ProfileError(f"{gpu.name} has no shipped kernel tables")
            if key.expert_parallel and not model.is_moe:
                raise ProfileError(
                    f"{model.name} is dense: expert parallelism applies to MoE models only"
                )
            step = StepModel(
                model,
                kernel_tables(gpu.kernel_tables),
                key.tp,
                expert_parallel=key.expert_parallel,
                fraction=key.gpu_fraction,
            )
            self._steps[key] = step
        return step

    def extrapolated(self, key: ShapeKey) -> tuple[str, ...]:
        """Kernels whose lookups for this shape left the measured grid (so far), sorted."""
        step = self._steps.get(key)
        return tuple(sorted(step.extrapolated)) if step is not None else ()

    def _point_uncached(
        self, key: ShapeKey, input_tokens: float, output_tokens: float, concurrency: float
    ) -> PerfPoint:
        if self.source_of(key) != "kernels":
            return super()._point_uncached(key, input_tokens, output_tokens, concurrency)
        _, gpu, fit = self._fitting(key)
        top = max_concurrency(
            fit.kv_cache_tokens, input_tokens, output_tokens, gpu.vllm_max_num_seqs
        )
        return kernel_steady_state(
            self.step_model(key),
            self.overhead,
            gpu.vllm_max_num_batched_tokens,
            input_tokens,
            output_tokens,
            concurrency,
            top,
            fit.kv_cache_tokens,
        )
