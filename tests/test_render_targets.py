"""Output stacks (LeaderWorkerSet, KServe), inference routing, autoscaler bounds, pod
hardening and the re-planning CronJob, read as a cluster would run them."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from deploy_helpers import (
    H100,
    make_catalog,
    make_plan,
    mixed_plan,
    named_cluster,
    plan_text,
    validate_object,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog
from planner.errors import InputError
from planner.io.manifests import to_dict
from planner.io.render_settings import parse_settings, settings_yaml
from planner.place import place
from planner.render.common import DEPLOYMENT_LABEL, SERVES_PREFIX
from planner.render.control import RESOURCES, replan_args
from planner.render.gateway import MODEL_HEADER
from planner.render.objects import Rendered, render_manifests
from planner.render.settings import RenderOptions, ReplanInputs
from planner.types.plan import Allocation

WITH_CRON = {"replan_traces_claim": "planner-traces", "hf_token_secret": "hf-token"}


def render(
    catalog: Catalog | None = None, replan: ReplanInputs | None = None, **kw: Any
) -> Rendered:
    plan, cluster = mixed_plan(), named_cluster()
    catalog = catalog or make_catalog()
    return render_manifests(
        place(plan, cluster),
        cluster,
        catalog.models,
        plan_text(plan),
        RenderOptions(**kw),
        catalog.gpus,
        replan=replan,
    )


def objs(r: Rendered) -> list[dict[str, Any]]:
    return [to_dict(o) for o in r.objects]


def of_kind(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in items if o["kind"] == kind]


def serving_pods(items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(workload name, pod template) of every vLLM pod template, whatever the target."""
    out = []
    for o in items:
        spec = o.get("spec", {})
        if o["kind"] == "Deployment" and "vllm" in str(spec["template"]["metadata"]["labels"]):
            out.append((o["metadata"]["name"], spec["template"]))
        elif o["kind"] == "LeaderWorkerSet":
            t = spec["leaderWorkerTemplate"]
            out.append((o["metadata"]["name"], t.get("leaderTemplate") or t["workerTemplate"]))
        elif o["kind"] == "LLMInferenceService":
            meta = {"labels": spec["labels"], "annotations": spec["annotations"]}
            out.append((o["metadata"]["name"], {"metadata": meta, "spec": spec["template"]}))
    return out


# --- every target, every object valid --------------------------------------------------


@pytest.mark.parametrize("target", ["deployments", "lws", "kserve"])
@pytest.mark.parametrize("sharing", ["process", "hami"])
def test_every_target_validates_against_kubernetes_and_crd_schemas(
    target: str, sharing: str
) -> None:
    autoscaler = "keda" if target == "kserve" else "hpa"
    r = render(target=target, sharing=sharing, gateway=True, autoscaler=autoscaler, **WITH_CRON)
    kinds = set()
    for obj in objs(r):
        validate_object(obj)
        kinds.add(obj["kind"])
    workload = {"deployments": "Deployment", "lws": "LeaderWorkerSet"}.get(
        target, "LLMInferenceService"
    )
    assert {workload, "InferencePool", "HTTPRoute", "CronJob", "Namespace"} <= kinds


