"""The solver against exhaustive enumeration, and the packing algebra against first-fit.

Brute force enumerates per model every (shape, replica count) and every mixture of two
shapes with any counts, straight from the problem (including shapes and counts that are
invalid), keeps what `check_allocations` accepts and scores with the objective
evaluators: nothing here goes through options.py, mixtures.py or the CP-SAT model. The
solver runs with every count and every mixture (`EXACT`).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from search_factory import model, problem, shape

from planner.search import SearchInfeasible, SolveSettings, search_plan
from planner.search.mixtures import MixBound
from planner.search.packing import first_fit_decreasing, fits_thresholds, threshold_capacities
from planner.search.problem import ModelCandidates, SearchProblem
from planner.search.validate import (
    check_allocations,
    check_plan,
    gpus_used,
    max_scale,
    mean_latency_s,
)
from planner.types.cluster import Cluster, NodePool
from planner.types.plan import Allocation

EXACT = SolveSettings(resolution=0.0, num_workers=1, mix=MixBound(None, 0.0))


def model_choices(p: SearchProblem, m: ModelCandidates) -> list[tuple[Allocation, ...]]:
    """One or two shapes of `m` with any counts that fit the cluster's units, minus those
    the validator rejects for this model alone (they fail in every combination)."""
    units = p.cluster.gpus * 8
    singles = [
        Allocation(m.model, s.key.gpu_type, s.key.tp, s.key.share_eighths, c)
        for s in m.shapes
        for c in range(1, units // max(1, s.units) + 1)
    ]
    choices = [(a,) for a in singles]
    choices += [
        (a, b)
        for a, b in itertools.combinations(singles, 2)
        if a.shape != b.shape and a.gpus + b.gpus <= p.cluster.gpus
    ]
    others = tuple(o.model for o in p.models if o.model != m.model)
    return [
        c
        for c in choices
        if all(
            e.message.startswith(tuple(f"{o}:" for o in others)) for e in check_allocations(p, c)
        )
    ]


def all_combos(p: SearchProblem) -> list[tuple[Allocation, ...]]:
    per_model = [model_choices(p, m) for m in p.models]
    return [tuple(a for c in combo for a in c) for combo in itertools.product(*per_model)]


def brute(p: SearchProblem, objective: str) -> float | None:
    best: float | None = None
    # max-throughput: valid at some scale > 0, so everything but the utilisation cap holds
    tiny = p.scaled(1e-9)
    for combo in all_combos(tiny if objective == "max-throughput" else p):
        if objective == "max-throughput":
            if check_allocations(tiny, combo):
                continue
            value = max_scale(p, combo)
            best = value if best is None else max(best, value)
            continue
        if check_allocations(p, combo):
            continue
        value = mean_latency_s(p, combo) if objective == "min-latency" else gpus_used(combo)
        best = value if best is None else min(best, value)
    return best


@st.composite
def small_problems(draw: st.DrawFn) -> SearchProblem:
    n_models = draw(st.integers(1, 2))
    models = []
    for i in range(n_models):
        name = f"m{i}"
        shapes = []
        for tp, frac in draw(
            st.lists(
                st.sampled_from([(1, 1.0), (1, 0.5), (2, 1.0), (4, 1.0), (1, 0.25)]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        ):
            shapes.append(
                shape(
                    name,
                    tp=tp,
                    fraction=frac,
                    capacity=draw(st.floats(1.0, 20.0)),
                    base_s=draw(st.floats(0.1, 3.0)),
                    fits=draw(st.booleans()) or draw(st.booleans()),
                )
            )
        models.append(model(name, shapes, heads=draw(st.sampled_from([4, 6, 8]))))
    gpn = draw(st.integers(1, 3))
    nodes = draw(st.integers(1, 2))
    cl = Cluster((NodePool("p", "G", nodes, gpn, draw(st.integers(1, gpn))),))
    slo = draw(st.none() | st.floats(1.0, 8.0))
    return problem(
        models,
        rate=draw(st.floats(0.5, 20.0)),
        cl=cl,
        slo=slo,
        cap=draw(st.sampled_from([0.7, 0.85])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems())
def test_min_latency_matches_brute_force(p: SearchProblem) -> None:
    best = brute(p, "min-latency")
    try:
        plan = search_plan(p, EXACT)
    except SearchInfeasible as err:
        assert best is None, f"solver says infeasible ({err}); brute force found {best}"
        return
    assert check_plan(p, plan) == ()
    assert best is not None
    # coefficients are integer microseconds: a few us per model of slack
    assert plan.solver.objective == pytest.approx(best, abs=1e-5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems())
def test_min_gpus_matches_brute_force(p: SearchProblem) -> None:
    best = brute(p, "min-gpus")
    try:
        plan = search_plan(p, replace(EXACT, objective="min-gpus"))
    except SearchInfeasible:
        assert best is None
        return
    assert best is not None
    assert plan.solver.objective == pytest.approx(best)
    assert plan.gpus_used == pytest.approx(best)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems())
def test_max_throughput_matches_brute_force(p: SearchProblem) -> None:
    p = replace(p, workflows=tuple(replace(w, slo_s=None) for w in p.workflows))
    best = brute(p, "max-throughput")
    try:
        plan = search_plan(p, replace(EXACT, objective="max-throughput"))
    except SearchInfeasible:
        assert best is None or best < 1e-6
        return
    assert best is not None
    assert plan.solver.status == "OPTIMAL"  # tiny instances: every probe is decided
    # scale on a 1e-6 grid, rounded down (one grid step per replica at most)
    assert best - 1e-4 * max(1.0, best) <= plan.solver.objective <= best + 1e-9


def test_resolution_keeps_objective_within_its_bound() -> None:
    a = model("a", [shape("a", tp=t, capacity=10 * t**0.8, base_s=1 / t**0.5) for t in (1, 2, 4)])
    b = model("b", [shape("b", fraction=f, capacity=8 * f, base_s=0.8) for f in (1.0, 0.5, 0.25)])
    p = problem([a, b], rate=12.0)
    exact = search_plan(p, SolveSettings(resolution=0.0)).solver.objective
    coarse = search_plan(p, SolveSettings(resolution=0.05)).solver.objective
    assert exact <= coarse <= exact * 1.05 + 1e-9


@settings(max_examples=300, deadline=None)
@given(
    counts=st.dictionaries(
        st.sampled_from([1, 2, 4, 8, 16, 32, 64]), st.integers(0, 6), max_size=5
    ),
    pools=st.lists(
        st.tuples(st.integers(1, 3), st.integers(1, 8), st.integers(1, 8)), min_size=1, max_size=2
    ),
)
def test_threshold_condition_equals_first_fit(
    counts: dict[int, int], pools: list[tuple[int, int, int]]
) -> None:
    cl = Cluster(tuple(NodePool(f"p{i}", "G", n, g, d) for i, (n, g, d) in enumerate(pools)))
    caps = threshold_capacities(cl, "G")
    assert fits_thresholds(counts, caps) == (first_fit_decreasing(counts, cl, "G") == 0)


def test_first_fit_places_mixed_sizes_exactly() -> None:
    # One 8-GPU node: TP4 + TP2 + 1 + a half + four eighths = 8 GPUs exactly.
    cl = Cluster((NodePool("p", "G", 1, 8, 8),))
    full = {32: 1, 16: 1, 8: 1, 4: 1, 1: 4}
    assert sum(k * v for k, v in full.items()) == 64
    assert first_fit_decreasing(full, cl, "G") == 0
    assert first_fit_decreasing({**full, 1: 5}, cl, "G") == 1
    # The search's volume conditions agree with first fit on both counts.
    caps = threshold_capacities(cl, "G")
    assert fits_thresholds(full, caps) and not fits_thresholds({**full, 1: 5}, caps)


@st.composite
def mixed_problems(draw: st.DrawFn) -> SearchProblem:
    """Two GPU types, two workflow types sharing a model, mean and p95 SLOs."""
    from planner.search.problem import ModelUse, WorkflowDemand

    models = []
    for name in ("x", "y"):
        shapes = []
        for gpu in ("G", "H"):
            for tp, frac in draw(
                st.lists(
                    st.sampled_from([(1, 1.0), (1, 0.5), (2, 1.0)]),
                    min_size=1,
                    max_size=2,
                    unique=True,
                )
            ):
                shapes.append(
                    shape(
                        name,
                        tp=tp,
                        fraction=frac,
                        gpu_type=gpu,
                        capacity=draw(st.floats(1.0, 15.0)),
                        base_s=draw(st.floats(0.1, 2.0)),
                    )
                )
        models.append(model(name, shapes, heads=8))
    pools = (
        NodePool("g", "G", 1, draw(st.integers(1, 3)), 2),
        NodePool("h", "H", draw(st.integers(1, 2)), 1, 1),
    )
    flows = (
        WorkflowDemand(
            "a", draw(st.floats(0.2, 5.0)), (ModelUse("x", 2.0, 1.5), ModelUse("y", 1.0, 1.0)), 0.3,
            draw(st.none() | st.floats(2.0, 10.0)), "p95", draw(st.floats(1.0, 2.0)),
        ),
        WorkflowDemand(
            "b", draw(st.floats(0.2, 5.0)), (ModelUse("y", 3.0, 2.0),), 0.1,
            draw(st.none() | st.floats(1.0, 6.0)),
        ),
    )  # fmt: skip
    return SearchProblem(flows, tuple(models), Cluster(pools), 0.85)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_problems())
def test_mixed_types_and_slos_match_brute_force(p: SearchProblem) -> None:
    best = brute(p, "min-latency")
    try:
        plan = search_plan(p, EXACT)
    except SearchInfeasible:
        assert best is None
        return
    assert check_plan(p, plan) == ()
    assert best is not None
    assert plan.solver.objective == pytest.approx(best, abs=1e-5)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_problems(), st.sampled_from(["min-latency", "min-gpus"]))
def test_default_mixtures_never_worse_than_one_shape(p: SearchProblem, objective: str) -> None:
    # The default (bounded) option set contains every single-shape option up to dominance.
    one = SolveSettings(objective=objective, mix=None)  # type: ignore[arg-type]
    try:
        single = search_plan(p, one)
    except SearchInfeasible:
        return
    mixed = search_plan(p, replace(one, mix=MixBound()))
    assert check_plan(p, mixed) == ()
    assert mixed.solver.objective <= single.solver.objective + 1e-5
