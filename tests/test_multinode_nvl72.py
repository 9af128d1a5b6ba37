"""Tensor parallel across a multi-node NVLink domain (GB200 NVL72: 18 trays of 4 GPUs on
one NVLink fabric): the cluster file's `nvlink_domain_nodes`, the search's shapes and
packing, placement on whole nodes of one rack, the LeaderWorkerSet running vLLM's
multi-node TP on Ray, and the all-reduce cost beyond the measured GPU counts."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from deploy_helpers import make_plan, validate_object
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.defaults import UNITS_PER_GPU
from planner.errors import ConfigError
from planner.io.cluster_file import cluster_to_dict, load_cluster, parse_cluster
from planner.io.configs import load_catalog
from planner.io.manifests import to_dict
from planner.place import PlacementError, place
from planner.profiles.kernels.tables import kernel_tables
from planner.render.objects import render_manifests
from planner.render.settings import RenderOptions
from planner.search.packing import first_fit_decreasing, fits, tp_capacities
from planner.search.problem import candidate_shapes
from planner.types.cluster import Cluster, NodePool
from planner.types.plan import Allocation

GB200 = "GB200-186GB"
BIG = "Llama-3.1-405B-Instruct"  # BF16: 756 GiB of weights, more than a 4-GPU tray holds
SMALL = "Qwen3-8B"


def rack_pool(nodes: int = 18, per_rack: int = 18, **extra: Any) -> dict[str, Any]:
    return {
        "name": "nvl72",
        "gpu_type": GB200,
        "nodes": nodes,
        "gpus_per_node": 4,
        "nvlink_domain_nodes": per_rack,
        **extra,
    }


def nvl72(nodes: int = 18, per_rack: int = 18) -> Cluster:
    return parse_cluster({"schema_version": 1, "pools": [rack_pool(nodes, per_rack)]}, "test")


def test_cluster_file_describes_a_rack_as_one_nvlink_domain() -> None:
    cluster = nvl72()
    (pool,) = cluster.pools
    assert pool.nvlink_domain_size == 72 and pool.tp_limit == 72
    assert pool.domain_sizes() == (72,)
    assert parse_cluster(cluster_to_dict(cluster), "round trip") == cluster
    assert nvl72(36).pools[0].domain_sizes() == (72, 72)
    shipped = load_cluster(Path(__file__).parents[1] / "configs" / "cluster-gb200-nvl72.yaml")
    assert shipped.pools[0].domain_sizes() == (72, 72) and shipped.pools[0].tp_limit == 72


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        (rack_pool(20), "not whole NVLink domains of 18 nodes"),
        (rack_pool(nvlink_domain_size=64), "is not nvlink_domain_nodes x gpus_per_node"),
        ({**rack_pool(), "gpus_per_node": 6}, "gpus_per_node a power of two"),
        ({**rack_pool(per_rack=1), "nvlink_domain_size": 72}, "set nvlink_domain_nodes"),
        (rack_pool(per_rack=0), "nvlink_domain_nodes must be at least 1"),
    ],
)
def test_cluster_file_refuses_an_inconsistent_rack(pool: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_cluster({"schema_version": 1, "pools": [pool]}, "cluster.yaml")


def test_shapes_and_packing_span_the_rack() -> None:
    catalog = load_catalog(None)
    cluster = nvl72()
    tps = {k.tp for k in candidate_shapes(catalog.models[BIG], cluster)}
    assert tps == {1, 2, 4, 8, 16, 32, 64}  # 128 heads; up to the 72-GPU domain
    one_node = parse_cluster(
        {"schema_version": 1, "pools": [{**rack_pool(per_rack=1), "nvlink_domain_size": 4}]}, "t"
    )
    assert max(k.tp for k in candidate_shapes(catalog.models[BIG], one_node)) == 4
    caps = tp_capacities(cluster, GB200)
    assert caps[64 * UNITS_PER_GPU] == 64 * UNITS_PER_GPU
    assert caps[16 * UNITS_PER_GPU] == 64 * UNITS_PER_GPU  # four TP-16 groups, 8 GPUs left
    # Four TP-16 groups and two TP-4 groups fill 72 GPUs; a fifth TP-16 does not fit.
    assert fits({16 * UNITS_PER_GPU: 4, 4 * UNITS_PER_GPU: 2}, cluster, GB200)
    assert not fits({16 * UNITS_PER_GPU: 5}, cluster, GB200)
    # Two racks of 8 GPUs: TP 16 fits neither, whatever the total.
    small = nvl72(4, 2)
    assert not fits({16 * UNITS_PER_GPU: 1}, small, GB200)
    assert first_fit_decreasing({8 * UNITS_PER_GPU: 2}, small, GB200) == 0


def test_placement_takes_whole_nodes_of_one_rack() -> None:
    cluster = nvl72(8, 4)  # two racks of four 4-GPU nodes
    plan = make_plan(
        Allocation(BIG, GB200, 16, UNITS_PER_GPU, 1),
        Allocation(BIG, GB200, 8, UNITS_PER_GPU, 1),
        Allocation(SMALL, GB200, 1, UNITS_PER_GPU, 2),
    )
    placement = place(plan, cluster)
    racks = {n: i // 4 for i, n in enumerate(cluster.pools[0].names())}
    wide = {r.tp: r for r in placement.replicas if r.model == BIG}
    assert len(wide[16].nodes) == 4 and len({racks[n] for n in wide[16].nodes}) == 1
    assert len(wide[8].nodes) == 2 and len({racks[n] for n in wide[8].nodes}) == 1
    assert wide[16].gpu_indices == (0, 1, 2, 3)
    # A third group of 16 would need a rack of its own; neither has four free nodes.
    with pytest.raises(PlacementError):
        place(make_plan(Allocation(BIG, GB200, 16, UNITS_PER_GPU, 3)), cluster)


def test_allreduce_beyond_the_measured_gpus_grows_by_the_last_measured_doubling() -> None:
    tables = kernel_tables("gb200")  # custom all-reduce and NCCL rows for 2 and 4 GPUs
    sizes = np.array([7168.0 * 16, 7168.0 * 512])
    two, two_flag = tables.nccl("all_reduce", 2, sizes)
    four, four_flag = tables.nccl("all_reduce", 4, sizes)
    assert not (two_flag.any() or four_flag.any())
    assert not tables.allreduce(4, sizes)[1].any()  # one tray: vLLM's custom all-reduce
    for gpus, doublings in ((8, 1), (16, 2), (64, 4)):
        ms, flagged = tables.allreduce(gpus, sizes)
        assert ms == pytest.approx(four * np.maximum(four / two, 1.0) ** doublings)
        assert flagged.all() and (ms > four).all()


def write_trace(path: Path) -> Path:
    rows = []
    for w in range(200):
        t = 2.0 * w
        rows.append((f"w{w}", "meta-llama/Llama-3.1-405B-Instruct", t, t + 8, 3000, 400))
        rows.append((f"w{w}", "Qwen/Qwen3-8B", t + 8, t + 9, 800, 150))
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

    folder = tmp_path_factory.mktemp("nvl72")
    trace = write_trace(folder / "agent.csv")
    cluster_file = folder / "cluster.yaml"
    cluster_file.write_text(yaml.safe_dump({"schema_version": 1, "pools": [rack_pool()]}))
    request = PlanRequest(
        trace, ClusterSpec(cluster_file=cluster_file), solve=SolveSettings(time_limit_s=10)
    )
    return plan_job(request)


def test_unseen_workload_on_nvl72_runs_tp_across_trays(planned: Any) -> None:
    bigs = [a for a in planned.plan.allocations if a.model == BIG]
    assert bigs and all(a.tp > 4 and a.pp == 1 for a in bigs)
    placement = place(planned.plan, planned.cluster)
    for r in (r for r in placement.replicas if r.model == BIG):
        assert len(set(r.nodes)) == r.tp // 4


@pytest.mark.parametrize("target", ["deployments", "lws", "kserve"])
def test_tp_across_trays_renders_as_multi_node_vllm_for_every_target(
    planned: Any, target: str
) -> None:
    placement = place(planned.plan, planned.cluster)
    r = render_manifests(
        placement,
        planned.cluster,
        planned.catalog.models,
        "plan",
        RenderOptions(hf_token_secret="hf-token", target=target, gateway=True),
        planned.catalog.gpus,
    )
    items = [to_dict(o) for o in r.objects]
    for obj in items:
        validate_object(obj)
    (big,) = [a for a in planned.plan.allocations if a.model == BIG]
    mine = [o for o in items if "405b" in o["metadata"]["name"]]
    # One workload per replica (each on its own set of trays).
    if target == "kserve":
        services = [o for o in mine if o["kind"] == "LLMInferenceService"]
        assert len(services) == big.replicas
        for svc in services:
            assert svc["spec"]["parallelism"] == {"tensor": big.tp}
            limits = svc["spec"]["worker"]["containers"][0]["resources"]["limits"]
            assert limits["nvidia.com/gpu"] == "4"
        return
    sets = [o for o in mine if o["kind"] == "LeaderWorkerSet"]
    assert len(sets) == big.replicas
    for lws in sets:
        template = lws["spec"]["leaderWorkerTemplate"]
        assert template["size"] == big.tp // 4
        leader = template["leaderTemplate"]["spec"]["containers"][0]
        assert leader["resources"]["limits"]["nvidia.com/gpu"] == "4"
        serve = next(line for line in leader["command"][2].splitlines() if "vllm serve" in line)
        assert f"--tensor-parallel-size {big.tp}" in serve
        assert "--pipeline-parallel-size" not in serve
        assert "--distributed-executor-backend ray" in serve


NVL_SIZES = [(1, k / 8) for k in (1, 3, 4, 8)] + [(2, 1.0), (4, 1.0), (8, 1.0), (16, 1.0)]


@st.composite
def rack_problems(draw: st.DrawFn) -> Any:
    """Random models on pools of multi-node NVLink domains (and sometimes a plain pool of
    the same GPU type beside them)."""
    from search_factory import model, problem, shape

    models = []
    for i in range(draw(st.integers(1, 5))):
        name = f"m{i}"
        sizes = draw(st.lists(st.sampled_from(NVL_SIZES), min_size=1, max_size=3, unique=True))
        shapes = [
            shape(name, tp=tp, fraction=f, capacity=draw(st.floats(0.5, 10.0)) * tp * f)
            for tp, f in sizes
        ]
        models.append(model(name, shapes, heads=16))
    per_node = draw(st.sampled_from([1, 2, 4]))
    span = draw(st.sampled_from([2, 4]))
    racks = draw(st.integers(1, 2))
    pools = [
        NodePool("rack", "G", racks * span, per_node, per_node * span, nvlink_domain_nodes=span)
    ]
    if draw(st.booleans()):
        pools.append(NodePool("plain", "G", 1, 8, 8))
    return problem(models, rate=draw(st.floats(0.05, 3.0)), cl=Cluster(tuple(pools)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rack_problems())
def test_every_plan_on_racks_is_placeable_inside_one_rack(p: Any) -> None:
    from planner.search import SearchInfeasible, SolveSettings, search_plan

    try:
        plan = search_plan(p, SolveSettings(time_limit_s=5))
    except SearchInfeasible:
        return
    placement = place(plan, p.cluster)  # raises PlacementError when search and placement disagree
    assert len(placement.replicas) == sum(a.replicas for a in plan.allocations)
    rack = next(pool for pool in p.cluster.pools if pool.name == "rack")
    index = {n: i for i, n in enumerate(rack.names())}
    for r in placement.replicas:
        if len(r.nodes) > 1:
            assert r.pool == "rack" and r.tp == len(r.nodes) * rack.gpus_per_node
            assert len({rack.domain_of(index[n]) for n in r.nodes}) == 1
    assert sum(u for n in placement.nodes for u in n.used_eighths) == plan.units_used


def test_autoscaler_maximum_counts_free_nodes_per_rack() -> None:
    from planner.render.autoscale import max_replicas
    from planner.render.groups import serving_groups

    catalog = load_catalog(None)
    cluster = nvl72(6, 3)  # two racks of three 4-GPU nodes
    placement = place(make_plan(Allocation(BIG, GB200, 8, UNITS_PER_GPU, 2)), cluster)
    # One TP-8 group per rack on two nodes each: one free node in each rack. Two free
    # nodes would make one more group if racks were ignored; no rack holds one.
    used = {n.node: sum(n.used_eighths) > 0 for n in placement.nodes}
    assert [used[f"nvl72-{i}"] for i in range(6)] == [True, True, False, True, True, False]
    groups = serving_groups(placement, cluster, catalog.models, RenderOptions())
    assert len(groups) == 2
    for group in groups:
        assert group.pods_per_replica == 2 and group.gpus_per_pod == 4
        assert max_replicas(group, placement) == 1