def test_lws_target_runs_each_group_as_a_set_of_size_one() -> None:
    items = objs(render(target="lws"))
    sets = of_kind(items, "LeaderWorkerSet")
    assert len(sets) == 4 and not [d for d in of_kind(items, "Deployment")]
    big = next(s for s in sets if s["metadata"]["name"] == "llama-3-1-70b-tp4-gpu-node-a")
    assert big["spec"]["replicas"] == 2
    template = big["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 1 and "leaderTemplate" not in template
    (c,) = template["workerTemplate"]["spec"]["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "4"


def test_kserve_target_one_service_per_group_shared_gpus_stay_deployments() -> None:
    items = objs(render(target="kserve"))
    services = {s["metadata"]["name"]: s for s in of_kind(items, "LLMInferenceService")}
    assert sorted(services) == [
        "bge-reranker-tp1-l40s-0",
        "llama-3-1-70b-tp4-gpu-node-a",
        "llama-3-1-8b-tp1-gpu-node-b",
    ]
    big = services["llama-3-1-70b-tp4-gpu-node-a"]["spec"]
    assert big["model"] == {"uri": "hf://meta-llama/Llama-3.1-70B-Instruct", "name": "llama-70b"}
    assert big["parallelism"] == {"tensor": 4} and big["replicas"] == 2
    assert big["template"]["containers"][0]["name"] == "main"
    # The pod with two models on one GPU cannot be one LLMInferenceService.
    (shared,) = [d for d in of_kind(items, "Deployment") if d["metadata"]["name"].startswith("sh")]
    assert shared["metadata"]["name"] == "shared-gpu-node-b-gpu1"


def test_kserve_scaling_and_replicas_are_exclusive_and_bounded() -> None:
    for autoscaler in ("none", "keda"):
        for svc in of_kind(
            objs(render(target="kserve", autoscaler=autoscaler)), "LLMInferenceService"
        ):
            spec = svc["spec"]
            # The CRD's CEL rules, which a JSON-schema validator does not run.
            assert ("replicas" in spec) != ("scaling" in spec)
            if "scaling" in spec:
                s = spec["scaling"]
                assert "keda" in s and len(s["keda"]["triggers"]) >= 1
                assert s["minReplicas"] <= s["maxReplicas"]
    with pytest.raises(InputError, match="no scale subresource"):
        render(target="kserve", autoscaler="hpa")


# --- gateway -------------------------------------------------------------------------


def test_inference_pools_select_exactly_the_model_servers_on_their_port() -> None:
    for target in ("deployments", "lws", "kserve"):
        items = objs(render(target=target, gateway=True, gateway_name="edge"))
        pods = serving_pods(items)
        pools = of_kind(items, "InferencePool")
        assert len(pools) == 3
        for pool in pools:
            match = pool["spec"]["selector"]["matchLabels"]
            (port,) = pool["spec"]["targetPorts"]
            picked = [
                (name, p)
                for name, p in pods
                if all(p["metadata"]["labels"].get(k) == v for k, v in match.items())
            ]
            assert picked, pool["metadata"]["name"]
            model = next(iter(match))[len(SERVES_PREFIX) :]
            for name, p in picked:
                ports = {cp["containerPort"] for cp in p["spec"]["containers"][0]["ports"]}
                assert port["number"] in ports, (name, model)
            # Its picker exists and is reachable on the referenced port.
            ref = pool["spec"]["endpointPickerRef"]
            (svc,) = [s for s in of_kind(items, "Service") if s["metadata"]["name"] == ref["name"]]
            assert svc["spec"]["ports"][0]["port"] == ref["port"]["number"]
        for route in of_kind(items, "HTTPRoute"):
            (parent,) = route["spec"]["parentRefs"]
            assert parent["name"] == "edge"
            (rule,) = route["spec"]["rules"]
            (backend,) = rule["backendRefs"]
            assert backend["kind"] == "InferencePool"
            assert backend["name"] in {p["metadata"]["name"] for p in pools}
            (header,) = rule["matches"][0]["headers"]
            assert header["name"] == MODEL_HEADER


def test_prefix_scorer_is_switched_by_the_setting() -> None:
    for on in (False, True):
        items = objs(render(gateway=True, prefix_routing=on))
        (config,) = [
            c for c in of_kind(items, "ConfigMap") if c["metadata"]["name"] == "planner-epp"
        ]
        doc = yaml.safe_load(config["data"]["epp.yaml"])
        types = [p["type"] for p in doc["plugins"]]
        assert types[:2] == ["queue-scorer", "kv-cache-utilization-scorer"]
        assert ("prefix-cache-scorer" in types) is on
        refs = {p["pluginRef"] for p in doc["schedulingProfiles"][0]["plugins"]}
        assert refs == set(types)


# --- autoscaler bounds ----------------------------------------------------------------


@pytest.mark.parametrize("autoscaler", ["hpa", "keda"])
def test_autoscaler_min_is_planned_and_max_fits_the_free_gpus(autoscaler: str) -> None:
    # By hand for mixed_plan on named_cluster: node-a's 8 GPUs hold 2 x TP4 (none free);
    # node-b holds one whole-GPU 8B and one shared GPU (6 free, pods pinned to node-b);
    # the L40S pool (4 GPUs, pinned by pool label) holds 2 rerankers (2 free).
    expected = {
        "llama-3-1-70b-tp4-gpu-node-a": (2, 2),
        "llama-3-1-8b-tp1-gpu-node-b": (1, 7),
        "shared-gpu-node-b-gpu1": (1, 7),
        "bge-reranker-tp1-l40s-0": (2, 4),
    }
    items = objs(render(autoscaler=autoscaler))
    workloads = {d["metadata"]["name"]: d for d in of_kind(items, "Deployment")}
    kind = "HorizontalPodAutoscaler" if autoscaler == "hpa" else "ScaledObject"
    got = {}
    for s in of_kind(items, kind):
        spec = s["spec"]
        name = spec["scaleTargetRef"]["name"]
        assert "replicas" not in workloads[name]["spec"]  # the autoscaler owns the count
        if autoscaler == "hpa":
            got[name] = (spec["minReplicas"], spec["maxReplicas"])
            (metric,) = spec["metrics"]
            assert metric["pods"]["metric"]["name"] == "vllm:num_requests_waiting"
        else:
            got[name] = (spec["minReplicaCount"], spec["maxReplicaCount"])
    assert got == expected
    # Without an autoscaler the planned count is the workload's.
    plain = {
        d["metadata"]["name"]: d["spec"]["replicas"] for d in of_kind(objs(render()), "Deployment")
    }
    assert plain == {k: v[0] for k, v in expected.items()}


def test_keda_query_names_only_the_groups_pods() -> None:
    import re

    items = objs(render(autoscaler="keda"))
    names = [d["metadata"]["name"] for d in of_kind(items, "Deployment")]
    for so in of_kind(items, "ScaledObject"):
        query = so["spec"]["triggers"][0]["metadata"]["query"]
        pattern = re.search(r'pod=~"([^"]+)"', query).group(1)  # type: ignore[union-attr]
        target = so["spec"]["scaleTargetRef"]["name"]
        for other in names:
            pod = f"{other}-7c9d8f6b5d-x2x4q"
            assert bool(re.fullmatch(pattern, pod)) == (other == target)


# --- hardening ------------------------------------------------------------------------


def gated_catalog() -> Catalog:
    c = make_catalog()
    models = dict(c.models)
    models["llama-3.1-70b"] = dataclasses.replace(models["llama-3.1-70b"], gated=True)
    return Catalog(models, c.gpus)


def test_gated_model_needs_a_token_secret_at_render_time() -> None:
    with pytest.raises(InputError) as exc:
        render(catalog=gated_catalog(), hf_token_secret="")
    assert "llama-3.1-70b: gated" in str(exc.value) and "\n" not in str(exc.value)
    items = objs(render(catalog=gated_catalog(), hf_token_secret="hf"))
    for name, pod in serving_pods(items):
        (env,) = [e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "HF_TOKEN"]
        ref = env["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "hf" and ref["optional"] is ("llama-3-1-70b" not in name)


def test_vllm_pods_memory_shm_cache_tolerations_and_api_key() -> None:
    items = objs(render(model_cache_claim="hf-cache", api_key_secret="keys"))
    for _, pod in serving_pods(items):
        spec = pod["spec"]
        (c,) = spec["containers"]
        limits, requests = c["resources"]["limits"], c["resources"]["requests"]
        gpus = int(limits["nvidia.com/gpu"])
        assert limits["memory"] == requests["memory"] == f"{34 * gpus}Gi"
        vols = {v["name"]: v for v in spec["volumes"]}
        assert vols["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": f"{2 * gpus}Gi"}
        assert vols["cache"]["persistentVolumeClaim"] == {"claimName": "hf-cache"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
            "tolerations"
        ]
        (key,) = [e for e in c["env"] if e["name"] == "VLLM_API_KEY"]
        assert key["valueFrom"]["secretKeyRef"] == {"name": "keys", "key": "api-key"}
    host = objs(render(model_cache_host_path="/var/lib/hf"))
    for _, pod in serving_pods(host):
        vols = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert vols["cache"]["hostPath"]["path"] == "/var/lib/hf"
    with pytest.raises(InputError, match="not both"):
        render(model_cache_claim="a", model_cache_host_path="/b")


def test_one_disruption_budget_per_group_and_no_pod_under_two() -> None:
    items = objs(render())
    pdbs = of_kind(items, "PodDisruptionBudget")
    pods = serving_pods(items)
    assert len(pdbs) == len(pods)
    for _, pod in pods:
        labels = pod["metadata"]["labels"]
        matching = [
            b
            for b in pdbs
            if all(labels.get(k) == v for k, v in b["spec"]["selector"]["matchLabels"].items())
        ]
        assert len(matching) == 1 and matching[0]["spec"]["maxUnavailable"] == 1


def test_network_policy_and_namespace_opt_out() -> None:
    items = objs(render(network_policy=True, gateway=True, gateway_namespace="gw"))
    (policy,) = of_kind(items, "NetworkPolicy")
    sources = policy["spec"]["ingress"][0]["from"]
    assert {"podSelector": {}} in sources
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gw"}}} in sources
    (ns,) = of_kind(items, "Namespace")
    assert ns["metadata"]["name"] == "llm-serving" and "namespace" not in ns["metadata"]
    assert not of_kind(objs(render(create_namespace=False)), "Namespace")


# --- the re-planning CronJob -----------------------------------------------------------


def cron_pod(items: list[dict[str, Any]]) -> dict[str, Any]:
    (cron,) = of_kind(items, "CronJob")
    pod: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def parse_replan(args: list[str]) -> dict[str, Any]:
    """Parse the container's arguments with the real `planner` CLI, as the pod would."""
    from planner.cli import app

    command = typer.main.get_command(app)
    assert args[0] == "replan"
    sub = command.commands["replan"]  # type: ignore[attr-defined]
    ctx = sub.make_context("replan", list(args[1:]))
    return dict(ctx.params)


def test_no_cronjob_without_a_traces_source() -> None:
    items = objs(render())
    assert not of_kind(items, "CronJob") and not of_kind(items, "Role")


def test_cronjob_reads_traces_from_the_claim_and_mapping_from_a_configmap() -> None:
    from planner.jobs.requests import PlanRequest, replan_flags
    from planner.types.settings import SolveSettings, WorkloadTargets

    request = PlanRequest(
        Path("traces"),
        targets=WorkloadTargets(
            headroom=1.5, target_rate_per_s={"coding": 2.0, "rag": 0.5}, slo_s={"rag": (8.0, "p95")}
        ),
        solve=SolveSettings(objective="min-gpus", latency_tolerance=0.05),
    )
    replan = ReplanInputs(replan_flags(request), "schema_version: 1\ncolumns: {}\n")
    items = objs(render(replan=replan, **WITH_CRON))
    pod = cron_pod(items)
    (c,) = pod["containers"]
    params = parse_replan(c["args"])
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert params["traces"] == "/traces" and mounts["/traces"] == "traces"
    assert volumes["traces"]["persistentVolumeClaim"]["claimName"] == "planner-traces"
    mapping = str(params["mapping"])
    directory, _, key = mapping.rpartition("/")
    config = volumes[mounts[directory]]["configMap"]["name"]
    (cm,) = [m for m in of_kind(items, "ConfigMap") if m["metadata"]["name"] == config]
    assert cm["data"][key] == replan.mapping_text
    assert params["objective"] == "min-gpus" and params["headroom"] == 1.5
    assert params["target_rate"] == ["coding=2", "rag=0.5"] and params["slo"] == ["rag=8:p95"]
    # The request the CronJob plans toward is the one the plan answered.
    from planner.cli.flags import solve_settings, targets

    assert (
        targets(params["target_rate"], params["headroom"], params["slo"], params["utilisation_cap"])
        == request.targets
    )
    assert (
        solve_settings(
            params["objective"],
            params["time_limit"],
            params["workers"],
            params["latency_tolerance"],
        )
        == request.solve
    )
    assert params["namespace"] == "llm-serving"
    assert str(params["profiles"]) == "/app/profiles"
    assert c["image"].startswith("planner:") and c["image"] == RenderOptions().planner_image


def test_cronjob_from_object_store_needs_and_uses_a_credentials_secret() -> None:
    with pytest.raises(InputError, match="--replan-credentials-secret"):
        render(replan_traces_url="s3://bucket/traces")
    with pytest.raises(InputError, match="object-store URL"):
        render(replan_traces_url="/data", replan_credentials_secret="s3")
    items = objs(render(replan_traces_url="s3://bucket/traces", replan_credentials_secret="s3"))
    (c,) = cron_pod(items)["containers"]
    assert parse_replan(c["args"])["traces"] == "s3://bucket/traces"
    assert c["envFrom"] == [{"secretRef": {"name": "s3"}}]
    assert "/traces" not in {m["mountPath"] for m in c["volumeMounts"]}


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"target": "lws", "autoscaler": "keda", "gateway": True},
        {"target": "kserve", "autoscaler": "keda", "gateway": True},
        {"autoscaler": "hpa"},
    ],
)
def test_replan_role_covers_exactly_what_replan_applies(settings: dict[str, Any]) -> None:
    r = render(**WITH_CRON, **settings)
    (role,) = [
        o for o in objs(r) if o["kind"] == "Role" and o["metadata"]["name"] == "planner-replan"
    ]
    granted = {
        (g, res) for rule in role["rules"] for g in rule["apiGroups"] for res in rule["resources"]
    }
    needed = {("", "configmaps")}
    for kind in {to_dict(o)["kind"] for o in r.serving} - {"ConfigMap"}:
        api, plural = RESOURCES[kind]
        needed.add((api.rpartition("/")[0], plural))
    assert granted == needed
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "escalate" not in rule["verbs"]
        assert not {"roles", "rolebindings", "cronjobs", "secrets"} & set(rule["resources"])


