"""The deploy verbs end to end through the CLI (no API server: apply stops at connect)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml
from cli_helpers import invoke
from deploy_helpers import make_plan
from typer.testing import CliRunner

from planner.cli import app
from planner.io.manifests import read_manifests
from planner.io.plan_file import write_plan
from planner.types.plan import Allocation

H100 = "H100-SXM-80GB"
TOKEN = ["--hf-token-secret", "hf-token"]  # the shipped Llama models are gated


def shipped_plan(tmp_path: Path, *allocs: Allocation) -> Path:
    plan = make_plan(
        *(
            allocs
            or (
                Allocation("Llama-3.1-70B-Instruct", H100, 4, 8, 2),
                Allocation("Llama-3.1-8B-Instruct", H100, 1, 4, 3),
                Allocation("Qwen3-Reranker-0.6B", H100, 1, 2, 2),
            )
        )
    )
    return write_plan(plan, tmp_path)


def run(*args: str, cwd: Path) -> tuple[int, str, str]:
    """`planner ARGS` in-process, with no kubeconfig (no API server runs here)."""
    env = {"KUBECONFIG": str(cwd / "no-kubeconfig"), "HOME": str(cwd)}
    return invoke(*args, env=env)


def test_render_writes_valid_deterministic_manifests(tmp_path: Path, repo: Path) -> None:
    plan = shipped_plan(tmp_path)
    cluster = str(repo / "configs" / "cluster.yaml")
    outputs = []
    for out in ("a", "b"):
        result = CliRunner().invoke(
            app,
            ["render", str(plan), "--cluster", cluster, "-o", str(tmp_path / out), *TOKEN],
        )
        assert result.exit_code == 0, result.output
        assert (
            "placed 7 replicas on 2 node(s); free: 4 whole node(s), 30 whole GPU(s)"
            in result.output
        )
        outputs.append(tmp_path / out / "manifests")
    files = sorted(p.name for p in outputs[0].iterdir())
    assert files == sorted(p.name for p in outputs[1].iterdir())
    for name in files:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes()
    objects = read_manifests(tmp_path / "a")
    for obj in objects:
        kubernetes_validate.validate(obj, "1.33", strict=True)
    cm = next(o for o in objects if o["kind"] == "ConfigMap")
    assert cm["data"]["plan.yaml"] == plan.read_text()
    # Beside the plan: where each replica runs, and the cluster it was placed on.
    where = yaml.safe_load(cm["data"]["placement.yaml"])
    assert len(where["replicas"]) == 7
    assert where["fragmentation"]["free_nodes"] == 4
    assert yaml.safe_load(cm["data"]["cluster.yaml"])["pools"][0]["name"] == "h100"
    reranker = yaml.safe_load((outputs[0] / "service-qwen3-reranker-0-6b.yaml").read_text())
    assert reranker["spec"]["selector"] == {"serves.planner.dev/qwen3-reranker-0-6b": "true"}


def test_render_infeasible_plan_exits_3(tmp_path: Path) -> None:
    plan = shipped_plan(tmp_path, Allocation("Llama-3.1-70B-Instruct", H100, 8, 8, 2))
    code, _, stderr = run(
        "render", str(plan), "--gpus", "8", "-o", str(tmp_path / "out"), *TOKEN, cwd=tmp_path
    )
    assert code == 3, stderr
    assert stderr.strip().splitlines() == [
        "Error: the plan needs 16 H100-SXM-80GB GPUs but the cluster has 8"
    ]
    assert not (tmp_path / "out").exists()


def test_render_bad_sharing_exits_2(tmp_path: Path) -> None:
    plan = shipped_plan(tmp_path)
    code, _, stderr = run("render", str(plan), "--gpus", "8", "--sharing", "mig", cwd=tmp_path)
    assert code == 2
    assert "--sharing 'mig': choose one of process, hami" in stderr


def test_render_gated_model_without_token_exits_2(tmp_path: Path) -> None:
    plan = shipped_plan(tmp_path)
    out = str(tmp_path / "out")
    no_token = ["--hf-token-secret", ""]
    code, _, stderr = run("render", str(plan), "--gpus", "16", *no_token, "-o", out, cwd=tmp_path)
    assert code == 2
    (line,) = stderr.strip().splitlines()
    assert line.startswith("Error: Llama-3.1-70B-Instruct, Llama-3.1-8B-Instruct: gated")
    assert "--hf-token-secret" in line
    assert not (tmp_path / "out").exists()


def test_apply_without_cluster_is_one_error_line(tmp_path: Path, repo: Path) -> None:
    manifests = repo / "tests" / "golden" / "manifests-process"
    code, _, stderr = run("apply", str(manifests), "--dry-run", cwd=tmp_path)
    assert code == 2
    (line,) = stderr.strip().splitlines()
    assert line.startswith("Error: no cluster credentials")


def test_plan_writes_plan_and_manifests(tmp_path: Path, repo: Path) -> None:
    out = tmp_path / "out"
    args = ["plan", "--gpus", "16", "-o", str(out), "--time-limit", "10", "--workers", "1"]
    args += ["--slo", "rag=30", "--replan-schedule", "*/15 * * * *", *TOKEN]
    args += ["--replan-traces-claim", "planner-traces"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 14 objects" in result.output or "objects to" in result.output
    plan_doc = yaml.safe_load((out / "plan.yaml").read_text())
    objects = read_manifests(out)
    cm = next(o for o in objects if o["kind"] == "ConfigMap")
    assert cm["data"]["plan.yaml"] == (out / "plan.yaml").read_text()
    gpu_requests = 0
    for obj in objects:
        kubernetes_validate.validate(obj, "1.33", strict=True)
        if obj["kind"] == "Deployment":
            limits = obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
            gpu_requests += int(limits["nvidia.com/gpu"]) * obj["spec"]["replicas"]
    assert gpu_requests <= 16
    cron = next(o for o in objects if o["kind"] == "CronJob")
    assert cron["spec"]["schedule"] == "*/15 * * * *"
    replan_args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert replan_args[0] == "replan"
    assert "--slo=rag=30" in replan_args and "--objective=min-latency" in replan_args
    # `planner replan` parses the CronJob's arguments (--help stops before any work).
    parsed = CliRunner().invoke(app, [*replan_args, "--help"])
    assert parsed.exit_code == 0, parsed.output
    bad = CliRunner().invoke(app, [*replan_args, "--no-such-flag", "--help"])
    assert bad.exit_code != 0
    placed = yaml.safe_load((out / "placement.yaml").read_text())["replicas"]
    assert cm["data"]["placement.yaml"] == (out / "placement.yaml").read_text()
    assert len(placed) == sum(a["replicas"] for a in plan_doc["allocations"])
