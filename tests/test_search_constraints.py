"""One constraint family at a time, on tiny hand-built problems (feasible and infeasible)."""

from __future__ import annotations

import pytest
from search_factory import cluster, model, problem, shape

from planner.place import place
from planner.search import SearchInfeasible, SolveSettings, search_plan
from planner.search.validate import check_plan
from planner.types.cluster import Cluster, NodePool

EXACT = SolveSettings(resolution=0.0, num_workers=1)


def solve(p, **kw):  # type: ignore[no-untyped-def]
    plan = search_plan(p, SolveSettings(resolution=0.0, num_workers=1, **kw))
    assert (
        check_plan(
            p if kw.get("objective") != "max-throughput" else p.scaled(plan.solver.objective), plan
        )
        == ()
    )
    return plan


def test_memory_fit_excludes_shapes_that_do_not_fit() -> None:
    m = model("a", [shape("a", tp=1, fits=False, base_s=0.1), shape("a", tp=2, base_s=1.0)])
    plan = solve(problem([m], rate=1.0))
    assert {a.tp for a in plan.allocations} == {2}


def test_memory_fit_infeasible_names_the_model() -> None:
    m = model("big", [shape("big", tp=t, fits=False) for t in (1, 2, 4, 8)])
    with pytest.raises(SearchInfeasible) as err:
        solve(problem([m]))
    assert err.value.binding == "memory fit"
    assert "big" in str(err.value)
    assert err.value.exit_code == 3


def test_tp_must_divide_attention_heads() -> None:
    # 6 heads: TP 4 does not divide them, TP 2 does.
    only4 = model("a", [shape("a", tp=4)], heads=6)
    with pytest.raises(SearchInfeasible) as err:
        solve(problem([only4]))
    assert err.value.binding == "tensor parallelism"
    ok = model("a", [shape("a", tp=4, base_s=0.1), shape("a", tp=2)], heads=6)
    assert solve(problem([ok])).allocations[0].tp == 2


def test_tp_stays_inside_the_nvlink_domain() -> None:
    m = model("a", [shape("a", tp=4, base_s=0.1), shape("a", tp=2, base_s=1.0)])
    plan = solve(problem([m], cl=cluster(gpus_per_node=8, domain=2)))
    assert plan.allocations[0].tp == 2
    with pytest.raises(SearchInfeasible):
        solve(problem([model("a", [shape("a", tp=4)])], cl=cluster(gpus_per_node=8, domain=2)))


def test_tp_above_one_takes_whole_gpus() -> None:
    m = model("a", [shape("a", tp=2, fraction=0.5, base_s=0.1), shape("a", tp=1, base_s=1.0)])
    plan = solve(problem([m]))
    assert plan.allocations[0].tp == 1


def test_fractions_on_one_gpu_sum_to_at_most_one() -> None:
    # Three models, each 4/s on a half-GPU replica of 5/s (0.8 < 0.85): 1.5 GPUs of shares.
    models = [model(n, [shape(n, fraction=0.5, capacity=5.0)]) for n in ("a", "b", "c")]
    with pytest.raises(SearchInfeasible) as err:
        solve(problem(models, rate=4.0, cl=cluster(gpus_per_node=1)))
    assert err.value.gpus_needed == pytest.approx(1.5)
    plan = solve(problem(models, rate=4.0, cl=cluster(gpus_per_node=2)))
    assert plan.gpus_used == 1.5