def test_plan_job_renders_the_cronjob_from_its_request(tmp_path: Path) -> None:
    """`planner plan`'s job: the CronJob's arguments are the request's."""
    from planner.jobs.deploying import plan_and_deploy
    from planner.jobs.requests import ClusterSpec, PlanRequest
    from planner.types.settings import SolveSettings, WorkloadTargets

    repo = Path(__file__).resolve().parents[1]
    request = PlanRequest(
        repo / "traces",
        ClusterSpec(16),
        targets=WorkloadTargets(headroom=1.2),
        solve=SolveSettings(objective="max-throughput", time_limit_s=10),
    )
    settings = RenderOptions(replan_traces_claim="t", hf_token_secret="hf-token")
    outcome = plan_and_deploy(request, settings, tmp_path / "out")
    (c,) = cron_pod(objs(outcome.deployment.rendered))["containers"]
    params = parse_replan(c["args"])
    assert params["objective"] == "max-throughput" and params["headroom"] == 1.2
    assert params["mapping"] is None
    assert (
        replan_args(ReplanInputs(("--objective=min-gpus",)), settings)[-1] == "--objective=min-gpus"
    )


def test_render_settings_round_trip_through_the_plan_configmap() -> None:
    options = RenderOptions(target="lws", gateway=True, autoscaler="keda", hf_token_secret="x")
    r = render(**dataclasses.asdict(options))
    assert parse_settings(settings_yaml(options), "render.yaml") == options
    # The stack is stored beside the plan so `planner replan` renders the same way.
    assert settings_yaml(options) == settings_yaml(parse_settings(settings_yaml(options), "x"))
    assert r.serving[0].kind == "ConfigMap"  # type: ignore[attr-defined]


