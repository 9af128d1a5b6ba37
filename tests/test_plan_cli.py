"""`planner plan` end to end on the shipped sample traces, plan.yaml bytes and round trip."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from search_factory import model, problem, shape

from planner.cli import main
from planner.io.plan_file import dump_plan, read_plan, write_plan
from planner.search import SolveSettings, search_plan

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "plan_tiny.yaml"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def planner(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run `planner plan ARGS` in-process through the console entry (exit codes included)."""
    monkeypatch.chdir(REPO)

    def run(*args: str | Path) -> Run:
        # The shipped traces use gated Llama models: name the token Secret.
        argv = ["planner", "plan", *map(str, args), "--hf-token-secret", "hf-token"]
        monkeypatch.setattr(sys, "argv", argv)
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Run(code, out.out, out.err)

    return run


def test_json_keys_and_plan_file(planner, tmp_path: Path) -> None:
    run = planner("traces", "--gpus", "16", "-o", tmp_path, "--json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert {"allocations", "predicted", "solver", "objective", "gpus_total", "gpus_used"} <= set(
        doc
    )
    assert {"gpus_free", "cost_per_hour", "power_kw"} <= set(doc)
    assert doc["cost_per_hour"] is None  # --gpus has no prices
    assert doc["gpus_used"] + doc["gpus_free"] == pytest.approx(16)
    for a in doc["allocations"]:
        assert set(a) >= {"model", "gpu_type", "tensor_parallel", "gpu_fraction", "replicas"}
        assert a["gpus"] == pytest.approx(a["tensor_parallel"] * a["gpu_fraction"] * a["replicas"])
    assert {"status", "objective", "bound", "gap", "wall_s", "stages"} <= set(doc["solver"])
    assert doc["solver"]["status"] in ("OPTIMAL", "FEASIBLE")
    stages = doc["solver"]["stages"]
    assert [s["stage"] for s in stages][:2] == ["latency", "gpus"]
    assert all({"status", "gap"} <= set(s) for s in stages)
    predicted = doc["predicted"]
    assert {"throughput_per_s", "mean_latency_s", "per_workflow_type"} <= set(predicted)
    assert set(predicted["per_workflow_type"]) == {"beam_search", "coding_agent", "rag"}
    assert doc["gpus_used"] <= 16
    plan = read_plan(tmp_path / "plan.yaml")
    assert [a.model for a in plan.allocations] == [a["model"] for a in doc["allocations"]]


def test_same_inputs_same_bytes(planner, tmp_path: Path) -> None:
    first = planner("traces", "--gpus", "16", "-o", tmp_path / "a")
    second = planner("traces", "--gpus", "16", "-o", tmp_path / "b")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "Bottleneck model" in first.stdout
    assert (tmp_path / "a" / "plan.yaml").read_bytes() == (
        tmp_path / "b" / "plan.yaml"
    ).read_bytes()
    other = planner("traces", "--gpus", "24", "-o", tmp_path / "c")
    digest = [read_plan(tmp_path / d / "plan.yaml").inputs_digest for d in ("a", "c")]
    assert digest[0] != digest[1]  # the cluster is part of the inputs
    assert other.returncode == 0


def test_infeasible_exits_3_with_gpus_needed(planner, tmp_path: Path) -> None:
    run = planner("traces", "--gpus", "4", "-o", tmp_path)
    assert run.returncode == 3, run.stderr
    assert run.stderr.startswith("Error: infeasible")
    assert "needs" in run.stderr and "GPUs" in run.stderr
    assert not (tmp_path / "plan.yaml").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("--slo", "nosuch=5"),
        ("--slo", "rag=fast"),
        ("--objective", "cheapest"),
        ("--gpu-type", "H1OO"),
        ("--target-rate", "rag=-1"),
        ("--utilisation-cap", "1.5"),
    ],
)
def test_bad_input_exits_2(planner, tmp_path: Path, args: tuple[str, str]) -> None:
    run = planner("traces", "--gpus", "16", "-o", tmp_path, *args)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("Error:") and "Traceback" not in run.stderr


def test_missing_traces_exit_2(planner, tmp_path: Path) -> None:
    run = planner(tmp_path / "nothing-here", "--gpus", "8", "-o", tmp_path)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr


def tiny_plan():  # type: ignore[no-untyped-def]
    a = model("a", [shape("a", tp=t, capacity=10 * t**0.8, base_s=1 / t**0.5) for t in (1, 2, 4)])
    b = model("b", [shape("b", fraction=f, capacity=8 * f, base_s=0.8) for f in (1.0, 0.5, 0.25)])
    p = problem([a, b], rate=12.0)
    return search_plan(p, SolveSettings(resolution=0.0))


def test_golden_plan_bytes(tmp_path: Path) -> None:
    text = dump_plan(tiny_plan())
    if os.environ.get("PLANNER_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
    path = write_plan(tiny_plan(), tmp_path)
    assert path.read_bytes() == GOLDEN.read_bytes()
    again = read_plan(path)
    assert again.allocations == tiny_plan().allocations
    assert dump_plan(again) == text


def test_plan_predicts_hit_rates_and_off_plans_without_them(planner, tmp_path: Path) -> None:
    run = planner("traces", "--gpus", "8", "-o", tmp_path / "on", "--json")
    assert run.returncode == 0, run.stderr
    on = json.loads(run.stdout)
    models = on["predicted"]["models"]
    assert all(m["routing"] in ("balanced", "session") for m in models)
    assert all(0 < m["prefix_hit_rate"] < 1 for m in models)  # every model reuses prefixes
    assert all(a["kv_cache_tokens"] > 0 for a in on["allocations"])
    run = planner(
        "traces", "--gpus", "8", "-o", tmp_path / "off", "--json", "--prefix-caching", "off"
    )
    off = json.loads(run.stdout)
    assert all(m["prefix_hit_rate"] == 0 for m in off["predicted"]["models"])
    # Skipping cached prefill only makes calls cheaper.
    assert on["predicted"]["mean_latency_s"] < off["predicted"]["mean_latency_s"]
    manifests = (tmp_path / "on" / "manifests").glob("deployment-*.yaml")
    assert all("--enable-prefix-caching" in p.read_text() for p in manifests)
    manifests = (tmp_path / "off" / "manifests").glob("deployment-*.yaml")
    assert not any("--enable-prefix-caching" in p.read_text() for p in manifests)
    bad = planner("traces", "--gpus", "8", "-o", tmp_path / "x", "--prefix-caching", "maybe")
    assert bad.returncode == 2 and "use on or off" in bad.stderr
