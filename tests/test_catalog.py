"""Catalog loading and model/GPU name resolution."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from planner.catalog import resolve_gpu, resolve_model
from planner.errors import ConfigError, ProfileError
from planner.io.configs import load_catalog

REQUIRED_MODELS = {
    "Llama-3.1-8B-Instruct",
    "Llama-3.1-70B-Instruct",
    "Llama-3.1-70B-Instruct-FP8",
    "Qwen3-32B",
    "Qwen2.5-7B-Instruct",
    "Mistral-7B-Instruct-v0.3",
    "Qwen3-Reranker-0.6B",
}
REQUIRED_GPUS = {"H100-SXM-80GB", "H200-SXM-141GB", "A100-SXM-80GB", "L40S-48GB", "B200-180GB"}


def test_shipped_catalog_parses_and_is_complete(repo: Path) -> None:
    catalog = load_catalog(repo / "configs")
    assert set(catalog.models) >= REQUIRED_MODELS
    assert set(catalog.gpus) >= REQUIRED_GPUS
    # Every file name matches its entry's name, so "add configs/models/<name>.yaml" holds.
    for path in (repo / "configs" / "models").glob("*.yaml"):
        assert path.stem in catalog.models
    for path in (repo / "configs" / "gpus").glob("*.yaml"):
        assert path.stem in catalog.gpus
    assert load_catalog() == catalog  # default location = the shipped folder
    # Power in the summary needs every real GPU's board power (the CPU test device has none).
    assert [g for g, s in catalog.gpus.items() if s.board_power_w is None] == ["cpu"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B-Instruct"),
        ("meta-llama/Llama-3.1-70B-Instruct", "Llama-3.1-70B-Instruct"),
        ("Qwen/Qwen3-32B", "Qwen3-32B"),
        ("Qwen/Qwen3-Reranker-0.6B", "Qwen3-Reranker-0.6B"),
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "Mistral-7B-Instruct-v0.3"),
        ("LLAMA-3.1-70B-INSTRUCT", "Llama-3.1-70B-Instruct"),
        ("qwen3-32b", "Qwen3-32B"),
        ("Qwen3-Reranker-0.6B", "Qwen3-Reranker-0.6B"),
        ("RedHatAI/Meta-Llama-3.1-70B-Instruct-FP8", "Llama-3.1-70B-Instruct-FP8"),
    ],
)
def test_model_aliases_resolve(name: str, expected: str) -> None:
    assert resolve_model(load_catalog(), name).name == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("h100", "H100-SXM-80GB"),
        ("H100", "H100-SXM-80GB"),
        ("NVIDIA-H100-80GB-HBM3", "H100-SXM-80GB"),
        ("NVIDIA-H100-80GB-HBM3-SHARED", "H100-SXM-80GB"),
        ("NVIDIA-A100-SXM4-80GB", "A100-SXM-80GB"),
        ("NVIDIA-L40S", "L40S-48GB"),
        ("NVIDIA-B200", "B200-180GB"),
        ("h200", "H200-SXM-141GB"),
    ],
)
def test_gpu_aliases_resolve(name: str, expected: str) -> None:
    assert resolve_gpu(load_catalog(), name).name == expected


def test_unknown_model_lists_known_suggests_and_says_how_to_add() -> None:
    with pytest.raises(ProfileError) as err:
        resolve_model(load_catalog(), "meta-llama/Llama-3.1-8B-Instrct")
    text = str(err.value)
    assert "did you mean" in text and "Llama-3.1-8B-Instruct" in text
    assert "Qwen3-32B" in text and "configs/models/<name>.yaml" in text


def test_unknown_gpu_lists_known() -> None:
    with pytest.raises(ProfileError, match=r"known GPU types: .*H100-SXM-80GB.*configs/gpus"):
        resolve_gpu(load_catalog(), "TPU-v5")


def _copy_catalog(repo: Path, tmp_path: Path) -> Path:
    shutil.copytree(repo / "configs" / "models", tmp_path / "models")
    shutil.copytree(repo / "configs" / "gpus", tmp_path / "gpus")
    return tmp_path


def test_misspelt_key_names_file_key_and_suggestion(repo: Path, tmp_path: Path) -> None:
    root = _copy_catalog(repo, tmp_path)
    path = root / "models" / "Qwen3-32B.yaml"
    path.write_text(path.read_text().replace("kv_heads:", "kv_head:"))
    with pytest.raises(ConfigError) as err:
        load_catalog(root)
    text = str(err.value)
    assert "Qwen3-32B.yaml" in text and "'kv_head'" in text and 'did you mean "kv_heads"' in text


def test_misspelt_calibration_key_is_rejected(repo: Path, tmp_path: Path) -> None:
    root = _copy_catalog(repo, tmp_path)
    path = root / "gpus" / "H100-SXM-80GB.yaml"
    path.write_text(path.read_text().replace("memory_efficiency:", "memory_eficiency:"))
    with pytest.raises(ConfigError, match=r"H100-SXM-80GB.yaml.*memory_eficiency.*did you mean"):
        load_catalog(root)


def test_broken_yaml_names_file_and_line(repo: Path, tmp_path: Path) -> None:
    root = _copy_catalog(repo, tmp_path)
    (root / "models" / "broken.yaml").write_text("schema_version: 1\nname: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+: not valid YAML"):
        load_catalog(root)


def test_duplicate_alias_is_rejected(repo: Path, tmp_path: Path) -> None:
    root = _copy_catalog(repo, tmp_path)
    path = root / "models" / "Mistral-7B-Instruct-v0.3.yaml"
    path.write_text(path.read_text().replace("mistral:7b]", "mistral:7b, qwen3-32b]"))
    with pytest.raises(ConfigError, match="also used by"):
        load_catalog(root)


def test_kv_heads_must_divide_heads(repo: Path, tmp_path: Path) -> None:
    root = _copy_catalog(repo, tmp_path)
    path = root / "models" / "Qwen3-32B.yaml"
    path.write_text(path.read_text().replace("kv_heads: 8", "kv_heads: 7"))
    with pytest.raises(ConfigError, match=r"Qwen3-32B.yaml: key 'kv_heads'"):
        load_catalog(root)


def test_planner_configs_env_overrides_the_shipped_folder(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy_catalog(repo, tmp_path)
    for path in (root / "models").glob("*.yaml"):
        if path.stem != "Qwen3-32B":
            path.unlink()
    monkeypatch.setenv("PLANNER_CONFIGS", str(root))
    assert set(load_catalog().models) == {"Qwen3-32B"}


def test_missing_subfolder_is_named(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    with pytest.raises(ConfigError, match=r"missing folder 'gpus/'"):
        load_catalog(tmp_path)