def test_shared_gpu_pod_is_ready_only_when_every_server_is() -> None:
    plan = make_plan(
        Allocation("llama-3.1-8b", H100, 1, 4, 1), Allocation("bge-reranker", H100, 1, 2, 1)
    )
    cluster, catalog = named_cluster(), make_catalog()
    r = render_manifests(
        place(plan, cluster), cluster, catalog.models, plan_text(plan), RenderOptions()
    )
    (dep,) = of_kind(objs(r), "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    ports = [p["containerPort"] for p in c["ports"]]
    check = c["readinessProbe"]["exec"]["command"][2]
    assert all(str(p) in check for p in ports) and len(ports) == 2
    per_group: dict[str, int] = defaultdict(int)
    for o in objs(r):
        per_group[o["kind"]] += 1
    assert per_group["PodDisruptionBudget"] == 1
    assert dep["spec"]["selector"]["matchLabels"] == {DEPLOYMENT_LABEL: dep["metadata"]["name"]}


# --- random plans on unseen clusters, every stack ---------------------------------------


@settings(max_examples=20, deadline=None)
@given(
    allocs=st.lists(
        st.builds(
            Allocation,
            model=st.sampled_from(["llama-3.1-70b", "llama-3.1-8b", "bge-reranker"]),
            gpu_type=st.just(H100),
            tp=st.sampled_from([1, 2, 4, 8]),
            share_eighths=st.sampled_from([8, 4, 2, 1]),
            replicas=st.integers(1, 3),
            pp=st.sampled_from([1, 1, 2]),
        ),
        min_size=1,
        max_size=4,
    ),
    nodes=st.integers(1, 4),
    named=st.booleans(),
    target=st.sampled_from(["deployments", "lws", "kserve"]),
    sharing=st.sampled_from(["process", "hami"]),
    autoscaler=st.sampled_from(["none", "hpa", "keda"]),
    gateway=st.booleans(),
)
def test_property_every_stack_renders_valid_objects(
    allocs: list[Allocation],
    nodes: int,
    named: bool,
    target: str,
    sharing: str,
    autoscaler: str,
    gateway: bool,
) -> None:
    from hypothesis import assume

    from planner.place import PlacementError
    from planner.types.cluster import Cluster, NodePool

    # Valid shapes only: shares with TP 1, pipelines of whole GPUs.
    unique = {
        a.shape: a
        for a in allocs
        if (a.tp == 1 or a.share_eighths == 8) and (a.pp == 1 or a.share_eighths == 8)
    }
    assume(unique and not (target == "kserve" and autoscaler == "hpa"))
    names = tuple(f"node-{i}" for i in range(nodes)) if named else ()
    cluster = Cluster((NodePool("p", H100, nodes, 8, 8, node_names=names),))
    plan = make_plan(*unique.values())
    try:
        placement = place(plan, cluster)
    except PlacementError:
        return
    catalog = make_catalog()
    r = render_manifests(
        placement,
        cluster,
        catalog.models,
        plan_text(plan),
        RenderOptions(
            target=target,  # type: ignore[arg-type]
            sharing=sharing,  # type: ignore[arg-type]
            autoscaler=autoscaler,  # type: ignore[arg-type]
            gateway=gateway,
            replan_traces_claim="t",
        ),
    )
    items = objs(r)
    for obj in items:
        validate_object(obj)
    for s in of_kind(items, "HorizontalPodAutoscaler"):
        assert 1 <= s["spec"]["minReplicas"] <= s["spec"]["maxReplicas"]
    for s in of_kind(items, "ScaledObject"):
        assert 1 <= s["spec"]["minReplicaCount"] <= s["spec"]["maxReplicaCount"]
    pods = serving_pods(items)
    for pool in of_kind(items, "InferencePool"):
        match = pool["spec"]["selector"]["matchLabels"]
        assert any(
            all(p["metadata"]["labels"].get(k) == v for k, v in match.items()) for _, p in pods
        )
    # Every replica spanning nodes is a group of pp pods, whatever the target.
    for a in unique.values():
        if a.pp > 1 and target != "kserve":
            sets = [
                o
                for o in of_kind(items, "LeaderWorkerSet")
                if o["spec"]["leaderWorkerTemplate"]["size"] == a.pp
            ]
            assert sets
