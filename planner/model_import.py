"""A catalog model from a Hugging Face `config.json` (and its quantisation config), pure.

Supported architectures (the `architectures` entry of the config, or of its
`text_config` for vision-language wrappers such as Kimi-K2.5 and Qwen3-VL): Llama,
Mistral, Qwen2, Qwen3 (dense), Qwen3-MoE, gpt-oss, Mixtral, MiniMax-M2 and
DeepSeek-V3/Kimi-K2 (MLA).

Parameters are counted from the architecture (attention, dense or routed MLPs, shared
experts, router, embeddings; norms and biases are left out, under 0.1%). Quantisation
comes from the config's `quantization_config` or a ModelOpt `hf_quant_config.json`:
FP8 (block or per-tensor), NVFP4, MXFP4 (gpt-oss experts) and INT4 (compressed-tensors
pack-quantized); parts a quantisation config leaves out (attention, shared experts, LM
head) stay 16-bit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from planner.catalog import Dtype, ModelSpec
from planner.errors import ConfigError

#: Architectures `model_spec_from_hf` reads, by family.
SUPPORTED_ARCHITECTURES: dict[str, str] = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "Qwen2ForCausalLM": "llama",
    "Qwen3ForCausalLM": "llama",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "GptOssForCausalLM": "gpt_oss",
    "MixtralForCausalLM": "mixtral",
    "MiniMaxM2ForCausalLM": "mixtral",
    "DeepseekV3ForCausalLM": "deepseek_v3",
    # Vision-language wrappers whose `text_config` is a supported language model (the
    # vision tower is not counted: it runs once per image, not per generated token).
    "Qwen3VLForConditionalGeneration": "llama",
    "Qwen3VLMoeForConditionalGeneration": "qwen3_moe",
}
#: The longest context a catalog entry plans for by default (vLLM reserves KV for one).
DEFAULT_MAX_MODEL_LEN = 32768


def hf_id_from_file_name(file_name: str) -> str | None:
    """`org--name_config.json` (the shared configs' naming) -> `org/name`; None otherwise."""
    match = re.fullmatch(r"(.+?)--(.+?)_(?:hf_quant_)?config\.json", file_name)
    return f"{match.group(1)}/{match.group(2)}" if match else None


def _need(cfg: Mapping[str, Any], key: str, arch: str, where: str) -> Any:
    if cfg.get(key) is None:
        raise ConfigError(f"{where}: {arch} config lacks '{key}'; add it to the config.json")
    return cfg[key]


def _text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language model's config: `text_config` of a vision-language wrapper that
    names its own architecture (Kimi-K2.5) or whose wrapper is a known one (Qwen3-VL)."""
    text = config.get("text_config")
    if not isinstance(text, Mapping):
        return config
    if text.get("architectures"):
        return text
    wrapper = [str(a) for a in config.get("architectures") or []]
    if any(a in SUPPORTED_ARCHITECTURES for a in wrapper):
        return {**text, "architectures": wrapper}
    return config


def _quant(config: Mapping[str, Any], text: Mapping[str, Any]) -> Mapping[str, Any]:
    q = config.get("quantization_config") or text.get("quantization_config") or {}
    return q if isinstance(q, Mapping) else {}


def _ignored(patterns: list[str], part: str) -> bool:
    """Whether a quantisation config's ignore/exclude list leaves `part` unquantised."""
    return any(part in p for p in patterns)


def _quant_dtypes(
    quant: Mapping[str, Any], modelopt: Mapping[str, Any] | None, family: str, where: str
) -> tuple[Dtype, Dtype, str, Dtype]:
    """(weight dtype of attention/dense parts, expert dtype, fp8 scaling, KV dtype)."""
    kv: Dtype = "bf16"
    body: Dtype
    if modelopt is not None:
        q = modelopt.get("quantization", modelopt)
        algo = str(q.get("quant_algo", "")).upper()
        excluded = [str(p) for p in q.get("exclude_modules", []) or []]
        if str(q.get("kv_cache_quant_algo", "")).upper() == "FP8":
            kv = "fp8"
        nvidia = _modelopt_dtype(algo, where)
        attention: Dtype = "bf16" if _ignored(excluded, "self_attn") else nvidia
        return attention, nvidia, "tensor", kv
    method = str(quant.get("quant_method", ""))
    if not method:
        return "bf16", "bf16", "block", kv
    ignore = [str(p) for p in quant.get("ignore", quant.get("modules_to_not_convert", [])) or []]
    if method == "fp8":
        scaling = "block" if quant.get("weight_block_size") else "tensor"
        return "fp8", "fp8", scaling, kv
    if method == "mxfp4":  # gpt-oss: only the experts are MXFP4
        return "bf16", "mxfp4", "block", kv
    if method == "modelopt":
        algo = str(quant.get("quant_algo", "")).upper()
        scheme = quant.get("kv_cache_scheme")
        if isinstance(scheme, Mapping) and scheme.get("num_bits") == 8:
            kv = "fp8"
        body = _modelopt_dtype(algo, where)
        attention = "bf16" if _ignored(ignore, "self_attn") else body
        return attention, body, "tensor", kv
    if method == "compressed-tensors":
        groups: Mapping[str, Any] = quant.get("config_groups") or {}
        first: Mapping[str, Any] = next(iter(groups.values()), {}) if groups else {}
        weights: Mapping[str, Any] = first.get("weights") or {}
        bits, kind = weights.get("num_bits"), weights.get("type")
        if bits == 4 and kind == "int":
            body = "int4"
        elif bits == 4 and kind == "float":
            body = "fp4"
        elif bits == 8 and kind == "float":
            body = "fp8"
        else:
            raise ConfigError(
                f"{where}: compressed-tensors weights of {bits} bits ({kind}) are not "
                "supported; supported: int4, fp4 (NVFP4), fp8"
            )
        attention = "bf16" if _ignored(ignore, "self_attn") else body
        return attention, body, "tensor", kv
    raise ConfigError(
        f"{where}: quant_method '{method}' is not supported; supported: fp8, mxfp4, "
        "modelopt (FP8, NVFP4), compressed-tensors (int4, NVFP4, fp8)"
    )


def _modelopt_dtype(algo: str, where: str) -> Dtype:
    if algo == "NVFP4":
        return "fp4"
    if algo == "FP8":
        return "fp8"
    raise ConfigError(f"{where}: ModelOpt quant_algo '{algo}' is not supported (NVFP4, FP8)")


def model_spec_from_hf(
    config: Mapping[str, Any],
    hf_id: str,
    *,
    name: str | None = None,
    quant_config: Mapping[str, Any] | None = None,
    where: str = "config.json",
) -> ModelSpec:
    """The catalog entry for a Hugging Face config.

    Args:
        config: the parsed `config.json`.
        hf_id: the model's Hugging Face id (`org/name`); the catalog name defaults to
            its `name` part.
        name: the catalog name, if not the id's name part.
        quant_config: a parsed ModelOpt `hf_quant_config.json`, when the checkpoint
            declares its quantisation there.
        where: the file, for messages.

    Raises:
        ConfigError: an unsupported architecture or quantisation, or a missing key; the
            message names what is missing.
    """
    text = _text_config(config)
    archs = [str(a) for a in text.get("architectures") or []]
    arch = next((a for a in archs if a in SUPPORTED_ARCHITECTURES), None)
    if arch is None:
        raise ConfigError(
            f"{where}: architecture {', '.join(archs) or '(none)'} is not supported; "
            f"supported: {', '.join(sorted(SUPPORTED_ARCHITECTURES))}"
        )
    family = SUPPORTED_ARCHITECTURES[arch]
    h = int(_need(text, "hidden_size", arch, where))
    layers = int(_need(text, "num_hidden_layers", arch, where))
    heads = int(_need(text, "num_attention_heads", arch, where))
    kv_heads = int(text.get("num_key_value_heads") or heads)
    vocab = int(_need(text, "vocab_size", arch, where))
    head_dim = int(text.get("head_dim") or h // heads)
    inter = int(_need(text, "intermediate_size", arch, where))
    tied = bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", False)))
    extra: dict[str, Any] = {}

    # Attention parameters per layer.
    if family == "deepseek_v3":
        q_lora = int(text.get("q_lora_rank") or 0)
        kv_lora = int(_need(text, "kv_lora_rank", arch, where))
        rope = int(_need(text, "qk_rope_head_dim", arch, where))
        nope = int(_need(text, "qk_nope_head_dim", arch, where))
        v_dim = int(_need(text, "v_head_dim", arch, where))
        q_params = (
            (h * q_lora + q_lora * heads * (nope + rope)) if q_lora else h * heads * (nope + rope)
        )
        attention = q_params + h * (kv_lora + rope) + kv_lora * heads * (nope + v_dim)
        attention += heads * v_dim * h
        head_dim = nope + rope
        kv_heads = heads  # MLA: every head reads the one latent; TP splits the heads
        extra.update(
            kv_lora_rank=kv_lora,
            q_lora_rank=q_lora,
            qk_rope_head_dim=rope,
            qk_nope_head_dim=nope,
            v_head_dim=v_dim,
        )
    else:
        attention = h * heads * head_dim + 2 * h * kv_heads * head_dim + heads * head_dim * h

    # MLP parameters.
    experts = top_k = moe_inter = shared = dense_layers = 0
    if family == "llama":
        mlp_total = layers * 3 * h * inter
        active_mlp = mlp_total
    else:
        if family == "deepseek_v3":
            experts = int(_need(text, "n_routed_experts", arch, where))
            moe_inter = int(_need(text, "moe_intermediate_size", arch, where))
            shared = int(text.get("n_shared_experts") or 0) * moe_inter
            dense_layers = int(text.get("first_k_dense_replace") or 0)
        elif family == "qwen3_moe":
            experts = int(_need(text, "num_experts", arch, where))
            moe_inter = int(_need(text, "moe_intermediate_size", arch, where))
            dense_layers = len(text.get("mlp_only_layers") or [])
        else:  # gpt-oss, Mixtral, MiniMax-M2: intermediate_size is one expert's
            experts = int(text.get("num_local_experts") or _need(text, "num_experts", arch, where))
            moe_inter = inter
            shared = int(text.get("shared_intermediate_size") or 0)
        top_k = int(
            text.get("num_experts_per_tok") or _need(text, "experts_per_token", arch, where)
        )
        moe_layers = layers - dense_layers
        routed = moe_layers * experts * 3 * h * moe_inter
        fixed = moe_layers * (h * experts + 3 * h * shared) + dense_layers * 3 * h * inter
        mlp_total = routed + fixed
        active_mlp = moe_layers * top_k * 3 * h * moe_inter + fixed
        extra.update(
            moe_experts=experts,
            moe_top_k=top_k,
            moe_intermediate=moe_inter,
            moe_shared_intermediate=shared,
            dense_layers=dense_layers,
        )
    embed = vocab * h * (1 if tied else 2)
    params = layers * attention + mlp_total + embed
    active = layers * attention + active_mlp + embed

    # Sliding-window layers (gpt-oss alternates sliding and full attention).
    layer_types = [str(t) for t in text.get("layer_types") or []]
    sliding = sum(t == "sliding_attention" for t in layer_types)
    if sliding and text.get("sliding_window"):
        extra.update(sliding_window=int(text["sliding_window"]), sliding_layers=sliding)

    attention_dtype, expert_dtype, scaling, kv_dtype = _quant_dtypes(
        _quant(config, text), quant_config, family, where
    )
    if experts:
        weight_dtype: Dtype = attention_dtype
        if expert_dtype != attention_dtype:
            extra["expert_dtype"] = expert_dtype
    else:
        weight_dtype = expert_dtype  # dense: the MLPs (most weights) carry the format
    max_len = min(int(text.get("max_position_embeddings") or DEFAULT_MAX_MODEL_LEN), 32768)
    short = name or hf_id.rsplit("/", 1)[-1]
    return ModelSpec(
        name=short,
        hf_id=hf_id,
        served_name=hf_id,
        params_b=round(params / 1e9, 3),
        layers=layers,
        hidden=h,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=inter,
        vocab=vocab,
        weight_dtype=weight_dtype,
        kv_dtype=kv_dtype,
        max_model_len=max_len,
        aliases=(short.lower(),) if short.lower() != short else (),
        vllm_args=("--max-model-len", str(max_len))
        + (("--kv-cache-dtype", "fp8") if kv_dtype == "fp8" else ()),
        source=f"{where} ({arch})",
        active_params_b=round(active / 1e9, 3) if experts else None,
        tie_word_embeddings=tied,
        fp8_scaling=scaling,  # type: ignore[arg-type]
        **extra,
    )
