"""`planner profile predict` through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app

ARGS = ["--input-tokens", "2000", "--output-tokens", "300", "--concurrency", "16"]


def test_predict_json_has_the_contract_keys() -> None:
    result = CliRunner().invoke(
        app,
        [
            *("profile", "predict", "--model", "meta-llama/Llama-3.1-70B-Instruct"),
            *("--gpu-type", "h100", "--tp", "4", "--json", *ARGS),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    for key in (
        "ttft_ms",
        "tpot_ms",
        "e2e_ms",
        "output_tokens_per_s",
        "requests_per_s",
        "kv_cache_tokens",
        "max_concurrency",
        "source",
    ):
        assert key in out
    # H100 ships measured kernel tables: the kernels source answers.
    assert out["source"] == "kernels" and out["model"] == "Llama-3.1-70B-Instruct"
    # Little's law ties the printed figures together.
    assert out["requests_per_s"] * out["e2e_ms"] / 1e3 == pytest.approx(16, rel=1e-3)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    repo = Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, "-m", "planner", "profile", "predict", *args],
        capture_output=True,
        text=True,
        cwd=repo,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_not_fitting_exits_3_with_memory_figures() -> None:
    proc = _run("--model", "Llama-3.1-70B-Instruct", "--gpu-type", "H100", "--tp", "1", *ARGS)
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: does not fit")
    assert "weights 131.4 GiB" in lines[0] and "73.2 GiB usable" in lines[0]


def test_unknown_model_exits_2_with_suggestion() -> None:
    proc = _run("--model", "llama-3.1-70b-instrukt", "--gpu-type", "h100", *ARGS)
    assert proc.returncode == 2
    assert "did you mean" in proc.stderr and "configs/models/<name>.yaml" in proc.stderr


def test_predict_json_for_an_moe_model_by_hf_id_with_expert_parallelism() -> None:
    args = ["profile", "predict", "--model", "openai/gpt-oss-120b", "--gpu-type", "h100"]
    runner = CliRunner()
    tp_only = runner.invoke(app, [*args, "--tp", "2", "--json", *ARGS])
    with_ep = runner.invoke(app, [*args, "--tp", "2", "--enable-expert-parallel", "--json", *ARGS])
    assert tp_only.exit_code == 0 and with_ep.exit_code == 0, tp_only.output + with_ep.output
    a, b = json.loads(tp_only.output), json.loads(with_ep.output)
    assert a["model"] == "gpt-oss-120b" and a["source"] == b["source"] == "kernels"
    assert b["expert_parallel"] is True and a["expert_parallel"] is False
    # Experts are MXFP4 (0.53 bytes per weight); attention and embeddings stay BF16.
    parts = a["weights_gib_by_part"]
    assert parts["experts"] == pytest.approx(56.73, abs=0.01)
    assert parts["embeddings"] == pytest.approx(201088 * 2880 * 2 * 2 / 2**30, rel=1e-3)
    # The MoE kernel differs between an intermediate-dim split and an expert split.
    assert a["tpot_ms"] != b["tpot_ms"]
    assert a["tpot_ms"] > 0 and a["ttft_ms"] > 0


def test_gpu_without_kernel_tables_falls_back_to_the_roofline(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "models").mkdir()
    (tmp_path / "gpus").mkdir()
    model = (repo / "configs" / "models" / "Qwen3-32B.yaml").read_text()
    (tmp_path / "models" / "Qwen3-32B.yaml").write_text(model)
    gpu = (repo / "configs" / "gpus" / "H100-SXM-80GB.yaml").read_text()
    gpu = "\n".join(line for line in gpu.splitlines() if not line.startswith("kernel_tables:"))
    (tmp_path / "gpus" / "H100-SXM-80GB.yaml").write_text(gpu)
    result = CliRunner().invoke(
        app,
        [
            *("profile", "predict", "--model", "Qwen3-32B", "--gpu-type", "h100"),
            *("--tp", "2", "--configs", str(tmp_path), "--json", *ARGS),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["source"] == "roofline" and out["extrapolated"] == []
