"""Replicas that span nodes: the shape (pp), its cost, the search's offer, placement, the
plan file, and the LeaderWorkerSet / KServe worker that runs vLLM multi-node on Ray."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import validate_object

from planner.defaults import UNITS_PER_GPU
from planner.io.configs import load_catalog
from planner.io.manifests import manifest_files, to_dict, write_manifests
from planner.io.plan_file import read_plan, write_plan
from planner.place import PlacementError, place
from planner.profiles.analytic import AnalyticProfiles, pipeline_hops_ms, steady_state
from planner.render.common import SERVES_PREFIX
from planner.render.objects import render_manifests
from planner.render.settings import RenderOptions
from planner.search.problem import pipeline_shapes
from planner.types.cluster import Cluster, NodePool, uniform_cluster
from planner.types.plan import Allocation
from planner.types.shapes import ShapeKey

H100, H200 = "H100-SXM-80GB", "H200-SXM-141GB"
BIG = "Llama-3.1-405B-Instruct"  # BF16 weights (811 GB) exceed one 8 x H100 node (640 GB)
GOLDEN = Path(__file__).parent / "golden" / "manifests-multinode"
UPDATE = os.environ.get("PLANNER_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def profiles() -> AnalyticProfiles:
    return AnalyticProfiles(load_catalog(None))


def test_405b_needs_two_h100_nodes_but_fits_one_h200_node(profiles: AnalyticProfiles) -> None:
    assert not profiles.memory(ShapeKey(BIG, H100, 8)).fits
    two = profiles.memory(ShapeKey(BIG, H100, 8, UNITS_PER_GPU, 2))
    assert two.fits and two.weights_gib == pytest.approx(
        profiles.memory(ShapeKey(BIG, H100, 8)).weights_gib / 2
    )
    assert profiles.memory(ShapeKey(BIG, H200, 8)).fits


def test_search_offers_pipelines_only_where_no_single_domain_shape_fits(
    profiles: AnalyticProfiles,
) -> None:
    catalog = load_catalog(None)

    def fits(k: ShapeKey) -> bool:
        return profiles.memory(k).fits

    h100 = uniform_cluster(32, H100, 8)
    assert pipeline_shapes(catalog.models[BIG], h100, fits) == (
        ShapeKey(BIG, H100, 8, UNITS_PER_GPU, 2),
    )
    assert pipeline_shapes(catalog.models["Llama-3.1-70B-Instruct"], h100, fits) == ()
    assert pipeline_shapes(catalog.models[BIG], uniform_cluster(16, H200, 8), fits) == ()
    # One H100 node cannot hold two stages: no pipeline shape on a single-node pool.
    assert pipeline_shapes(catalog.models[BIG], uniform_cluster(8, H100, 8), fits) == ()


def test_pipeline_cost_is_the_tp_step_plus_the_hops() -> None:
    catalog = load_catalog(None)
    model, gpu = catalog.models["Llama-3.1-70B-Instruct"], catalog.gpus[H100]
    one = steady_state(model, gpu, 8, 1.0, 2000, 300, 1, 100_000)
    two = steady_state(model, gpu, 8, 1.0, 2000, 300, 1, 100_000, pp=2)
    hop = pipeline_hops_ms(model, gpu, 2, 1)
    # One request: a decode step carries one token's hidden state (8192 x 2 bytes) over
    # 50 GB/s plus the 10 us point-to-point latency.
    assert hop == pytest.approx(0.010 + 8192 * 2 / 50e9 * 1e3)
    assert two.tpot_ms - one.tpot_ms == pytest.approx(hop)
    assert pipeline_hops_ms(model, gpu, 1, 1000) == 0.0
    assert pipeline_hops_ms(model, gpu, 4, 1) == pytest.approx(3 * hop)


def two_pools() -> Cluster:
    names = ("a-0", "a-1", "a-2")
    return Cluster(
        (
            NodePool("a", H100, 3, 8, 8, node_names=names),
            NodePool("b", H100, 1, 8, 8, node_names=("b-0",)),
        )
    )


def test_placement_keeps_a_replicas_stages_in_one_pool_on_distinct_nodes() -> None:
    from deploy_helpers import make_plan

    plan = make_plan(
        Allocation(BIG, H100, 8, UNITS_PER_GPU, 1, 2),
        Allocation("Llama-3.1-8B-Instruct", H100, 1, UNITS_PER_GPU, 4),
    )
    placement = place(plan, two_pools())
    (big,) = [r for r in placement.replicas if r.model == BIG]
    assert big.pipeline_parallel == 2 and len(set(big.nodes)) == 2
    assert {n for n in big.nodes} <= {"a-0", "a-1", "a-2"}
    used = {n.node: n.used_eighths for n in placement.nodes}
    assert all(used[n] == (UNITS_PER_GPU,) * 8 for n in big.nodes)
    # Two pipelines of two stages: three pool-a nodes and one pool-b node cannot keep
    # both in one pool.
    with pytest.raises(PlacementError):
        place(make_plan(Allocation(BIG, H100, 8, UNITS_PER_GPU, 2, 2)), two_pools())


def test_plan_file_keeps_pp_and_leaves_single_node_entries_unchanged(tmp_path: Path) -> None:
    from deploy_helpers import make_plan

    plan = make_plan(
        Allocation(BIG, H100, 8, UNITS_PER_GPU, 1, 2),
        Allocation("Qwen3-32B", H100, 2, UNITS_PER_GPU, 1),
    )
    path = write_plan(plan, tmp_path)
    assert read_plan(path).allocations == plan.allocations
    text = path.read_text()
    assert text.count("pipeline_parallel: 2") == 1 and "pipeline_parallel: 1" not in text


def write_trace(path: Path) -> Path:
    """An agent calling the 405B planner then a 32B worker, one workflow every 2 s."""
    rows = []
    for w in range(200):
        t = 2.0 * w
        rows.append((f"w{w}", "meta-llama/Llama-3.1-405B-Instruct", t, t + 8, 3000, 400))
        rows.append((f"w{w}", "Qwen/Qwen3-32B", t + 8, t + 10, 1000, 200))
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(
            ["workflow_id", "model", "start_time", "end_time", "input_tokens", "output_tokens"]
        )
        out.writerows(rows)
    return path


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from planner.jobs.planning import plan_job
    from planner.jobs.requests import ClusterSpec, PlanRequest
    from planner.types.settings import SolveSettings

    trace = write_trace(tmp_path_factory.mktemp("trace") / "agent.csv")
    request = PlanRequest(trace, ClusterSpec(32, H100, 8), solve=SolveSettings(time_limit_s=10))
    result = plan_job(request)
    return result, result.cluster


def test_plan_of_an_unseen_workload_gives_the_405b_a_two_node_replica(planned: Any) -> None:
    result, _ = planned
    (big,) = [a for a in result.plan.allocations if a.model == BIG]
    assert (big.tp, big.pp) == (8, 2) and big.gpus == 16 * big.replicas
    assert result.plan.gpus_used <= 32


def rendered_objects(planned: Any, **kw: Any) -> list[dict[str, Any]]:
    result, cluster = planned
    r = render_manifests(
        place(result.plan, cluster),
        cluster,
        result.catalog.models,
        "plan",
        RenderOptions(hf_token_secret="hf-token", **kw),
        result.catalog.gpus,
    )
    return [to_dict(o) for o in r.objects]


@pytest.mark.parametrize("target", ["deployments", "lws"])
def test_a_replica_spanning_nodes_is_a_leader_worker_set_on_ray(planned: Any, target: str) -> None:
    items = rendered_objects(planned, target=target, gateway=True, autoscaler="keda")
    for obj in items:
        validate_object(obj)
    (lws,) = [
        o for o in items if o["kind"] == "LeaderWorkerSet" and "405b" in o["metadata"]["name"]
    ]
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2 and template["restartPolicy"] == "RecreateGroupOnPodRestart"
    leader, worker = template["leaderTemplate"], template["workerTemplate"]
    (lc,) = leader["spec"]["containers"]
    (wc,) = worker["spec"]["containers"]
    script = lc["command"][2]
    assert "ray start --head" in script and '"$LWS_GROUP_SIZE"' in script
    serve = next(line for line in script.splitlines() if "vllm serve" in line)
    for flag in (
        "--tensor-parallel-size 8",
        "--pipeline-parallel-size 2",
        "--distributed-executor-backend ray",
    ):
        assert flag in serve
    assert '--address="$LWS_LEADER_ADDRESS:6379"' in wc["command"][2]
    assert (
        lc["resources"]["limits"]["nvidia.com/gpu"]
        == wc["resources"]["limits"]["nvidia.com/gpu"]
        == "8"
    )
    # Only the leader serves HTTP: the Service and InferencePool never pick a worker.
    assert any(k.startswith(SERVES_PREFIX) for k in leader["metadata"]["labels"])
    assert not any(k.startswith(SERVES_PREFIX) for k in worker["metadata"]["labels"])
    assert "ports" not in wc and "readinessProbe" not in wc and "readinessProbe" in lc
    # Both pods pinned to the replica's pool (unnamed nodes: the GPU product label).
    for pod in (leader, worker):
        terms = pod["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][0]["key"] == "nvidia.com/gpu.product"
    if target == "deployments":  # single-node groups stay Deployments
        assert any(o["kind"] == "Deployment" and "qwen3" in o["metadata"]["name"] for o in items)


def test_kserve_runs_a_multi_node_replica_with_a_worker_spec(planned: Any) -> None:
    items = rendered_objects(planned, target="kserve")
    for obj in items:
        validate_object(obj)
    (svc,) = [
        o for o in items if o["kind"] == "LLMInferenceService" and "405b" in o["metadata"]["name"]
    ]
    spec = svc["spec"]
    assert spec["parallelism"] == {"tensor": 8, "pipeline": 2}
    assert spec["worker"]["containers"][0]["name"] == "main"
    assert "ports" not in spec["worker"]["containers"][0]


def test_golden_multinode_manifests() -> None:
    """A hand-made plan (independent of the solver): one 405B replica on two H100 nodes
    and two Qwen3-32B TP-8 replicas, with the gateway."""
    from deploy_helpers import make_plan

    catalog = load_catalog(None)
    plan = make_plan(
        Allocation(BIG, H100, 8, UNITS_PER_GPU, 1, 2),
        Allocation("Qwen3-32B", H100, 8, UNITS_PER_GPU, 2),
    )
    cluster = uniform_cluster(32, H100, 8)
    r = render_manifests(
        place(plan, cluster),
        cluster,
        catalog.models,
        "plan",
        RenderOptions(hf_token_secret="hf-token", gateway=True),
        catalog.gpus,
    )
    files = manifest_files(r.objects)
    if UPDATE:
        write_manifests(GOLDEN, r.objects)
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(files)
    for name, text in files.items():
        assert (GOLDEN / name).read_text(encoding="utf-8") == text, name
    for obj in r.objects:
        validate_object(to_dict(obj))
