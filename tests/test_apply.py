from __future__ import annotations

import copy
from typing import Any

import pytest
from deploy_helpers import make_catalog, make_plan, named_cluster, plan_text

from planner.apply import PRUNABLE_KINDS, SERVING_KINDS, ObjectRef, plan_apply
from planner.io.manifests import to_dict
from planner.place import place
from planner.render.objects import render_manifests
from planner.render.settings import RenderOptions
from planner.types.plan import Allocation

H100 = "H100-SXM-80GB"


def objects(*allocs: Allocation) -> list[dict[str, Any]]:
    plan = make_plan(*allocs)
    cluster, catalog = named_cluster(), make_catalog()
    r = render_manifests(
        place(plan, cluster),
        cluster,
        catalog.models,
        plan_text(plan),
        RenderOptions(replan_traces_claim="traces"),
    )
    return [to_dict(o) for o in r.objects]


def as_live(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns: our fields plus defaults, identity and status."""
    live = copy.deepcopy(obj)
    live["metadata"].update(uid="1234", resourceVersion="99", creationTimestamp="2026-01-01")
    if obj["kind"] == "Deployment":
        live["spec"]["progressDeadlineSeconds"] = 600
        live["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
        live["status"] = {"readyReplicas": obj["spec"]["replicas"]}
    if obj["kind"] == "Service":
        live["spec"]["clusterIP"] = "10.0.0.7"
        live["spec"]["type"] = "ClusterIP"
    return live


def foreign(kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1" if kind == "Deployment" else "v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "llm-serving", "labels": {"app": "other"}},
        "spec": {"replicas": 3},
    }


def names(plan: Any, action: str) -> list[str]:
    return [f"{c.ref.kind}/{c.ref.name}" for c in plan.of(action)]


def test_first_apply_creates_everything() -> None:
    desired = objects(Allocation("llama-3.1-8b", H100, 1, 8, 2))
    result = plan_apply(desired, [], prune=True)
    assert len(result.of("create")) == len(desired)
    assert result.of("prune") == ()
    # The Namespace, then ConfigMap and RBAC before the workloads that use them; CronJob last.
    kinds = [c.ref.kind for c in result.changes]
    assert kinds[:2] == ["Namespace", "ConfigMap"] and kinds[-1] == "CronJob"
    assert kinds.index("RoleBinding") < kinds.index("Deployment")


def test_server_defaults_and_status_are_not_changes() -> None:
    desired = objects(Allocation("llama-3.1-8b", H100, 1, 8, 2))
    result = plan_apply(desired, [as_live(o) for o in desired], prune=True)
    assert result.of("update") == () and result.of("prune") == ()
    assert len(result.of("unchanged")) == len(desired)


def test_replan_scales_up_before_down_and_prunes_only_planner_objects() -> None:
    old = objects(
        Allocation("llama-3.1-8b", H100, 1, 8, 3), Allocation("bge-reranker", H100, 1, 8, 1)
    )
    new = objects(
        Allocation("llama-3.1-8b", H100, 1, 8, 1), Allocation("llama-3.1-70b", H100, 4, 8, 1)
    )
    live = [as_live(o) for o in old] + [foreign("Deployment", "someone-else")]
    result = plan_apply(new, live, prune=True)
    assert names(result, "create") == [
        "Service/llama-3-1-70b",
        "Deployment/llama-3-1-70b-tp4-gpu-node-a",
        "PodDisruptionBudget/llama-3-1-70b-tp4-gpu-node-a",
    ]
    # Prunes in reverse dependency order: the budget before its workload.
    assert names(result, "prune") == [
        "PodDisruptionBudget/bge-reranker-tp1-gpu-node-a",
        "Deployment/bge-reranker-tp1-gpu-node-a",
        "Service/bge-reranker",
    ]
    down = next(
        c
        for c in result.changes
        if c.ref.name == "llama-3-1-8b-tp1-gpu-node-a" and c.ref.kind == "Deployment"
    )
    assert down.action == "update" and down.replicas_delta == -2
    assert "spec.replicas" in down.fields
    order = [c.ref.name for c in result.changes]
    # The new 70B replica comes up before the 8B scales down; prunes come last.
    assert order.index("llama-3-1-70b-tp4-gpu-node-a") < order.index("llama-3-1-8b-tp1-gpu-node-a")
    assert [c.action for c in result.changes[-3:]] == ["prune", "prune", "prune"]
    # Everything labelled for this plan changed hash, so the ConfigMap updates too.
    assert "ConfigMap/planner-plan" in names(result, "update")


def test_without_prune_nothing_is_deleted() -> None:
    old = objects(Allocation("bge-reranker", H100, 1, 8, 1))
    new = objects(Allocation("llama-3.1-8b", H100, 1, 8, 1))
    result = plan_apply(new, [as_live(o) for o in old], prune=False)
    assert result.of("prune") == ()


def test_replan_prunes_serving_kinds_only() -> None:
    old = objects(Allocation("bge-reranker", H100, 1, 8, 1))
    serving_new = [o for o in objects(Allocation("llama-3.1-8b", H100, 1, 8, 1))]
    serving_new = [o for o in serving_new if o["kind"] in SERVING_KINDS]
    result = plan_apply(
        serving_new, [as_live(o) for o in old], prune=True, prune_kinds=SERVING_KINDS
    )
    assert {c.ref.kind for c in result.of("prune")} == {
        "Deployment",
        "PodDisruptionBudget",
        "Service",
    }


def test_object_ref_ignores_api_version() -> None:
    a = ObjectRef.of({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "x"}})
    b = ObjectRef.of({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"}})
    assert a == b
    assert str(a) == "cronjob/x"


class _FakeResources:
    """Stands in for DynamicClient.resources: records list calls, serves known kinds."""

    def __init__(self, served: set[str]) -> None:
        self.served = served
        self.lists: list[tuple[str, str]] = []

    def get(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        if kind not in self.served:
            raise ResourceNotFoundError(f"{api_version}/{kind}")
        outer = self

        class _Resource:
            def get(self, name: str = "", namespace: str = "", label_selector: str = "") -> None:
                if label_selector:
                    outer.lists.append((kind, namespace))

        return _Resource()


def test_live_listing_stays_in_the_plan_namespace_with_a_namespace_object() -> None:
    from types import SimpleNamespace

    from planner.io.kube import live_objects

    desired = objects(Allocation("llama-3.1-8b", H100, 1, 8, 1))
    assert any(o["kind"] == "Namespace" for o in desired)
    resources = _FakeResources({o["kind"] for o in desired})
    live_objects(SimpleNamespace(resources=resources), desired, PRUNABLE_KINDS)
    # An empty namespace would list every namespace and prune beyond the plan's.
    assert resources.lists and {ns for _, ns in resources.lists} == {"llm-serving"}


def test_a_kind_the_server_lacks_is_one_error_line() -> None:
    from types import SimpleNamespace

    from planner.io.kube import ClusterAccessError, live_objects

    desired = [{"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                "metadata": {"name": "x", "namespace": "llm-serving"}}]  # fmt: skip
    with pytest.raises(ClusterAccessError) as exc:
        live_objects(SimpleNamespace(resources=_FakeResources(set())), desired)
    assert "does not serve LeaderWorkerSet" in str(exc.value) and "\n" not in str(exc.value)
