"""Cache-aware search: each option's own hit rate and routing, checked by the LRU replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.aggregate import aggregate_pipeline
from planner.aggregate.reuse import prefix_references
from planner.catalog import resolve_model
from planner.io.configs import load_catalog
from planner.io.traces import read_calls
from planner.profiles.analytic import AnalyticProfiles
from planner.search import SolveSettings, search_plan
from planner.search.predict import make_plan
from planner.search.problem import build_problem
from planner.search.validate import check_plan
from planner.simulate.candidates import canonical_names
from planner.simulate.prefix_hits import check_prefix_hits, observed_calls_per_s
from planner.types.cluster import uniform_cluster

TRACE = Path(__file__).resolve().parents[1] / "traces" / "coding_agent.jsonl.gz"


def test_cache_aware_plan_on_the_coding_agent() -> None:
    calls = read_calls(TRACE)
    apl = aggregate_pipeline(calls)
    catalog = load_catalog()
    profiles = AnalyticProfiles(catalog)
    specs = {n: resolve_model(catalog, n) for n in apl.models()}
    cluster = uniform_cluster(32, "H100-SXM-80GB", 8, 8)
    references = prefix_references(calls)
    aware = build_problem(apl, profiles, cluster, specs, reuse=references)
    unaware = build_problem(apl, profiles, cluster, specs)
    settings = SolveSettings(objective="max-throughput", time_limit_s=20.0)
    plan = search_plan(aware, settings)
    assert not check_plan(
        aware.scaled(plan.workflows[0].target_rate_per_s / aware.workflows[0].rate_per_s), plan
    )
    replicas = {m.model: 0 for m in plan.models}
    for a in plan.allocations:
        replicas[a.model] += a.replicas
        assert a.kv_cache_tokens > 0
    for m in plan.models:
        assert 0 < m.prefix_hit_rate < 1
        # A session re-sends its growing context: with several replicas, keeping a
        # session on one replica keeps its prefix in one cache.
        assert m.routing == ("session" if replicas[m.model] > 1 else "balanced")
    names = canonical_names(catalog)
    checks = check_prefix_hits(plan, references, names, observed_calls_per_s(apl, names))
    assert {c.model for c in checks} == set(replicas)
    for c in checks:
        assert abs(c.error_pp) < 5.0, c
    # The same allocation planned without the cache: no hits, slower calls.
    rate = plan.workflows[0].target_rate_per_s / unaware.workflows[0].rate_per_s
    blind = make_plan(unaware.scaled(rate), plan.allocations, plan.objective, plan.solver)
    assert all(m.prefix_hit_rate == 0 and m.routing == "balanced" for m in blind.models)
    by_model = {m.model: m for m in plan.models}
    for m in blind.models:
        assert m.call_latency_s > by_model[m.model].call_latency_s
        assert m.capacity_per_s < by_model[m.model].capacity_per_s
    with pytest.raises(KeyError):
        aware.model("no-such-model")
