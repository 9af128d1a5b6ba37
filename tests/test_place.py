from __future__ import annotations

from collections import defaultdict

import pytest
from deploy_helpers import H100, L40S, make_plan, two_pool_cluster
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.place import Placement, PlacementError, place
from planner.types.cluster import Cluster, NodePool
from planner.types.plan import Allocation


def check_invariants(placement: Placement, cluster: Cluster) -> None:
    """The properties every placement must have (used by the property test too)."""
    pools = {p.name: p for p in cluster.pools}
    share: dict[tuple[str, int], float] = defaultdict(float)
    for r in placement.replicas:
        pool = pools[r.pool]
        assert r.node in pool.names()
        assert pool.gpu_type == r.gpu_type
        assert len(r.gpu_indices) == r.tp
        domains = {i // pool.nvlink_domain_size for i in r.gpu_indices}
        assert len(domains) == 1, f"TP group {r} crosses NVLink domains"
        for i in r.gpu_indices:
            assert 0 <= i < pool.gpus_per_node
            share[(r.node, i)] += r.share_eighths
    for key, used in share.items():
        assert used <= 8, f"GPU {key} holds {used}/8"


def test_tp_groups_largest_first_and_whole_node_kept_free() -> None:
    plan = make_plan(
        Allocation("llama-3.1-70b", H100, 4, 8, 1),
        Allocation("llama-3.1-8b", H100, 1, 8, 2),
    )
    p = place(plan, two_pool_cluster())
    check_invariants(p, two_pool_cluster())
    by_model = {(r.model, r.replica): r for r in p.replicas}
    assert by_model[("llama-3.1-70b", 0)].gpu_indices == (0, 1, 2, 3)
    assert by_model[("llama-3.1-70b", 0)].node == "h100-0"
    # The TP-1 replicas go to the busy node, leaving h100-1 whole.
    assert by_model[("llama-3.1-8b", 0)].gpu_indices == (4,)
    assert by_model[("llama-3.1-8b", 1)].gpu_indices == (5,)
    assert {r.node for r in p.replicas} == {"h100-0"}
    assert p.fragmentation.free_nodes == 2  # h100-1 and the L40S node
    assert p.fragmentation.free_gpus == 2 + 8 + 4
    assert p.fragmentation.partly_used_gpus == 0


def test_fractional_shares_pack_onto_used_gpus() -> None:
    plan = make_plan(
        Allocation("llama-3.1-8b", H100, 1, 4, 1),
        Allocation("bge-reranker", H100, 1, 2, 2),
        Allocation("qwen", H100, 1, 2, 1),
    )
    p = place(plan, two_pool_cluster())
    check_invariants(p, two_pool_cluster())
    gpus = {(r.model, r.replica): (r.node, r.gpu_indices) for r in p.replicas}
    # The packer fills GPU 0 with 0.5 + 0.25 + 0.25 and puts the last 0.25 on GPU 1; on
    # GPU 0 the second quarter goes to qwen, not to a second bge replica (spread).
    assert gpus[("llama-3.1-8b", 0)] == ("h100-0", (0,))
    assert gpus[("bge-reranker", 0)] == ("h100-0", (0,))
    assert gpus[("qwen", 0)] == ("h100-0", (0,))
    assert gpus[("bge-reranker", 1)] == ("h100-0", (1,))
    assert p.fragmentation.partly_used_gpus == 1
    assert p.fragmentation.unused_share_gpus == pytest.approx(0.75)


def test_shares_that_sum_to_one_gpu_fill_it_exactly() -> None:
    # 3/8 + 3/8 + 2/8: integer eighths add up to a whole GPU with no rounding slack.
    shares = {"a": 3, "b": 3, "c": 2}
    plan = make_plan(*(Allocation(m, H100, 1, k, 1) for m, k in shares.items()))
    p = place(plan, two_pool_cluster())
    assert {r.gpu_indices for r in p.replicas} == {(0,)}
    assert p.fragmentation.partly_used_gpus == 0
    assert p.fragmentation.unused_share_eighths == 0


def test_deterministic_regardless_of_allocation_order() -> None:
    allocs = [
        Allocation("a", H100, 2, 8, 2),
        Allocation("b", H100, 1, 4, 3),
        Allocation("c", L40S, 1, 8, 2),
        Allocation("d", H100, 4, 8, 1),
    ]
    first = place(make_plan(*allocs), two_pool_cluster())
    second = place(make_plan(*reversed(allocs)), two_pool_cluster())
    assert first == second


@pytest.mark.parametrize(
    ("alloc", "constraint"),
    [
        (Allocation("m", "B200", 1, 8, 1), "gpu-type"),
        (Allocation("m", H100, 1, 8, 17), "gpu-capacity"),
        (Allocation("m", L40S, 2, 8, 1), "nvlink-domain"),
        (Allocation("m", H100, 2, 4, 1), "fractional-tp"),
    ],
)
def test_unplaceable_plans_name_the_constraint(alloc: Allocation, constraint: str) -> None:
    with pytest.raises(PlacementError) as err:
        place(make_plan(alloc), two_pool_cluster())
    assert err.value.constraint == constraint
    assert err.value.model == "m"
    assert err.value.exit_code == 3


def test_fragmentation_error_when_domains_are_split() -> None:
    # Four 4-GPU domains: four TP-3 groups leave one GPU in each domain, so a TP-2 group
    # fails although 4 GPUs are free (14 of 16 asked).
    cluster = Cluster((NodePool("p", H100, 2, 8, 4),))
    plan = make_plan(Allocation("x", H100, 3, 8, 4), Allocation("y", H100, 2, 8, 1))
    with pytest.raises(PlacementError) as err:
        place(plan, cluster)
    assert err.value.constraint == "fragmentation"
    assert err.value.model == "y"


def test_same_model_shares_spread_but_may_share_a_gpu() -> None:
    cluster = Cluster((NodePool("p", H100, 1, 2, 2),))
    p = place(make_plan(Allocation("x", H100, 1, 2, 3), Allocation("y", H100, 1, 4, 1)), cluster)
    check_invariants(p, cluster)
    gpus = sorted((r.model, r.gpu_indices) for r in p.replicas)
    # y opens GPU 0; x#0 joins it; x#1 finds no partly used GPU without x, and packing
    # beats spreading, so it fills GPU 0; x#2 opens GPU 1.
    assert gpus == [("x", (0,)), ("x", (0,)), ("x", (1,)), ("y", (0,))]
    assert p.fragmentation.free_gpus == 0 and p.fragmentation.partly_used_gpus == 1


allocations = st.lists(
    st.builds(
        Allocation,
        model=st.sampled_from(["a", "b", "c", "d"]),
        gpu_type=st.sampled_from([H100, L40S]),
        tp=st.sampled_from([1, 1, 2, 4, 8]),
        share_eighths=st.sampled_from([8, 8, 4, 2, 3]),
        replicas=st.integers(1, 4),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(allocs=allocations)
def test_property_placement_valid_or_typed_error(allocs: list[Allocation]) -> None:
    # Deduplicate shapes the way a plan would (one allocation per shape).
    unique = {a.shape: a for a in allocs}
    plan = make_plan(*unique.values())
    cluster = two_pool_cluster()
    try:
        p = place(plan, cluster)
    except PlacementError:
        return
    check_invariants(p, cluster)
    assert len(p.replicas) == sum(a.replicas for a in unique.values())


eighths_allocations = st.lists(
    st.builds(
        Allocation,
        model=st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]),
        gpu_type=st.just(H100),
        tp=st.sampled_from([1, 2, 4, 8]),
        share_eighths=st.integers(1, 8),
        replicas=st.integers(1, 6),
    ),
    max_size=9,
)


@settings(max_examples=200, deadline=None)
@given(
    allocs=eighths_allocations,
    gpus_per_node=st.sampled_from([2, 4, 6, 8]),
    domain=st.sampled_from([1, 2, 4, 8]),
    nodes=st.integers(1, 3),
)
def test_property_placement_agrees_with_search_packing(
    allocs: list[Allocation], gpus_per_node: int, domain: int, nodes: int
) -> None:
    """Whatever search's packing conditions accept, placement places (and vice versa),
    for shares of any k/8."""
    from planner.search.packing import fits

    unique = {a.shape: a for a in allocs if a.tp == 1 or a.share_eighths == 8}
    cluster = Cluster((NodePool("p", H100, nodes, gpus_per_node, min(domain, gpus_per_node)),))
    counts: dict[int, int] = defaultdict(int)
    for a in unique.values():
        counts[a.shape.units] += a.replicas
    accepted = fits(counts, cluster, H100)
    try:
        p = place(make_plan(*unique.values()), cluster)
    except PlacementError:
        assert not accepted
        return
    assert accepted
    check_invariants(p, cluster)


def test_deploy_plan_searches_again_without_the_failed_shape() -> None:
    """Search and placement disagree (a TP-4 plan on 2-GPU NVLink domains): deploy_plan
    searches again without that shape and emits the plan that places."""
    from deploy_helpers import make_catalog
    from search_factory import cluster as s_cluster
    from search_factory import model, problem, shape

    from planner.jobs.deploying import deploy_plan
    from planner.render.settings import RenderOptions
    from planner.search import SolveSettings, search_plan

    cl = s_cluster(gpus_per_node=4, nodes=1, domain=2)
    prob = problem(
        [
            model(
                "llama-3.1-8b",
                [
                    shape("llama-3.1-8b", tp=4, capacity=40),
                    shape("llama-3.1-8b", tp=2, capacity=18),
                ],
            )
        ],
        rate=10.0,
        cl=cl,
    )
    bad = make_plan(Allocation("llama-3.1-8b", "G", 4, 8, 1))
    seen: list[str] = []

    def research(plan: object, error: PlacementError) -> object:
        seen.append(error.constraint)
        narrowed = prob.without_shape(error.model, error.gpu_type, error.tp, error.constraint)
        assert all(s.key.tp != 4 for s in narrowed.models[0].shapes)
        return search_plan(narrowed, SolveSettings(num_workers=1, time_limit_s=10))

    got = deploy_plan(bad, cl, make_catalog(), RenderOptions(), research)  # type: ignore[arg-type]
    assert seen == ["nvlink-domain"]
    assert {a.tp for a in got.plan.allocations} == {2}
    check_invariants(got.placement, cl)
    assert "kind: placement" in got.placement_text
