"""Plans read from disk are validated; deploy flags and names are checked before writing;
`apply --prune` never empties a namespace by accident; cluster errors are one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from planner.apply import PruneRefused, plan_apply
from planner.cli import app
from planner.errors import ConfigError, InputError
from planner.io.cluster_file import parse_cluster
from planner.io.kube import ClusterAccessError, _call
from planner.render.schedule import check_namespace, check_schedule
from planner.render.settings import RenderOptions, check_options

REPO = Path(__file__).resolve().parents[1]
SHIPPED_PLAN = REPO / "manifests" / "h100x8" / "plan.yaml"


def edited_plan(tmp_path: Path, index: int, **changes: Any) -> Path:
    doc = yaml.safe_load(SHIPPED_PLAN.read_text())
    doc["allocations"][index].update(changes)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("index", "changes", "message"),
    [
        (1, {"replicas": -2}, "-2 replicas"),
        (1, {"replicas": 0}, "0 replicas"),
        (0, {"tensor_parallel": 3}, "TP 3 is not a power of two dividing 64 heads"),
        (0, {"tensor_parallel": 16}, "NVLink domain of 16 GPUs"),
        # any k/8 is a valid share (3/8 included), but only of one GPU (TP 1)
        (1, {"gpu_fraction": 0.375, "tensor_parallel": 2}, "share must be k/8 of a GPU"),
        (1, {"gpu_fraction": 0.3}, "not k/8 of a GPU"),
        (1, {"model": "Llama-9-8B"}, "not in the catalog"),
        (0, {"gpu_fraction": 0.5}, "1 when TP > 1"),
    ],
)
def test_render_refuses_an_invalid_plan_and_writes_nothing(
    tmp_path: Path, index: int, changes: dict[str, Any], message: str
) -> None:
    plan = edited_plan(tmp_path, index, **changes)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", str(plan), "--gpus", "8", "-o", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert not out.exists()


def test_evaluate_refuses_an_invalid_plan(tmp_path: Path) -> None:
    plan = edited_plan(tmp_path, 1, replicas=-24)
    args = ["evaluate", str(REPO / "traces" / "rag.parquet"), "--plan", str(plan)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "-24 replicas" in result.output and "nan" not in result.output


def test_render_of_a_valid_plan_writes_plan_placement_and_manifests(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", str(SHIPPED_PLAN), "--gpus", "8", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "plan.yaml").read_bytes() == SHIPPED_PLAN.read_bytes()
    assert (out / "placement.yaml").is_file() and (
        out / "manifests" / "kustomization.yaml"
    ).is_file()


@pytest.mark.parametrize("namespace", ["Prod", "llm_serving", "-a", "a" * 64, ""])
def test_bad_namespace_fails_before_planning(tmp_path: Path, namespace: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["plan", str(REPO / "traces"), "--namespace", namespace, "-o", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "--namespace" in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    "schedule", ["* * * *", "60 * * * *", "0 24 * * *", "*/0 * * * *", "5-1 * * * *", "@often"]
)
def test_bad_cron_schedule_fails_before_planning(tmp_path: Path, schedule: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["plan", str(REPO / "traces"), "--replan-schedule", schedule, "-o", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "--replan-schedule" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    "schedule", ["0 * * * *", "*/15 2-5 1,15 JAN-MAR mon-fri", "@hourly", "0 0 ? * 0"]
)
def test_valid_cron_schedules_pass(schedule: str) -> None:
    check_schedule(schedule)


def test_namespace_rules() -> None:
    check_namespace("llm-serving")
    with pytest.raises(InputError, match="not a valid Kubernetes namespace"):
        check_options(RenderOptions(namespace="LLM"))


def test_node_names_colliding_in_kubernetes_are_a_config_error() -> None:
    data = {
        "schema_version": 1,
        "pools": [
            {"name": "gpu_a", "gpu_type": "H100-SXM-80GB", "gpus_per_node": 8, "nodes": 1},
            {"name": "gpu-a", "gpu_type": "H100-SXM-80GB", "gpus_per_node": 8, "nodes": 1},
        ],
    }
    with pytest.raises(ConfigError, match="both become"):
        parse_cluster(data, "cluster.yaml")


def deployment(name: str, namespace: str = "llm", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "planner"},
        },
        "spec": {"replicas": replicas},
    }


def test_prune_refuses_to_delete_every_serving_deployment() -> None:
    live = [deployment("a"), deployment("b")]
    desired = [deployment("a", replicas=0)]  # e.g. rendered from a hand-edited plan
    with pytest.raises(PruneRefused, match="--allow-empty"):
        plan_apply(desired, live, prune=True)
    changes = plan_apply(desired, live, prune=True, allow_empty=True)
    assert [c.ref.name for c in changes.of("prune")] == ["b"]
    # Replacing one serving Deployment by another is an ordinary prune.
    assert plan_apply([deployment("c")], live, prune=True).of("prune")


def test_api_errors_are_one_cluster_error() -> None:
    from kubernetes.client.exceptions import ApiException

    def not_found(**_: Any) -> None:
        raise ApiException(status=404, reason="Not Found")

    def refused(**_: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    assert _call("get x", not_found) is None
    with pytest.raises(ClusterAccessError, match="does the namespace exist"):
        _call("apply x", not_found, missing_ok=False)
    with pytest.raises(ClusterAccessError, match="cannot reach the Kubernetes API server"):
        _call("get x", refused)


def test_evaluate_refuses_an_invalid_allocation_file(tmp_path: Path) -> None:
    allocation = tmp_path / "mine.yaml"
    allocation.write_text(
        "schema_version: 1\nallocations:\n"
        "- {model: Qwen3-32B, gpu_type: H100-SXM-80GB, tensor_parallel: 3, "
        "gpu_fraction: 1.0, replicas: 1}\n"
    )
    args = ["evaluate", str(REPO / "traces"), "--plan", str(SHIPPED_PLAN)]
    result = CliRunner().invoke(app, [*args, "--allocation", str(allocation)])
    assert result.exit_code == 2, result.output
    assert "mine.yaml: invalid plan: " in result.output and "TP 3" in result.output
