from __future__ import annotations

import os
import shlex
from collections import defaultdict
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import (
    make_catalog,
    mixed_plan,
    named_cluster,
    plan_text,
    validate_k8s,
    validate_object,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planner.errors import ProfileError
from planner.io.manifests import dump_yaml, manifest_files, read_manifests, to_dict, write_manifests
from planner.place import place
from planner.render.common import MANAGED_BY, PLAN_HASH, SERVES_PREFIX
from planner.render.objects import Rendered, render_manifests
from planner.render.settings import RenderOptions
from planner.types.plan import Allocation

K8S_VERSION = "1.33"  # a current release the kubernetes-validate package ships schemas for
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PLANNER_UPDATE_GOLDEN") == "1"


def rendered(sharing: str = "process", **kw: Any) -> Rendered:
    plan, cluster, catalog = mixed_plan(), named_cluster(), make_catalog()
    return render_manifests(
        place(plan, cluster),
        cluster,
        catalog.models,
        plan_text(plan),
        RenderOptions(sharing=sharing, **kw),  # type: ignore[arg-type]
        catalog.gpus,
    )


def dicts(r: Rendered) -> list[dict[str, Any]]:
    return [to_dict(o) for o in r.objects]


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def container(dep: dict[str, Any]) -> dict[str, Any]:
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def serve_commands(dep: dict[str, Any]) -> list[list[str]]:
    """The `vllm serve` argument lists a Deployment's container runs, in start order."""
    c = container(dep)
    if c["command"][0] == "vllm":
        return [c["command"]]
    script = c["command"][2]
    return [shlex.split(line[:-2]) for line in script.splitlines() if line.startswith("vllm ")]


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.mark.parametrize("sharing", ["process", "hami"])
def test_every_object_validates_against_the_kubernetes_schema(sharing: str) -> None:
    for obj in dicts(rendered(sharing)):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("sharing", ["process", "hami"])
def test_gpu_requests_per_node_within_capacity(sharing: str) -> None:
    cluster = named_cluster()
    capacity = {n: p.gpus_per_node for p in cluster.pools for n in p.names()}
    pool_capacity = {p.name: p.gpus for p in cluster.pools}
    per_node: dict[str, int] = defaultdict(int)
    per_pool: dict[str, int] = defaultdict(int)
    for dep in of_kind(dicts(rendered(sharing)), "Deployment"):
        gpus = int(container(dep)["resources"]["limits"]["nvidia.com/gpu"])
        term = dep["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
        (expr,) = term["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
            "matchExpressions"
        ]
        if expr["key"] == "kubernetes.io/hostname":
            per_node[expr["values"][0]] += gpus * dep["spec"]["replicas"]
        else:
            assert expr == {"key": "pool", "operator": "In", "values": ["l40s"]}
            per_pool["l40s"] += gpus * dep["spec"]["replicas"]
    assert per_node and per_pool
    for node, used in per_node.items():
        assert used <= capacity[node]
    for pool, used in per_pool.items():
        assert used <= pool_capacity[pool]
    # 2x TP4 + 1 whole + one GPU holding the 0.5 and 0.25 shares (process backend: one pod),
    # or two HAMi slices counted as one device each.
    assert sum(per_node.values()) == (10 if sharing == "process" else 11)


def test_vllm_commands_match_the_plan() -> None:
    deps = {d["metadata"]["name"]: d for d in of_kind(dicts(rendered()), "Deployment")}
    big = deps["llama-3-1-70b-tp4-gpu-node-a"]
    assert big["spec"]["replicas"] == 2
    (args,) = serve_commands(big)
    assert args[:3] == ["vllm", "serve", "meta-llama/Llama-3.1-70B-Instruct"]
    assert flag(args, "--tensor-parallel-size") == "4"
    assert flag(args, "--served-model-name") == "llama-70b"
    assert flag(args, "--gpu-memory-utilization") == "0.92"
    assert args[-3:] == ["--max-model-len", "32768", "--enable-prefix-caching"]
    # Host memory per GPU plus the memory-backed /dev/shm: (32 + 2) GiB x 4.
    assert container(big)["resources"]["limits"] == {"nvidia.com/gpu": "4", "memory": "136Gi"}
    # One port per model in every pod (models in name order from 8000).
    assert flag(args, "--port") == "8001"

    shared = deps["shared-gpu-node-b-gpu1"]
    first, second = serve_commands(shared)
    # Largest share starts first; each gets share x 0.92 of the GPU's memory, own port.
    assert flag(first, "--served-model-name") == "llama-8b"
    assert flag(first, "--gpu-memory-utilization") == "0.46"
    assert flag(first, "--port") == "8002"
    assert flag(second, "--served-model-name") == "reranker"
    assert flag(second, "--gpu-memory-utilization") == "0.23"
    assert flag(second, "--port") == "8000"
    assert sum(float(flag(a, "--gpu-memory-utilization")) for a in (first, second)) <= 1
    assert container(shared)["resources"]["limits"] == {"nvidia.com/gpu": "1", "memory": "34Gi"}
    # Readiness and liveness check every co-located server; single-server pods use HTTP.
    for probe in ("readinessProbe", "livenessProbe"):
        check = container(shared)[probe]["exec"]["command"]
        assert check[:2] == ["python3", "-c"] and "for port in (8002,8000,):" in check[2]
    assert container(big)["livenessProbe"]["httpGet"]["path"] == "/health"


def test_hami_slices() -> None:
    deps = {d["metadata"]["name"]: d for d in of_kind(dicts(rendered("hami")), "Deployment")}
    rerank = deps["bge-reranker-25pct-gpu-node-b"]
    assert container(rerank)["resources"]["limits"] == {
        "memory": "34Gi",
        "nvidia.com/gpu": "1",
        "nvidia.com/gpumem-percentage": "25",
        "nvidia.com/gpucores": "25",
    }
    (args,) = serve_commands(rerank)
    assert flag(args, "--gpu-memory-utilization") == "0.92"


def test_services_reach_every_replica_by_named_port() -> None:
    objs = dicts(rendered())
    pods = [d["spec"]["template"] for d in of_kind(objs, "Deployment")]
    services = of_kind(objs, "Service")
    assert sorted(s["metadata"]["name"] for s in services) == [
        "bge-reranker",
        "llama-3-1-70b",
        "llama-3-1-8b",
    ]
    for svc in services:
        (port,) = svc["spec"]["ports"]
        backing = [
            p
            for p in pods
            if all(p["metadata"]["labels"].get(k) == v for k, v in svc["spec"]["selector"].items())
        ]
        assert backing, svc["metadata"]["name"]
        for p in backing:
            names = [cp["name"] for cp in p["spec"]["containers"][0]["ports"]]
            assert port["targetPort"] in names
    # bge-reranker runs on the shared H100 GPU and on two whole L40S GPUs.
    rerank = next(s for s in services if s["metadata"]["name"] == "bge-reranker")
    assert rerank["spec"]["selector"] == {SERVES_PREFIX + "bge-reranker": "true"}


def test_security_and_labels_on_everything() -> None:
    r = rendered(hf_token_secret="hf-token", replan_traces_claim="traces")
    for obj in dicts(r):
        labels = obj["metadata"]["labels"]
        assert labels[MANAGED_BY] == "planner"
        assert labels[PLAN_HASH] == r.plan_hash
        assert obj["kind"] != "Secret"
        spec = obj.get("spec", {})
        pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get(
            "spec", {}
        ).get("template", {}).get("spec")
        if not pod:
            continue
        template = spec.get("template") or spec["jobTemplate"]["spec"]["template"]
        assert template["metadata"]["labels"][MANAGED_BY] == "planner"
        # The hash stays off pod templates: an unchanged group is not restarted by a re-plan.
        assert PLAN_HASH not in template["metadata"]["labels"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            for env in c.get("env", []):
                if "TOKEN" in env["name"]:
                    assert "value" not in env
                    assert env["valueFrom"]["secretKeyRef"]["name"] == "hf-token"


def test_replan_cronjob_and_minimal_rbac() -> None:
    objs = dicts(rendered(replan_schedule="*/30 * * * *", replan_traces_claim="traces"))
    (cron,) = of_kind(objs, "CronJob")
    assert cron["spec"]["schedule"] == "*/30 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "planner-replan"
    (role,) = of_kind(objs, "Role")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["planner-plan"],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": [""],
            "resources": ["services"],
            "verbs": ["create", "delete", "get", "list", "patch"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "verbs": ["create", "delete", "get", "list", "patch"],
        },
        {
            "apiGroups": ["policy"],
            "resources": ["poddisruptionbudgets"],
            "verbs": ["create", "delete", "get", "list", "patch"],
        },
    ]
    assert not of_kind(objs, "ClusterRole") and not of_kind(objs, "ClusterRoleBinding")
    (binding,) = of_kind(objs, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "planner-replan",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "planner-replan", "namespace": "llm-serving"}
    ]


def test_plan_configmap_holds_the_plan() -> None:
    objs = dicts(rendered())
    (cm,) = of_kind(objs, "ConfigMap")  # no CronJob without a traces source: no inputs map
    assert cm["metadata"]["name"] == "planner-plan"
    assert yaml.safe_load(cm["data"]["plan.yaml"])["allocations"][0]["model"] == "llama-3.1-70b"


def test_unknown_model_is_a_profile_error() -> None:
    from deploy_helpers import H100, make_plan

    plan = make_plan(Allocation("llama-3.1-8", H100, 1, 8, 1))
    with pytest.raises(ProfileError, match=r'did you mean "llama-3\.1-8b"'):
        render_manifests(
            place(plan, named_cluster()),
            named_cluster(),
            make_catalog().models,
            "x",
            RenderOptions(),
        )


def test_yaml_writer_quotes_yaml11_booleans() -> None:
    text = dump_yaml({"b": {"v": "on", "w": "y", "x": "N", "y": "off", "z": "yes"}, "a": "1"})
    assert text == "a: '1'\nb:\n  v: 'on'\n  w: 'y'\n  x: 'N'\n  'y': 'off'\n  z: 'yes'\n"
    assert yaml.safe_load(text)["b"]["w"] == "y"


# Golden cases: one per output stack. Every case has a re-planning CronJob (traces from a
# PVC) and a Hugging Face token Secret.
GOLDEN_CASES: dict[str, dict[str, Any]] = {
    "process": {"sharing": "process"},
    "hami": {"sharing": "hami"},
    "gateway-hpa": {
        "gateway": True,
        "autoscaler": "hpa",
        "network_policy": True,
        "api_key_secret": "vllm-api-key",
    },
    "lws-keda": {"target": "lws", "autoscaler": "keda", "gateway": True, "prefix_routing": True},
    "kserve-keda": {
        "target": "kserve",
        "sharing": "hami",
        "autoscaler": "keda",
        "model_cache_claim": "hf-cache",
    },
}


def golden_rendered(case: str) -> Rendered:
    settings = {"replan_traces_claim": "planner-traces", "hf_token_secret": "hf-token"}
    return rendered(**{**settings, **GOLDEN_CASES[case]})


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_manifests_and_determinism(case: str, tmp_path: Path) -> None:
    objects = golden_rendered(case).objects
    files = manifest_files(objects)
    assert files == manifest_files(golden_rendered(case).objects)
    golden = GOLDEN / f"manifests-{case}"
    if UPDATE:
        write_manifests(golden, objects)
    assert sorted(p.name for p in golden.iterdir()) == sorted(files)
    for name, text in files.items():
        assert (golden / name).read_text(encoding="utf-8") == text, name
    # Every object valid: built-in kinds against Kubernetes' OpenAPI, custom resources
    # against their CRDs (strict: unknown fields fail).
    for obj in objects:
        validate_object(to_dict(obj))
    # Written twice through the staged directory: byte-identical, and read back whole.
    write_manifests(tmp_path / "a", objects)
    write_manifests(tmp_path / "b", golden_rendered(case).objects)
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert len(read_manifests(tmp_path / "a")) == len(files) - 1


def test_process_backend_merges_same_model_shares_on_one_gpu() -> None:
    from deploy_helpers import H100, make_plan

    plan = make_plan(Allocation("llama-3.1-8b", H100, 1, 2, 2))
    cluster, catalog = named_cluster(), make_catalog()
    placement = place(plan, cluster)
    assert {r.gpu_indices for r in placement.replicas} == {(0,)}
    r = render_manifests(placement, cluster, catalog.models, plan_text(plan), RenderOptions())
    (dep,) = of_kind(dicts(r), "Deployment")
    (args,) = serve_commands(dep)
    assert flag(args, "--gpu-memory-utilization") == "0.46"  # (0.25 + 0.25) x 0.92
    for obj in dicts(r):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@settings(max_examples=25, deadline=None)
@given(
    allocs=st.lists(
        st.builds(
            Allocation,
            model=st.sampled_from(["llama-3.1-70b", "llama-3.1-8b", "bge-reranker"]),
            gpu_type=st.just("H100-SXM-80GB"),
            tp=st.sampled_from([1, 2, 4, 8]),
            share_eighths=st.sampled_from([8, 4, 2, 1]),
            replicas=st.integers(1, 5),
        ),
        min_size=1,
        max_size=5,
    ),
    nodes=st.integers(1, 4),
    gpus_per_node=st.sampled_from([4, 8]),
    sharing=st.sampled_from(["process", "hami"]),
)
def test_property_rendered_objects_respect_node_capacity(
    allocs: list[Allocation], nodes: int, gpus_per_node: int, sharing: str
) -> None:
    """Random plans on unseen clusters: valid objects, per-node GPU requests within capacity,
    memory shares per shared GPU within one GPU."""
    from deploy_helpers import make_plan

    from planner.place import PlacementError
    from planner.types.cluster import Cluster, NodePool

    unique = {a.shape: a for a in allocs if a.tp == 1 or a.share_eighths == 8}
    assume(unique)
    names = tuple(f"node-{i}" for i in range(nodes))
    cluster = Cluster((NodePool("p", "H100-SXM-80GB", nodes, gpus_per_node, 8, node_names=names),))
    plan = make_plan(*unique.values())
    try:
        placement = place(plan, cluster)
    except PlacementError:
        return
    r = render_manifests(
        placement,
        cluster,
        make_catalog().models,
        plan_text(plan),
        RenderOptions(sharing=sharing),  # type: ignore[arg-type]
    )
    per_node: dict[str, float] = defaultdict(float)
    for obj in (to_dict(o) for o in r.objects):
        validate_k8s(obj)
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        (expr,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ][0]["matchExpressions"]
        limits = pod["containers"][0]["resources"]["limits"]
        gpus = int(limits["nvidia.com/gpu"])
        # A HAMi slice counts its share of a GPU; every other pod holds whole GPUs.
        share = int(limits.get("nvidia.com/gpumem-percentage", 100)) / 100
        per_node[expr["values"][0]] += gpus * share * obj["spec"]["replicas"]
        utils = [float(flag(a, "--gpu-memory-utilization")) for a in serve_commands(obj)]
        if "nvidia.com/gpumem-percentage" not in limits:
            # Co-located servers share one GPU's memory: their shares sum to at most 0.92.
            assert sum(utils) <= 0.92 + 1e-9
    for node, used in per_node.items():
        assert used <= gpus_per_node + 1e-9, (node, used)
    assert sum(per_node.values()) > 0


def test_names_are_valid_for_odd_model_and_node_names() -> None:
    from planner.render.common import dns_name
    from planner.render.workloads import service_name

    assert service_name("01-ai/Yi-34B") == "m-01-ai-yi-34b"
    assert service_name("Qwen/Qwen3-32B") == "qwen-qwen3-32b"
    long = dns_name("model-" + "x" * 80, "tp8", "node")
    assert len(long) <= 63 and long != dns_name("model-" + "x" * 81, "tp8", "node")
    assert dns_name("A__B..c") == "a-b-c"


def test_failed_write_leaves_previous_manifests_untouched(tmp_path: Path) -> None:
    target = tmp_path / "manifests"
    write_manifests(target, rendered().objects)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(TypeError):
        write_manifests(target, [*rendered("hami").objects, object()])
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["manifests"]  # no staging left behind


def test_expert_parallel_allocation_renders_the_vllm_flag_and_round_trips(tmp_path: Path) -> None:
    from dataclasses import replace as dc_replace

    from deploy_helpers import make_plan

    from planner.io.plan_file import dump_plan, read_plan

    catalog = make_catalog()
    moe = dc_replace(
        catalog.models["llama-3.1-8b"], moe_experts=8, moe_top_k=2, moe_intermediate=14336
    )
    catalog.models["llama-3.1-8b"] = moe
    plan = make_plan(
        Allocation("llama-3.1-8b", "H100-SXM-80GB", 2, 8, 1, expert_parallel=True),
        Allocation("llama-3.1-70b", "H100-SXM-80GB", 2, 8, 1),
    )
    cluster = named_cluster()
    out = render_manifests(
        place(plan, cluster),
        cluster,
        catalog.models,
        plan_text(plan),
        RenderOptions(sharing="process"),
        catalog.gpus,
    )
    commands = {
        d["metadata"]["name"]: serve_commands(d)[0] for d in of_kind(dicts(out), "Deployment")
    }
    ep = [c for name, c in commands.items() if "-ep-" in name]
    assert len(ep) == 1 and "--enable-expert-parallel" in ep[0]
    assert ep[0][ep[0].index("--tensor-parallel-size") + 1] == "2"
    others = [c for name, c in commands.items() if "-ep-" not in name]
    assert others and all("--enable-expert-parallel" not in c for c in others)
    text = dump_plan(plan)
    assert text.count("expert_parallel: true") == 1
    (tmp_path / "plan.yaml").write_text(text)
    assert read_plan(tmp_path / "plan.yaml").allocations == plan.allocations
    # KServe carries it as parallelism.expert, validated against the real CRD.
    kserve = render_manifests(
        place(plan, cluster),
        cluster,
        catalog.models,
        plan_text(plan),
        RenderOptions(sharing="process", target="kserve", autoscaler="none"),
        catalog.gpus,
    )
    services = of_kind(dicts(kserve), "LLMInferenceService")
    expert = [s for s in services if s["spec"]["parallelism"].get("expert")]
    assert len(expert) == 1 and expert[0]["spec"]["parallelism"]["tensor"] == 2
    from deploy_helpers import validate_object

    for obj in services:
        validate_object(obj)


@pytest.mark.parametrize("sharing", ["process", "hami"])
def test_prefix_caching_and_session_affinity_follow_the_plan(sharing: str) -> None:
    plan, cluster, catalog = mixed_plan(), named_cluster(), make_catalog()
    r = render_manifests(
        place(plan, cluster),
        cluster,
        catalog.models,
        plan_text(plan),
        RenderOptions(sharing=sharing),  # type: ignore[arg-type]
        catalog.gpus,
        caching={"llama-3.1-70b": "session", "llama-3.1-8b": "balanced"},
    )
    objs = dicts(r)
    affinity = {
        s["metadata"]["name"]: s["spec"].get("sessionAffinity") for s in of_kind(objs, "Service")
    }
    assert affinity == {"llama-3-1-70b": "ClientIP", "llama-3-1-8b": None, "bge-reranker": None}
    for dep in of_kind(objs, "Deployment"):
        for argv in serve_commands(dep):
            cached = argv[2] != "BAAI/bge-reranker-v2-m3"
            assert ("--enable-prefix-caching" in argv) == cached, argv
        validate_k8s(dep)
    for service in of_kind(objs, "Service"):
        validate_k8s(service)
