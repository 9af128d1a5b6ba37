"""`planner replan` without the API server: the stored ConfigMap in, the step out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from planner.apply import SERVING_KINDS, plan_apply
from planner.cli.deploy_options import deploy_plan
from planner.cli.plan import PlanningOptions, run_planning
from planner.cli.replan import replan_step
from planner.io.manifests import to_dict
from planner.render import CLUSTER_KEY, PLAN_KEY, RenderOptions
from planner.replan import ReplanPolicy
from planner.types.cluster import uniform_cluster

OPTS = PlanningOptions(time_limit_s=10, num_workers=1)


@pytest.fixture(scope="module")
def deployed(repo: Path) -> tuple[dict[str, str], list[dict[str, object]]]:
    """What `planner plan --gpus 16 -o DIR` stores in the ConfigMap for the shipped traces."""
    cluster = uniform_cluster(16, "H100-SXM-80GB", 8)
    result = run_planning(repo / "traces", cluster, OPTS)
    dep = deploy_plan(result.plan, cluster, result.catalog, RenderOptions())
    objects = [to_dict(o) for o in dep.rendered.serving]
    data = objects[0]["data"]
    assert isinstance(data, dict)
    return dict(data), objects


def test_same_traffic_keeps_the_running_plan(repo: Path, deployed: tuple) -> None:  # type: ignore[type-arg]
    stored, _ = deployed
    out = replan_step(stored, repo / "traces", OPTS, ReplanPolicy(), RenderOptions())
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
    out = replan_step(
        shrunk, repo / "traces", OPTS, ReplanPolicy(max_replica_changes=1), RenderOptions()
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
    out = replan_step(
        stored, repo / "traces", replace(OPTS, window_s=3600.0), ReplanPolicy(), RenderOptions()
    )
    assert "replan:" in out.decision.log_line()
