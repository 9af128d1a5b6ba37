"""`planner replan` without the API server: the stored ConfigMap in, the step out."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.apply import SERVING_KINDS, plan_apply
from planner.io.manifests import to_dict
from planner.jobs.clusters import ResolvedCluster
from planner.jobs.deploying import deploy_plan
from planner.jobs.planning import plan_job
from planner.jobs.replanning import replan_step
from planner.jobs.requests import PlanRequest
from planner.render.control import CLUSTER_KEY, PLAN_KEY
from planner.render.settings import RenderOptions
from planner.replan import ReplanPolicy
from planner.types.cluster import uniform_cluster
from planner.types.settings import SolveSettings


def request(traces: Path, window_s: float | None = None) -> PlanRequest:
    # Without prefix caching the shipped traces load 16 GPUs enough that one replica
    # fewer overloads the busiest model (the scale-up scenario below); with it, the
    # cached prefill leaves that replica spare.
    return PlanRequest(
        traces,
        solve=SolveSettings(time_limit_s=10, num_workers=1),
        window_s=window_s,
        prefix_caching=False,
    )


RENDER = RenderOptions(hf_token_secret="hf-token")  # the shipped traces use gated Llama models


@pytest.fixture(scope="module")
def deployed(repo: Path) -> tuple[dict[str, str], list[dict[str, object]]]:
    """What `planner plan --gpus 16 -o DIR` stores in the ConfigMap for the shipped traces."""
    cluster = uniform_cluster(16, "H100-SXM-80GB", 8)
    result = plan_job(request(repo / "traces"), ResolvedCluster(cluster))
    dep = deploy_plan(result.plan, cluster, result.catalog, RENDER)
    objects = [to_dict(o) for o in dep.rendered.serving]
    data = objects[0]["data"]
    assert isinstance(data, dict)
    return dict(data), objects


def test_same_traffic_keeps_the_running_plan(repo: Path, deployed: tuple) -> None:  # type: ignore[type-arg]
    stored, _ = deployed
    out = replan_step(stored, request(repo / "traces"), ReplanPolicy(), RENDER)
    assert not out.decision.apply and out.deployment is None
    assert out.decision.log_line().startswith(
        "replan: keep: the current plan sustains the load and the new one is only 0.0% better"
    )


def test_undersized_running_plan_is_scaled_up_first_and_capped(
    repo: Path,
    deployed: tuple,  # type: ignore[type-arg]
) -> None:
    import yaml

    stored, live_objects = deployed
    doc = yaml.safe_load(stored[PLAN_KEY])
    # Pretend the busiest model runs one replica fewer than planned.
    busiest = max(doc["allocations"], key=lambda a: a["replicas"])
    busiest["replicas"] -= 1
    shrunk = {**stored, PLAN_KEY: yaml.safe_dump(doc, sort_keys=False)}
    # Default render flags (no token Secret, which the gated models need): the settings
    # stored beside the plan (render.yaml) are the ones the step is rendered with.
    out = replan_step(
        shrunk, request(repo / "traces"), ReplanPolicy(max_replica_changes=1), RenderOptions()
    )
    d = out.decision
    assert d.apply, d.log_line()
    assert [c.after - c.before for c in d.scale_up] == [1] and d.scale_down == ()
    assert out.deployment is not None
    assert CLUSTER_KEY in to_dict(out.deployment.rendered.serving[0])["data"]
    # Against the objects of the full plan, the step changes labels only: no Deployment
    # is created, pruned or resized (the running plan already equals the step).
    desired = [to_dict(o) for o in out.deployment.rendered.serving]
    changes = plan_apply(desired, live_objects, prune=True, prune_kinds=SERVING_KINDS)
    assert changes.of("create") == () and changes.of("prune") == ()
    assert all(c.replicas_delta == 0 for c in changes.changes)


def test_window_limits_the_traffic(repo: Path, deployed: tuple) -> None:  # type: ignore[type-arg]
    stored, _ = deployed
    out = replan_step(stored, request(repo / "traces", 3600.0), ReplanPolicy(), RENDER)
    assert "replan:" in out.decision.log_line()
