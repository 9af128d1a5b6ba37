"""`planner model add`: catalog entries from the real Hugging Face configs in ../shared."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.catalog import resolve_model
from planner.cli import app
from planner.io.configs import load_catalog

MODELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "models"
needs_configs = pytest.mark.skipif(
    not MODELS.is_dir(), reason=f"real Hugging Face configs expected at {MODELS} (../shared)"
)

# One config per supported family, with what the entry must say.
FAMILIES = [
    ("meta-llama--Meta-Llama-3.1-8B", {"layers": 32, "moe_experts": 0, "weight_dtype": "bf16"}),
    ("Qwen--Qwen3-8B", {"layers": 36, "kv_heads": 8, "moe_experts": 0}),
    ("Qwen--Qwen3-30B-A3B", {"moe_experts": 128, "moe_top_k": 8, "moe_intermediate": 768}),
    ("Qwen--Qwen3-235B-A22B-FP8", {"weight_dtype": "fp8", "fp8_scaling": "block"}),
    ("openai--gpt-oss-20b", {"expert_dtype": "mxfp4", "sliding_layers": 12, "moe_experts": 32}),
    ("mistralai--Mixtral-8x7B-v0.1", {"moe_experts": 8, "moe_top_k": 2}),
    ("MiniMaxAI--MiniMax-M2.5", {"moe_experts": 256, "weight_dtype": "fp8"}),
    ("deepseek-ai--DeepSeek-V3", {"kv_lora_rank": 512, "dense_layers": 3, "weight_dtype": "fp8"}),
    ("moonshotai--Kimi-K2.5", {"kv_lora_rank": 512, "expert_dtype": "int4", "moe_experts": 384}),
    ("nvidia--MiniMax-M2.5-NVFP4", {"expert_dtype": "fp4", "kv_dtype": "fp8"}),
    ("Qwen--Qwen3-VL-30B-A3B-Instruct", {"moe_experts": 128, "layers": 48, "hidden": 2048}),
]


def _catalog_dir(tmp_path: Path, repo: Path) -> Path:
    root = tmp_path / "configs"
    (root / "models").mkdir(parents=True)
    shutil.copytree(repo / "configs" / "gpus", root / "gpus")
    return root


@needs_configs
@pytest.mark.parametrize(("stem", "expected"), FAMILIES)
def test_model_add_writes_an_entry_that_loads_and_resolves_by_hf_id(
    stem: str, expected: dict[str, object], tmp_path: Path, repo: Path
) -> None:
    root = _catalog_dir(tmp_path, repo)
    config = MODELS / f"{stem}_config.json"
    result = CliRunner().invoke(app, ["model", "add", str(config), "--configs", str(root)])
    assert result.exit_code == 0, result.output
    hf_id = stem.replace("--", "/", 1)
    catalog = load_catalog(root)
    spec = resolve_model(catalog, hf_id)
    assert spec.hf_id == hf_id and spec.name == hf_id.split("/")[1]
    for key, value in expected.items():
        assert getattr(spec, key) == value, key
    assert spec.params_b > 0 and (spec.active_params_b or spec.params_b) <= spec.params_b


@needs_configs
def test_parameter_counts_match_the_published_sizes(tmp_path: Path, repo: Path) -> None:
    root = _catalog_dir(tmp_path, repo)
    published = {  # billions, from the model cards
        "openai--gpt-oss-120b": 116.8,
        "Qwen--Qwen3-235B-A22B": 235.1,
        "deepseek-ai--DeepSeek-V3": 671.0,
        "mistralai--Mixtral-8x7B-v0.1": 46.7,
    }
    runner = CliRunner()
    for stem in published:
        result = runner.invoke(
            app, ["model", "add", str(MODELS / f"{stem}_config.json"), "--configs", str(root)]
        )
        assert result.exit_code == 0, result.output
    catalog = load_catalog(root)
    for stem, size in published.items():
        spec = resolve_model(catalog, stem.replace("--", "/", 1))
        assert spec.params_b == pytest.approx(size, rel=0.01)


@needs_configs
def test_unsupported_architecture_is_one_line_naming_it(tmp_path: Path, repo: Path) -> None:
    root = _catalog_dir(tmp_path, repo)
    config = MODELS / "nvidia--Nemotron-H-56B-Base-8K_config.json"
    result = CliRunner().invoke(app, ["model", "add", str(config), "--configs", str(root)])
    # One `Error:` line naming the architecture, exit code 2 (bad input).
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "NemotronHForCausalLM" in lines[0] and "supported:" in lines[0]


def test_model_add_without_an_id_says_how_to_give_one(tmp_path: Path, repo: Path) -> None:
    root = _catalog_dir(tmp_path, repo)
    config = tmp_path / "config.json"
    config.write_text('{"architectures": ["LlamaForCausalLM"]}')
    result = CliRunner().invoke(app, ["model", "add", str(config), "--configs", str(root)])
    assert result.exit_code == 2 and "--hf-id" in result.output
    result = CliRunner().invoke(
        app, ["model", "add", str(config), "--hf-id", "acme/tiny", "--configs", str(root)]
    )
    assert result.exit_code == 2 and "lacks 'hidden_size'" in result.output
