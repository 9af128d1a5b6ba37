"""A tiny Llama built offline, so real vLLM can be driven in tests without a download.

Hidden 256, 4 heads of 64 (the CPU attention kernel rejects head_dim 16), 2 KV heads,
2 layers, random weights, and a word-level tokenizer trained with `tokenizers` on a
synthetic corpus. Needs `torch`, `transformers` and `tokenizers` (the `vllm` extra).
"""

from __future__ import annotations

import shutil
from pathlib import Path

TINY_NAME = "tiny-llama-test"
MAX_MODEL_LEN = 1024


def build_tiny_model(
    out: Path, hidden: int = 256, layers: int = 2, heads: int = 4, kv_heads: int = 2,
    intermediate: int = 512,
) -> Path:  # fmt: skip
    """Write config, safetensors weights and tokenizer files to `out`; return it.

    The defaults are the test model; larger values give a second, slower model (head
    size stays 64, which the CPU attention kernel accepts).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    words = [f"w{i}" for i in range(3000)]
    corpus = [" ".join(words[j : j + 50]) for j in range(0, 3000, 7)]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordLevelTrainer(vocab_size=1024, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.save_pretrained(out)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=64,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(out)
    return out


def write_tiny_catalog(shipped_configs: Path, out: Path, model_dir: Path) -> Path:
    """The shipped catalog plus a test-only spec of the tiny model; returns the folder."""
    shutil.copytree(shipped_configs / "gpus", out / "gpus")
    shutil.copytree(shipped_configs / "models", out / "models")
    add_tiny_spec(out, TINY_NAME, model_dir, aliases=("tiny",))
    return out


def add_tiny_spec(
    catalog: Path, name: str, model_dir: Path, hidden: int = 256, layers: int = 2,
    heads: int = 4, kv_heads: int = 2, intermediate: int = 512, aliases: tuple[str, ...] = (),
) -> Path:  # fmt: skip
    """Write `catalog/models/<name>.yaml` for a model built by `build_tiny_model`."""
    vocab = 1024
    # Parameters: embeddings and LM head (2 x vocab x hidden) plus per layer attention
    # (q, o: hidden^2 each; k, v: hidden x kv_heads x 64 each) and the MLP (3 x hidden x inter).
    per_layer = 2 * hidden * hidden + 2 * hidden * kv_heads * 64 + 3 * hidden * intermediate
    params = 2 * vocab * hidden + layers * per_layer
    path = catalog / "models" / f"{name}.yaml"
    path.write_text(
        f"""schema_version: 1
name: {name}
hf_id: {model_dir}
served_name: {name}
aliases: [{", ".join(aliases)}]
params_b: {params / 1e9:.6f}
layers: {layers}
hidden: {hidden}
heads: {heads}
kv_heads: {kv_heads}
head_dim: 64
intermediate: {intermediate}
vocab: {vocab}
max_model_len: {MAX_MODEL_LEN}
vllm_args: [--max-model-len, "{MAX_MODEL_LEN}", --enforce-eager]
source: built by tests/tiny_model.py (random weights; for exercising the profiler only)
"""
    )
    return path
