"""The solver against exhaustive enumeration, and the packing algebra against first-fit
and an exhaustive bin packer.

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
from planner.search.packing import (
    SHARE_PATTERNS,
    first_fit_decreasing,
    fits,
    pack_shares,
    pattern_counts,
    tp_capacities,
)
from planner.search.problem import ModelCandidates, SearchProblem
from planner.search.validate import (
    check_allocations,
    check_plan,
    gpus_used,
    mean_latency_s,
    sustained_scale,
)
from planner.types.cluster import Cluster, NodePool
from planner.types.plan import Allocation

EXACT = SolveSettings(resolution=0.0, num_workers=1, mix=MixBound(None, 0.0), latency_tolerance=0.0)


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
            value = sustained_scale(p, combo)
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
                st.sampled_from([(1, 1.0), (2, 1.0), (4, 1.0)] + [(1, k / 8) for k in range(1, 8)]),
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
                    burst_s=draw(st.sampled_from([0.0, 0.0, 0.3, 1.5])),
                )
            )
        # Fan-out bursts: a burst's calls spread over the replicas (`burst_share`).
        burst = draw(st.sampled_from([1.0, 1.0, 3.0, 12.0]))
        models.append(
            model(name, shapes, heads=draw(st.sampled_from([4, 6, 8])), burst_calls=burst)
        )
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
        work={m.model: draw(st.sampled_from([1.0, 0.5, 2.5])) for m in models},
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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems(), st.sampled_from([0.01, 0.05, 0.3]))
def test_lexicographic_default_matches_brute_force(p: SearchProblem, tolerance: float) -> None:
    """Lowest latency, then the fewest GPUs among plans within the tolerance of it."""
    valid = [c for c in all_combos(p) if not check_allocations(p, c)]
    try:
        plan = search_plan(p, replace(EXACT, latency_tolerance=tolerance))
    except SearchInfeasible:
        assert not valid
        return
    assert valid
    lowest = min(mean_latency_s(p, c) for c in valid)
    allowed = lowest * (1 + tolerance)
    assert mean_latency_s(p, plan.allocations) <= allowed + 1e-5
    # integer-microsecond coefficients: compare with plans clearly inside the tolerance
    fewest = min(gpus_used(c) for c in valid if mean_latency_s(p, c) <= allowed - 1e-5)
    assert plan.gpus_used <= fewest + 1e-9


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
        st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64]), st.integers(0, 6), max_size=6
    ),
    pools=st.lists(
        st.tuples(st.integers(1, 3), st.integers(1, 8), st.integers(1, 8)), min_size=1, max_size=2
    ),
)
def test_packing_conditions_equal_first_fit(
    counts: dict[int, int], pools: list[tuple[int, int, int]]
) -> None:
    cl = Cluster(tuple(NodePool(f"p{i}", "G", n, g, d) for i, (n, g, d) in enumerate(pools)))
    assert fits(counts, cl, "G") == (first_fit_decreasing(counts, cl, "G") == 0)


def exhaustive_fit(items: list[int], bins: int) -> bool:
    """Whether the shares fit `bins` GPUs of 8 eighths: every assignment, largest first,
    skipping bins with the same room as an earlier one (symmetric choices)."""
    room = [8] * bins

    def place(i: int) -> bool:
        if i == len(items):
            return True
        tried = set()
        for b in range(bins):
            if room[b] >= items[i] and room[b] not in tried:
                tried.add(room[b])
                room[b] -= items[i]
                if place(i + 1):
                    return True
                room[b] += items[i]
        return False

    return place(0)


@settings(max_examples=400, deadline=None)
@given(
    items=st.lists(st.integers(1, 7), max_size=11),
    bins=st.integers(0, 5),
)
def test_pack_shares_is_exact(items: list[int], bins: int) -> None:
    counts: dict[int, int] = {}
    for s in items:
        counts[s] = counts.get(s, 0) + 1
    packed = pack_shares(counts, bins)
    assert (packed is not None) == exhaustive_fit(sorted(items, reverse=True), bins)
    if packed is not None:
        assert len(packed) <= bins
        assert all(sum(g) <= 8 for g in packed)
        assert sorted(s for g in packed for s in g) == sorted(items)
        # the packing as pattern counts (the search's hint) covers every share
        y = pattern_counts(packed)
        assert sum(y) == len(packed)
        for s, n in counts.items():
            assert sum(p.count(s) * k for p, k in zip(SHARE_PATTERNS, y, strict=True)) >= n


def test_first_fit_alone_is_not_exact_for_eighths() -> None:
    # [4, 2, 2] + [3, 3, 2] fills 2 GPUs; first-fit decreasing would open a third.
    assert pack_shares({4: 1, 3: 2, 2: 3}, 2) is not None
    cl = Cluster((NodePool("p", "G", 1, 2, 2),))
    assert fits({4: 1, 3: 2, 2: 3}, cl, "G")
    assert not fits({4: 1, 3: 2, 2: 3, 1: 1}, cl, "G")


def test_first_fit_places_mixed_sizes_exactly() -> None:
    # One 8-GPU node: TP4 + TP2 + 1 + shares of 5/8, 3/8 and four eighths = 8 GPUs exactly.
    cl = Cluster((NodePool("p", "G", 1, 8, 8),))
    full = {32: 1, 16: 1, 5: 1, 3: 1, 1: 8}
    assert sum(k * v for k, v in full.items()) == 64
    assert first_fit_decreasing(full, cl, "G") == 0
    assert first_fit_decreasing({**full, 1: 9}, cl, "G") == 1
    assert tp_capacities(cl, "G")[8] == 64
    # The search's conditions agree with first fit on both counts.
    assert fits(full, cl, "G") and not fits({**full, 1: 9}, cl, "G")


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