def test_one_share_of_a_gpu_per_model() -> None:
    # 8/s needs two half-GPU replicas of 5/s; placement never puts two shares of one
    # model on a GPU, so the model takes a whole GPU instead.
    m = model("a", [shape("a", fraction=0.5, capacity=5.0, base_s=0.5), shape("a", capacity=10.0)])
    single = solve(problem([m], rate=8.0, cl=cluster(gpus_per_node=2)), mix=None)
    assert [a.gpu_fraction for a in single.allocations] == [1.0]
    # Mixed: one whole GPU plus at most one (faster) half, never two halves.
    mixed = solve(problem([m], rate=8.0, cl=cluster(gpus_per_node=2)))
    assert sum(a.replicas for a in mixed.allocations if a.gpu_fraction < 1) <= 1
    only_halves = model("a", [shape("a", fraction=0.5, capacity=5.0)])
    with pytest.raises(SearchInfeasible):
        solve(problem([only_halves], rate=8.0, cl=cluster(gpus_per_node=2)))


def test_gpu_budget_reports_saturation_and_gpus_that_suffice() -> None:
    # 22 calls/s on 10/s replicas under a 0.85 cap needs ceil(22 / 8.5) = 3 GPUs.
    m = model("a", [shape("a", capacity=10.0)])
    with pytest.raises(SearchInfeasible) as err:
        solve(problem([m], rate=22.0, cl=cluster(gpus_per_node=2)))
    assert err.value.binding == "saturation of model a"
    assert err.value.gpus_needed == 3
    assert solve(problem([m], rate=22.0, cl=cluster(gpus_per_node=3))).gpus_used == 3


def test_gpu_budget_shared_by_models_is_binding() -> None:
    a = model("a", [shape("a", capacity=10.0)])
    b = model("b", [shape("b", capacity=10.0)])
    # each needs 2 GPUs alone (15/s), together 4 > 3
    with pytest.raises(SearchInfeasible) as err:
        solve(problem([a, b], rate=15.0, cl=cluster(gpus_per_node=3)))
    assert err.value.binding == "GPU budget"
    assert err.value.gpus_needed == 4


def test_packing_respects_odd_node_sizes() -> None:
    # Two nodes of 3 GPUs: at most one TP-2 group per node, although 6 GPUs exist.
    m = model("a", [shape("a", tp=2, capacity=10.0)])
    odd = Cluster((NodePool("p", "G", 2, 3, 3),))
    plan = solve(problem([m], rate=15.0, cl=odd))
    assert plan.allocations[0].replicas == 2
    with pytest.raises(SearchInfeasible):
        solve(problem([m], rate=20.0, cl=odd))  # needs 3 TP-2 groups


def test_utilisation_cap_gives_headroom() -> None:
    m = model("a", [shape("a", capacity=10.0)])
    # 8.5/s fits one replica at cap 0.85, not at cap 0.8
    assert solve(problem([m], rate=8.5, cap=0.85)).models[0].utilisation <= 0.85
    plan = solve(problem([m], rate=8.5, cap=0.8))
    assert plan.allocations[0].replicas >= 2
    assert plan.models[0].utilisation <= 0.8


def test_slo_forces_more_capacity_or_is_infeasible() -> None:
    m = model("a", [shape("a", capacity=10.0, base_s=1.0)])
    free = solve(problem([m], rate=8.0, cl=cluster(gpus_per_node=1)))
    assert free.workflows[0].mean_latency_s > 1.6  # 0.5 s tools + a loaded replica
    tight = solve(problem([m], rate=8.0, slo=1.6))
    assert tight.workflows[0].mean_latency_s <= 1.6
    with pytest.raises(SearchInfeasible) as err:
        solve(problem([m], rate=8.0, slo=1.4))  # idle latency 1.0 + 0.5 tools > 1.4
    assert err.value.binding == "SLO of w"
    assert err.value.gpus_needed is None


def test_min_gpus_then_latency() -> None:
    m = model("a", [shape("a", capacity=10.0), shape("a", fraction=0.5, capacity=6.0, base_s=1.5)])
    # 5.5/s: one half (6/s) runs above the 0.85 cap, so 1 GPU: two halves or one whole;
    # the latency stage then prefers the faster whole GPU.
    plan = solve(problem([m], rate=5.5), objective="min-gpus")
    assert plan.solver.objective == 1.0
    assert [(a.gpu_fraction, a.replicas) for a in plan.allocations] == [(1.0, 1)]
    assert solve(problem([m], rate=5.0), objective="min-gpus").solver.objective == 0.5


