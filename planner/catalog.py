"""Model and GPU catalogs: the facts about hardware and architectures the planner uses.

Loaded from `configs/models/*.yaml` and `configs/gpus/*.yaml` (flat YAML with
`schema_version: 1`) by `planner.io`; parsed here by `planner.config.parse_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ModelName = str
GpuType = str

Dtype = Literal["bf16", "fp16", "fp8", "int8", "int4"]

BYTES_PER_DTYPE: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}


@dataclass(frozen=True)
class ModelSpec:
    """A served model: architecture numbers and how vLLM serves it.

    `name` is the catalog key used in plans and manifests; `aliases` (HF ids, served
    names, short names) are what traces may call it.
    """

    name: ModelName
    hf_id: str
    served_name: str
    params_b: float  # total parameters, billions
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    weight_dtype: Dtype = "bf16"
    kv_dtype: Dtype = "bf16"
    max_model_len: int = 32768
    task: Literal["generate", "score"] = "generate"
    aliases: tuple[str, ...] = ()
    vllm_args: tuple[str, ...] = ()
    source: str = ""  # where the architecture numbers come from

    @property
    def weight_bytes(self) -> float:
        return self.params_b * 1e9 * BYTES_PER_DTYPE[self.weight_dtype]


@dataclass(frozen=True)
class Calibration:
    """Fitted constants of the analytic model for one GPU type (see profiles.analytic)."""

    per_layer_overhead_us: float
    per_step_overhead_us: float
    memory_efficiency: float  # multiplier on ideal HBM time (>= 1)
    compute_efficiency: float  # fraction of peak FLOP/s reached (<= 1)
    prefill_interference: float  # multiplier on prefill cost seen by decodes
    allreduce_multiplier: float
    source: str = ""


@dataclass(frozen=True)
class GpuSpec:
    """One GPU type: datasheet numbers plus calibrated efficiency constants."""

    name: GpuType
    memory_gib: float
    hbm_tb_per_s: float
    bf16_tflops: float
    fp8_tflops: float | None
    link_gb_per_s: float  # GPU-to-GPU bandwidth per direction (NVLink or PCIe)
    allreduce_latency_us: float  # all-reduce latency floor
    nvlink_domain_size: int  # GPUs reachable over NVLink (1: PCIe only)
    calibration: Calibration
    product_labels: tuple[str, ...] = ()  # nvidia.com/gpu.product values on Kubernetes nodes
    aliases: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Catalog:
    """All known models and GPUs, keyed by name."""

    models: dict[ModelName, ModelSpec] = field(default_factory=dict)
    gpus: dict[GpuType, GpuSpec] = field(default_factory=dict)
