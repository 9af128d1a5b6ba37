"""The re-planning job (the CronJob's entry): plan on the recent window, compare with
what runs, and apply the chosen step.

`replan_step` holds everything except the cluster I/O, so it is tested without an API
server; `replan_job` reads the plan ConfigMap, fetches the traces and applies.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from planner.apply import ApplyPlan
from planner.jobs.clusters import ResolvedCluster
from planner.jobs.deploying import Deployment, deploy_plan
from planner.jobs.requests import PlanRequest
from planner.render.settings import RenderOptions
from planner.replan import ReplanDecision, ReplanPolicy


@dataclass(frozen=True)
class ReplanOutcome:
    decision: ReplanDecision
    deployment: Deployment | None  # what to apply; None when keeping the running plan


@dataclass(frozen=True)
class ReplanResult:
    outcome: ReplanOutcome
    changes: ApplyPlan | None  # the server-side apply that ran (None: nothing to apply)


def replan_step(
    stored: Mapping[str, str],
    request: PlanRequest,
    policy: ReplanPolicy,
    render: RenderOptions,
    explicit_objective: bool = False,
) -> ReplanOutcome:
    """Plan on the traces, compare with the stored plan, and render the step to apply.

    Args:
        stored: the plan ConfigMap's data (`plan.yaml`, `cluster.yaml`).
        request: the planning request (local traces, window, targets, solver settings);
            its cluster is the stored one.
        policy: margin, per-run cap, utilisation threshold.
        render: render settings, used when the ConfigMap holds none (`render.yaml`).
        explicit_objective: keep the request's objective; else use the running plan's.

    Raises:
        InputError: the ConfigMap lacks its cluster or plan.
    """
    import yaml

    from planner.errors import InputError
    from planner.io.cluster_file import parse_cluster
    from planner.io.plan_file import parse_plan
    from planner.io.render_settings import parse_settings
    from planner.jobs.planning import plan_job, research_without
    from planner.render.control import CLUSTER_KEY, PLAN_KEY, SETTINGS_KEY
    from planner.replan import decide_replan
    from planner.search.predict import make_plan
    from planner.search.validate import validate_plan

    if CLUSTER_KEY not in stored or PLAN_KEY not in stored:
        raise InputError(
            f"the plan ConfigMap lacks {CLUSTER_KEY} or {PLAN_KEY}; "
            "apply manifests written by `planner plan -o DIR` first"
        )
    cluster = parse_cluster(yaml.safe_load(stored[CLUSTER_KEY]), f"ConfigMap {CLUSTER_KEY}")
    if SETTINGS_KEY in stored:  # render the step for the stack the user applied
        render = parse_settings(stored[SETTINGS_KEY], f"ConfigMap {SETTINGS_KEY}")
    text = stored[PLAN_KEY]
    running = parse_plan(text, f"ConfigMap {PLAN_KEY}") if text.strip() else None
    if running is not None and not explicit_objective:
        request = replace(request, solve=replace(request.solve, objective=running.objective))
    result = plan_job(request, ResolvedCluster(cluster))
    current = None
    if running is not None:
        where = f"ConfigMap {PLAN_KEY}"
        validate_plan(running, result.catalog, cluster, where, min_replicas=0)
        # The running allocations, predicted on the same window as the proposal.
        current = make_plan(result.problem, running.allocations, running.objective, running.solver)
    decision = decide_replan(current, result.plan, cluster.gpus_by_type(), policy)
    if not decision.apply:
        return ReplanOutcome(decision, None)
    step = result.plan
    if not decision.complete:
        note = f"replan step: {decision.deferred_changes} replica change(s) deferred"
        step = make_plan(result.problem, decision.allocations, step.objective, step.solver, (note,))
        step = replace(step, inputs_digest=result.plan.inputs_digest)
    research = research_without(result.problem, request.solve) if decision.complete else None
    return ReplanOutcome(decision, deploy_plan(step, cluster, result.catalog, render, research))


def replan_job(
    traces: str,
    request: PlanRequest,
    policy: ReplanPolicy,
    render: RenderOptions,
    explicit_objective: bool = False,
    dry_run: bool = False,
) -> ReplanResult:
    """Read the running plan from the cluster, re-plan on `traces` (a path or an
    object-store URL) and server-side apply the step (scale-ups first, capped).

    Raises:
        ClusterAccessError: the API server cannot be reached or refuses.
        the errors of `replan_step`.
    """
    from planner.apply import SERVING_KINDS, plan_apply
    from planner.io.kube import connect, execute, live_objects, read_configmap
    from planner.io.manifests import to_dict
    from planner.io.remote import fetch_traces
    from planner.render.common import PLAN_CONFIGMAP

    client = connect()
    stored = read_configmap(client, render.namespace, PLAN_CONFIGMAP) or {}
    with tempfile.TemporaryDirectory() as scratch:
        local = fetch_traces(traces, Path(scratch))
        outcome = replan_step(
            stored, replace(request, traces=local), policy, render, explicit_objective
        )
    if outcome.deployment is None:
        return ReplanResult(outcome, None)
    desired = [to_dict(o) for o in outcome.deployment.rendered.serving]
    live = live_objects(client, desired, SERVING_KINDS)
    changes = plan_apply(desired, live, prune=True, prune_kinds=SERVING_KINDS)
    execute(client, changes, desired, dry_run=dry_run)
    return ReplanResult(outcome, changes)
