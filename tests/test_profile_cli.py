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
    assert out["source"] == "analytic" and out["model"] == "Llama-3.1-70B-Instruct"
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
