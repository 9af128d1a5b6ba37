"""The `kernels` profile source: vLLM engine steps composed from measured kernel latencies.

For a GPU type with kernel tables (collected on the user's hardware and found under the
profiles folder, `planner.io.kernel_tables`, else shipped and named by `kernel_tables:`
in configs/gpus/*.yaml), every prediction is composed per layer from GEMM, attention,
MoE and collective latencies measured on that GPU (`step`), turned into a steady
state of chunked-prefill serving with the engine's fitted non-kernel time (`steady`).
A model whose kernel families the tables lack (MoE or MLA layers on a collection that
measured none) is answered by the roofline, as is every GPU type without tables.
Memory fit, open-loop rates, capacity and the request checks are the roofline model's
(`planner.profiles.analytic`), which also answers every GPU type without tables
(`source = "roofline"`). A replica of pp pipeline stages across nodes is the TP-t step
composed from the tables plus the hops between stages over the GPU's inter-node link
(`steady`'s docstring). A replica with data-parallel attention (dp > 1, MoE with EP)
is answered by this source only: on a GPU type without tables its memory fit says no
(the roofline has no model of the ranks' lockstep and expert collectives).
"""

from __future__ import annotations

import bisect
import functools
import importlib.resources
import json
import math
from collections.abc import Mapping
from dataclasses import fields, replace

import numpy as np

from planner.catalog import Catalog
from planner.defaults import GPU_MEMORY_UTILIZATION, UNITS_PER_GPU
from planner.errors import ProfileError
from planner.profiles import PerfPoint, Source
from planner.profiles.analytic import (
    AnalyticProfiles,
    pipeline_hops_ms,
    replica_max_concurrency,
)
from planner.profiles.kernels.steady import EngineOverhead, kernel_steady_state
from planner.profiles.kernels.step import StepModel
from planner.profiles.kernels.tables import (
    DATA_PACKAGE,
    KernelTables,
    kernel_tables,
    shipped_systems,
)
from planner.types.names import GpuType
from planner.types.shapes import ShapeKey

