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


def build_tiny_model(out: Path) -> Path:
    """Write config, safetensors weights and tokenizer files to `out`; return it."""
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
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
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
    # params: 2 x 1024 x 256 embeddings/head + 2 layers x (4 x 256^2 attn ... ) ~ 1.6M.
    (out / "models" / f"{TINY_NAME}.yaml").write_text(
        f"""schema_version: 1
name: {TINY_NAME}
hf_id: {model_dir}
served_name: {TINY_NAME}
aliases: [tiny]
params_b: 0.0016
layers: 2
hidden: 256
heads: 4
kv_heads: 2
head_dim: 64
intermediate: 512
vocab: 1024
max_model_len: {MAX_MODEL_LEN}
vllm_args: [--max-model-len, "{MAX_MODEL_LEN}", --enforce-eager]
source: built by tests/tiny_model.py (random weights; for exercising the profiler only)
"""
    )
    return out
