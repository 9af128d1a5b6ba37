"""Model and GPU catalogs: the facts about hardware and architectures the planner uses.

Loaded from `configs/models/*.yaml` and `configs/gpus/*.yaml` (flat YAML with
`schema_version: 1`) by `planner.io`; parsed here by `planner.config.parse_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from planner.errors import ProfileError, did_you_mean
from planner.types.cluster import Cluster
from planner.types.names import GpuType, ModelName

Dtype = Literal["bf16", "fp16", "fp8", "int8", "int4", "fp4", "mxfp4"]

# fp4 is NVFP4: 4-bit values plus one FP8 scale per 16 values (4.5 bits per weight);
# mxfp4 is OCP MXFP4: 4-bit values plus one E8M0 scale per 32 values (4.25 bits);
# int4 is group-quantised INT4 (compressed-tensors, group 32: 4.5 bits with BF16 scales).
BYTES_PER_DTYPE: dict[str, float] = {
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "fp4": 0.5625,
    "mxfp4": 0.53125,
}


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
    # Mixture-of-experts: parameters used per token (None: dense, all params active).
    active_params_b: float | None = None
    # Input embedding and LM head share one matrix (small models): counted once.
    tie_word_embeddings: bool = False
    # FP8 scaling of the checkpoint: "block" (128x128 blocks, e.g. Qwen FP8, DeepSeek) or
    # "tensor" (one scale per tensor, e.g. NVIDIA ModelOpt FP8); selects the GEMM kernel.
    fp8_scaling: Literal["block", "tensor"] = "block"
    # Mixture of experts (0 experts: dense). `moe_intermediate` is one expert's
    # intermediate size; shared experts are a dense MLP of `moe_shared_intermediate` run
    # beside the routed ones; the first `dense_layers` layers keep a dense MLP of
    # `intermediate` (DeepSeek's first_k_dense_replace).
    moe_experts: int = 0
    moe_top_k: int = 0
    moe_intermediate: int = 0
    moe_shared_intermediate: int = 0
    dense_layers: int = 0
    # Weight dtype of the routed experts when it differs from `weight_dtype` (gpt-oss:
    # MXFP4 experts, BF16 attention; Kimi-K2: INT4 experts, BF16 attention). None: same.
    expert_dtype: Dtype | None = None
    # Multi-head latent attention (DeepSeek-V3, Kimi-K2): KV cache holds the compressed
    # latent (kv_lora_rank) plus the RoPE key (qk_rope_head_dim) per layer. 0: plain GQA.
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    # Sliding-window attention on `sliding_layers` of the layers (gpt-oss: every other
    # layer, window 128); those layers keep only `sliding_window` tokens of KV.
    sliding_window: int = 0
    sliding_layers: int = 0

    @property
    def is_moe(self) -> bool:
        """Whether the MLP is a mixture of experts."""
        return self.moe_experts > 0

    @property
    def is_mla(self) -> bool:
        """Whether attention is multi-head latent attention."""
        return self.kv_lora_rank > 0

    @property
    def routed_expert_dtype(self) -> Dtype:
        """Weight dtype of the routed experts."""
        return self.expert_dtype or self.weight_dtype

    # Hugging Face serves the weights only to accounts that accepted the licence: the pods
    # need a token, so rendering requires `--hf-token-secret`.
    gated: bool = False

    @property
    def embedding_params_b(self) -> float:
        """Embedding + LM-head parameters, billions; quantised checkpoints keep them 16-bit."""
        return self.vocab * self.hidden * (1 if self.tie_word_embeddings else 2) / 1e9

    @property
    def expert_params_b(self) -> float:
        """Parameters of the routed experts (gate, up and down of each), billions."""
        moe_layers = self.layers - self.dense_layers
        return moe_layers * self.moe_experts * 3 * self.hidden * self.moe_intermediate / 1e9

    def weight_gib_by_part(self) -> dict[str, float]:
        """Bytes of the weights per part in its own dtype, GiB: embeddings (16-bit), routed
        experts (`routed_expert_dtype`) and the rest (attention, dense and shared MLPs,
        norms: `weight_dtype`), from `params_b` less the two counted parts."""
        embed = min(self.embedding_params_b, self.params_b)
        experts = min(self.expert_params_b, self.params_b - embed)
        rest = self.params_b - embed - experts
        gib = 1e9 / 2.0**30
        return {
            "embeddings": embed * 2.0 * gib,
            "experts": experts * BYTES_PER_DTYPE[self.routed_expert_dtype] * gib,
            "dense": rest * BYTES_PER_DTYPE[self.weight_dtype] * gib,
        }

    @property
    def weight_bytes(self) -> float:
        """Bytes of all weights: each part in its own dtype (16-bit embeddings and LM head)."""
        embed = min(self.embedding_params_b, self.params_b)
        experts = min(self.expert_params_b, self.params_b - embed)
        body = self.params_b - embed - experts
        return (
            body * BYTES_PER_DTYPE[self.weight_dtype]
            + experts * BYTES_PER_DTYPE[self.routed_expert_dtype]
            + embed * 2.0
        ) * 1e9

    @property
    def compute_params_b(self) -> float:
        """Parameters whose matmuls run per token (active experts for MoE)."""
        return self.active_params_b if self.active_params_b is not None else self.params_b


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
    # Fixed part of every request's TTFT outside the engine steps: HTTP, tokenisation,
    # scheduling and detokenisation of the first token.
    ttft_overhead_ms: float = 0.0
    # Cost per running sequence per decode step: scheduling, input preparation, sampling
    # and attention-kernel launch work that grows with the batch, beyond bytes and FLOPs.
    per_sequence_overhead_us: float = 0.0
    # Share of the other running requests' prefill work a new request waits for before
    # its own prefill (<= prefill_interference; the rest interleaves with its decodes).
    prefill_wait_fraction: float = 0.0
    # Extra cost of reading FP4 weights (dequantisation, scale reads) over the ideal bytes.
    fp4_weight_read_multiplier: float = 1.0


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
    fp4_tflops: float | None = None  # dense FP4 tensor-core peak (Blackwell), None: no FP4
    board_power_w: float | None = None  # board power under load (datasheet TDP); None: unknown
    # vLLM's scheduler defaults for `vllm serve` on this GPU (EngineArgs.get_batch_defaults:
    # GPUs with >= 70 GiB other than A100 get 1024 sequences / 8192 tokens, others 256 / 2048).
    vllm_max_num_seqs: int = 256
    vllm_max_num_batched_tokens: int = 2048
    aliases: tuple[str, ...] = ()
    source: str = ""
    # Folder of shipped measured kernel tables (planner/profiles/kernels/data/<name>);
    # empty: none, the roofline answers for this GPU.
    kernel_tables: str = ""
    # Between nodes (pipeline-parallel hops of a replica spanning nodes): bandwidth per GPU
    # per direction and the point-to-point latency. 0: unknown, no multi-node shapes.
    inter_node_gb_per_s: float = 0.0
    inter_node_latency_us: float = 0.0


@dataclass(frozen=True)
class Catalog:
    """All known models and GPUs, keyed by name."""

    models: dict[ModelName, ModelSpec] = field(default_factory=dict)
    gpus: dict[GpuType, GpuSpec] = field(default_factory=dict)


def _norm(name: str) -> str:
    return name.strip().lower()


def served_max_model_len(model: ModelSpec) -> int:
    """The context length the deployment accepts: --max-model-len in the model's vLLM
    args (what the manifests pass to vLLM), else `max_model_len`."""
    args = list(model.vllm_args)
    for i, arg in enumerate(args):
        value = None
        if arg == "--max-model-len" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--max-model-len="):
            value = arg.split("=", 1)[1]
        if value is not None and value.isdigit():
            return int(value)
    return model.max_model_len


def model_names(model: ModelSpec) -> tuple[str, ...]:
    """Every name a trace may use for `model`: catalog name, HF id, served name, aliases."""
    names = (model.name, model.hf_id, model.served_name, *model.aliases)
    # `org/Model` ids also resolve by their bare model part (served names often drop it).
    bare = tuple(n.rsplit("/", 1)[1] for n in names if "/" in n)
    return tuple(dict.fromkeys(n for n in (*names, *bare) if n))


def gpu_names(gpu: GpuSpec) -> tuple[str, ...]:
    """Every name a config or node label may use for `gpu`."""
    return tuple(dict.fromkeys(n for n in (gpu.name, *gpu.aliases, *gpu.product_labels) if n))


def resolve_model(catalog: Catalog, name: str) -> ModelSpec:
    """The catalog model a trace or config calls `name` (case-insensitive, any alias).

    Raises:
        ProfileError: no model answers to `name`; the message lists the known models,
            suggests the closest and says how to add one.
    """
    if name in catalog.models:
        return catalog.models[name]
    wanted = _norm(name)
    for model in catalog.models.values():
        if any(_norm(n) == wanted for n in model_names(model)):
            return model
    every = [n for m in catalog.models.values() for n in model_names(m)]
    raise ProfileError(
        f"unknown model '{name}'{did_you_mean(name, every)}; known models: "
        f"{', '.join(sorted(catalog.models))}. To add one, run `planner model add "
        f"CONFIG.json` with its Hugging Face config.json, or add configs/models/<name>.yaml "
        f"(copy a similar model's file, set its architecture numbers, and list '{name}' "
        f"under aliases)"
    )


def resolve_gpu(catalog: Catalog, name: str) -> GpuSpec:
    """The catalog GPU type called `name` (catalog name, alias or node product label).

    Raises:
        ProfileError: no GPU type answers to `name`, with the known ones and how to add one.
    """
    if name in catalog.gpus:
        return catalog.gpus[name]
    wanted = _norm(name)
    for gpu in catalog.gpus.values():
        if any(_norm(n) == wanted for n in gpu_names(gpu)):
            return gpu
    # Node labels carry sharing suffixes (time-slicing appends -SHARED).
    for suffix in ("-shared", "-mig"):
        if wanted.endswith(suffix):
            return resolve_gpu(catalog, name[: -len(suffix)])
    every = [n for g in catalog.gpus.values() for n in gpu_names(g)]
    raise ProfileError(
        f"unknown GPU type '{name}'{did_you_mean(name, every)}; known GPU types: "
        f"{', '.join(sorted(catalog.gpus))}. To add one, add configs/gpus/<name>.yaml "
        f"(datasheet numbers and calibration constants; copy the closest GPU's file)"
    )


def with_board_power(cluster: Cluster, catalog: Catalog) -> Cluster:
    """The cluster with each pool's power per GPU filled from the catalog's board power
    where the cluster file gives none (unknown GPU types stay unknown)."""
    pools = []
    for p in cluster.pools:
        gpu = catalog.gpus.get(p.gpu_type)
        if p.power_w_per_gpu is None and gpu is not None and gpu.board_power_w is not None:
            p = replace(p, power_w_per_gpu=gpu.board_power_w)
        pools.append(p)
    return Cluster(tuple(pools))