OVERHEAD_FILE = "engine_overhead.json"
_RATE_TABLE_POINTS = 25


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
        tables: kernel tables per GPU type, in preference to the shipped ones (e.g.
            collected on the user's hardware: `planner.io.kernel_tables`).
    """

    def __init__(
        self,
        catalog: Catalog,
        gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION,
        overhead: EngineOverhead | None = None,
        tables: Mapping[GpuType, KernelTables] | None = None,
    ) -> None:
        super().__init__(catalog, gpu_memory_utilization)
        self._overhead = overhead
        self._given = dict(tables or {})
        self._steps: dict[ShapeKey, StepModel] = {}
        self._sources: dict[ShapeKey, Source] = {}
        self._tables: dict[
            tuple[ShapeKey, float, float, float], tuple[list[float], list[float]]
        ] = {}

    @property
    def overhead(self) -> EngineOverhead:
        """The engine overhead in use (the shipped fit unless one was given)."""
        return self._overhead if self._overhead is not None else shipped_overhead()

    def tables_of(self, gpu_type: GpuType) -> KernelTables | None:
        """The kernel tables of a GPU type: given (collected), else shipped, else None."""
        given = self._given.get(gpu_type)
        if given is not None:
            return given
        system = self.catalog.gpus[gpu_type].kernel_tables
        return kernel_tables(system) if system in shipped_systems() else None

    def source_of(self, key: ShapeKey) -> Source:
        """`kernels` for a GPU type with tables that hold every kernel family the model
        runs, else `roofline`. Pipeline stages (pp > 1) need the GPU's inter-node link
        too (`inter_node_gb_per_s`): the tables hold no inter-node transfers, so the hops
        come from the catalog entry."""
        source = self._sources.get(key)
        if source is None:
            model, gpu = self._specs(key)
            tables = self.tables_of(gpu.name)
            covered = tables is not None and not tables.missing_for(model, key.tp, key.dp)
            linked = key.pp == 1 or gpu.inter_node_gb_per_s > 0
            source = "kernels" if covered and linked else "roofline"
            self._sources[key] = source
        return source

    def step_model(self, key: ShapeKey) -> StepModel:
        """The kernel-composed step model of a shape (cached). A pipeline's (pp > 1) is
        its TP group's: the stages together run every layer once per step.

        Raises:
            ProfileError: the GPU type has no tables, or EP is asked of a dense model.
        """
        if key.pp > 1:
            return self.step_model(replace(key, pp=1))
        step = self._steps.get(key)
        if step is None:
            model, gpu = self._specs(key)
            tables = self.tables_of(gpu.name)
            if tables is None:
                raise ProfileError(f"{gpu.name} has no kernel tables")
            missing = tables.missing_for(model, key.tp, key.dp)
            if missing:
                raise ProfileError(
                    f"the kernel tables of {gpu.name} ({tables.system}) have no "
                    f"{', '.join(missing)} rows, which {model.name} needs"
                )
            if key.expert_parallel and not model.is_moe:
                raise ProfileError(
                    f"{model.name} is dense: expert parallelism applies to MoE models only"
                )
            if key.dp > 1 and not (model.is_moe and key.expert_parallel):
                raise ProfileError(
                    f"{model.name}: data-parallel attention (dp {key.dp}) is modelled for MoE "
                    "models with expert parallelism only"
                )
            step = StepModel(
                model,
                tables,
                key.tp,
                expert_parallel=key.expert_parallel,
                fraction=key.gpu_fraction,
                dp=key.dp,
            )
            self._steps[key] = step
        return step

    def extrapolated(self, key: ShapeKey) -> tuple[str, ...]:
        """Kernels whose lookups for this shape left the measured grid (so far), sorted."""
        noted: set[str] = set()
        for k in (key, replace(key, share_eighths=UNITS_PER_GPU, pp=1)):
            step = self._steps.get(k)
            if step is not None:
                noted |= step.noted()
        return tuple(sorted(noted))

    def _running_at_rate(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        rate_per_s: float,
        top: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        """The closed-loop point whose throughput equals `rate_per_s` (no slot queue).

        Throughput X(C) rises with concurrency: it is tabulated once per shape and token
        shape at 25 concurrencies (geometric, 1e-4 x top to top), inverted by log-log
        interpolation, and refined by two secant steps on exact steady states, within
        1e-6 of the rate in practice (the roofline's bracketing solve needs about 9 exact
        steady states per rate; this needs 2).
        """
        if self.source_of(key) != "kernels":
            return super()._running_at_rate(
                key, input_tokens, output_tokens, rate_per_s, top, cached_tokens
            )
        at_top = self._point(key, input_tokens, output_tokens, top, cached_tokens)
        if rate_per_s >= at_top.requests_per_s:
            return replace(at_top, saturated=True)
        log_c, log_x = self._throughput_table(key, input_tokens, output_tokens, top, cached_tokens)
        target = math.log(max(rate_per_s, 1e-300))
        i = min(max(bisect.bisect_left(log_x, target), 1), len(log_x) - 1)
        # Local slope d log C / d log X of the bracketing table segment (X ~ C at low load).
        # A flat segment (throughput no longer rising) has an unbounded slope: each step
        # stays inside [c / e^20, top], so the exponent cannot overflow.
        slope = (log_c[i] - log_c[i - 1]) / max(log_x[i] - log_x[i - 1], 1e-12)
        log_top = math.log(top)

        def toward(log_from: float, gap: float) -> float:
            return math.exp(min(max(log_from + slope * gap, log_from - 20.0), log_top))

        c = toward(log_c[i - 1], target - log_x[i - 1])
        point = self._point_uncached(key, input_tokens, output_tokens, c, cached_tokens)
        for _ in range(2):
            x = point.requests_per_s
            if x <= 0 or abs(x - rate_per_s) <= 1e-9 * rate_per_s:
                break
            c = toward(math.log(c), target - math.log(x))
            point = self._point_uncached(key, input_tokens, output_tokens, c, cached_tokens)
        return point

    def _throughput_table(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        top: float,
        cached_tokens: float = 0.0,
    ) -> tuple[list[float], list[float]]:
        cache_key = (key, input_tokens, output_tokens, cached_tokens)
        table = self._tables.get(cache_key)
        if table is None:
            c = top * np.geomspace(1e-4, 1.0, _RATE_TABLE_POINTS)
            x = np.array(
                [
                    self._point_uncached(
                        key, input_tokens, output_tokens, float(v), cached_tokens
                    ).requests_per_s
                    for v in c
                ]
            )
            x = np.maximum.accumulate(np.maximum(x, 1e-300))  # monotone for the inversion
            table = (np.log(c).tolist(), np.log(x).tolist())
            self._tables[cache_key] = table
        return table

    def _point_uncached(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        concurrency: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        if self.source_of(key) != "kernels":
            return super()._point_uncached(
                key, input_tokens, output_tokens, concurrency, cached_tokens
            )
        model, gpu, fit = self._fitting(key)
        top = replica_max_concurrency(
            key, fit.kv_cache_tokens, input_tokens, output_tokens, gpu.vllm_max_num_seqs
        )
        # Kernel time on a share f is the whole GPU's divided by f: every share of a
        # model reads the whole-GPU step model's curves.
        whole = replace(key, share_eighths=UNITS_PER_GPU)
        return kernel_steady_state(
            self.step_model(whole),
            self.overhead,
            gpu.vllm_max_num_batched_tokens,
            input_tokens,
            output_tokens,
            concurrency,
            top,
            fit.kv_cache_tokens,
            key.gpu_fraction,
            cached_tokens,
            functools.partial(pipeline_hops_ms, model, gpu, key.pp),
        )
