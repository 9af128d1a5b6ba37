"""Search and placement agree: every plan the search emits is placed by `planner.place`."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from search_factory import model, problem, shape

from planner.place import place
from planner.search import SearchInfeasible, SolveSettings, search_plan
from planner.search.problem import SearchProblem
from planner.types.cluster import Cluster, NodePool

SIZES = [(1, k / 8) for k in range(1, 9)] + [(2, 1.0), (4, 1.0), (8, 1.0)]


@st.composite
def packing_problems(draw: st.DrawFn) -> SearchProblem:
    models = []
    for i in range(draw(st.integers(1, 8))):
        name = f"m{i}"
        shapes = [
            shape(name, tp=tp, fraction=f, capacity=draw(st.floats(0.5, 10.0)) * tp * f)
            for tp, f in draw(st.lists(st.sampled_from(SIZES), min_size=1, max_size=3, unique=True))
        ]
        models.append(model(name, shapes, heads=8))
    pools = tuple(
        NodePool(f"p{j}", "G", draw(st.integers(1, 3)), g, draw(st.integers(1, g)))
        for j, g in enumerate(draw(st.lists(st.integers(1, 8), min_size=1, max_size=2)))
    )
    return problem(models, rate=draw(st.floats(0.05, 3.0)), cl=Cluster(pools))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packing_problems(), st.sampled_from(["min-latency", "min-gpus", "max-throughput"]))
def test_every_plan_is_placeable(p: SearchProblem, objective: str) -> None:
    try:
        plan = search_plan(p, SolveSettings(objective=objective))  # type: ignore[arg-type]
    except SearchInfeasible:
        return
    placement = place(plan, p.cluster)  # raises PlacementError when they disagree
    # Every planned replica got a GPU of its type, and no GPU holds more than one GPU.
    assert len(placement.replicas) == sum(a.replicas for a in plan.allocations)
    pools = {pool.name: pool for pool in p.cluster.pools}
    for r in placement.replicas:
        assert pools[r.pool].gpu_type == r.gpu_type and len(r.gpu_indices) == r.tp
    assert all(0 <= u <= 8 for n in placement.nodes for u in n.used_eighths)
    placed_units = sum(u for n in placement.nodes for u in n.used_eighths)
    assert placed_units == plan.units_used