def test_max_throughput_scale_is_tight() -> None:
    m = model("a", [shape("a", capacity=10.0)])
    plan = solve(problem([m], rate=1.0, cl=cluster(gpus_per_node=4)), objective="max-throughput")
    # 4 replicas x 10/s x 0.85 = 34 calls/s at 1 call per workflow of base rate 1/s.
    assert plan.solver.objective == pytest.approx(34.0, abs=1e-3)
    assert plan.solver.status == "OPTIMAL"
    assert plan.workflows[0].throughput_per_s == pytest.approx(34.0, abs=1e-3)


def test_same_problem_same_plan() -> None:
    a = model("a", [shape("a", tp=t, capacity=10 * t**0.8, base_s=1 / t**0.5) for t in (1, 2, 4)])
    b = model("b", [shape("b", fraction=f, capacity=8 * f, base_s=0.8) for f in (1.0, 0.5, 0.25)])
    p = problem([a, b], rate=12.0)
    first = search_plan(p, SolveSettings(num_workers=4))
    second = search_plan(p, SolveSettings(num_workers=4))
    assert first.allocations == second.allocations


def test_mixed_shapes_beat_every_single_shape() -> None:
    # One 3-GPU node: TP2 (20/s, 0.5 s idle) fits once, TP1 (10/s, 1 s idle) three times.
    # 25/s: TP1 x 3 runs at u = 25/30; a TP2 + TP1 mixture also has 30/s, so u = 25/30 too,
    # but two thirds of the calls go to the TP2 replica at half the latency.
    m = model("a", [shape("a", tp=2, capacity=20.0, base_s=0.5), shape("a", capacity=10.0)])
    p = problem([m], rate=25.0, cl=cluster(gpus_per_node=3))
    # ladder: 2.2 at u = 0.8, 2.7 at 0.85 (base x (1 + 0.3 u / (1 - u))); u = 5/6
    factor = 2.2 + (5 / 6 - 0.8) / 0.05 * 0.5
    single = solve(p, mix=None)
    assert [(a.tp, a.replicas) for a in single.allocations] == [(1, 3)]
    assert single.workflows[0].mean_latency_s == pytest.approx(0.5 + factor)
    mixed = solve(p)
    assert [(a.tp, a.replicas) for a in mixed.allocations] == [(1, 1), (2, 1)]
    assert mixed.workflows[0].mean_latency_s == pytest.approx(
        0.5 + (2 / 3) * 0.5 * factor + (1 / 3) * factor
    )
    assert place(mixed, p.cluster) is not None


def test_mixed_gpu_types_serve_what_no_single_type_can() -> None:
    # 15/s needs two 10/s replicas under the 0.85 cap; each GPU type has one GPU.
    m = model("a", [shape("a", gpu_type="G"), shape("a", gpu_type="H", base_s=0.8)])
    two_types = Cluster((NodePool("g", "G", 1, 1, 1), NodePool("h", "H", 1, 1, 1)))
    p = problem([m], rate=15.0, cl=two_types)
    with pytest.raises(SearchInfeasible):
        solve(p, mix=None)
    plan = solve(p)
    assert sorted((a.gpu_type, a.replicas) for a in plan.allocations) == [("G", 1), ("H", 1)]
    assert place(plan, p.cluster) is not None


def test_two_shares_of_one_model_are_never_mixed() -> None:
    # Two half-GPU shapes of 5/s: 8/s would need both halves; one share per model forbids it.
    m = model(
        "a", [shape("a", fraction=0.5, capacity=5.0), shape("a", fraction=0.25, capacity=5.0)]
    )
    with pytest.raises(SearchInfeasible):
        solve(problem([m], rate=8.0, cl=cluster(gpus_per_node=1)))
