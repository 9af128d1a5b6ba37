"""Simulation with the real analytic profiles and the shipped RAG trace; `planner evaluate`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from cli_helpers import invoke
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import ConfigError, InputError
from planner.io.allocation import load_allocation
from planner.io.configs import load_catalog
from planner.io.traces import read_calls
from planner.profiles.analytic import AnalyticProfiles
from planner.simulate import ArrivalSpec, build_replicas, compile_workload, simulate
from planner.simulate.rates import SimSettings, capacity_bound, max_sustainable_rate
from planner.types.calls import CallTable
from planner.types.plan import Allocation, Plan, SolverFacts

GEN = "meta-llama/Llama-3.1-8B-Instruct"
RERANK = "Qwen/Qwen3-Reranker-0.6B"
H100 = "H100-SXM-80GB"


@pytest.fixture(scope="module")
def rag(repo: Path) -> CallTable:
    return read_calls(repo / "traces" / "rag.parquet")


@pytest.fixture(scope="module")
def profiles() -> AnalyticProfiles:
    return AnalyticProfiles(load_catalog())


def plan_of(*allocations: Allocation) -> Plan:
    facts = SolverFacts("HAND", math.nan, math.nan, math.nan, 0.0)
    return Plan("min-latency", tuple(allocations), (), (), facts, gpus_total=8)


def test_simulate_is_deterministic_and_matches_load(
    rag: CallTable, profiles: AnalyticProfiles
) -> None:
    plan = plan_of(Allocation(GEN, H100, 1, 8, 1), Allocation(RERANK, H100, 1, 4, 1))
    spec = ArrivalSpec(0.5, workflows=600)
    a = simulate(rag, plan, profiles, spec, seed=3, warmup_s=100.0)
    b = simulate(rag, plan, profiles, spec, seed=3, warmup_s=100.0)
    assert a == b
    assert a.sustainable
    assert a.throughput_per_s == pytest.approx(a.offered_rate_per_s, rel=0.05)
    # Utilisation = offered work / capacity: rate x calls per workflow / capacity per s.
    w = compile_workload(rag)
    replicas = build_replicas(w, plan.allocations, profiles)
    n_m = w.llm_calls_per_workflow()
    for m, name in enumerate(w.models):
        cap = sum(r.curve.capacity_per_s for r in replicas if r.model == m)
        stats = a.model(name)
        assert stats is not None
        assert stats.utilisation == pytest.approx(a.offered_rate_per_s * n_m[m] / cap, rel=0.1)


def test_more_replicas_sustain_more(rag: CallTable, profiles: AnalyticProfiles) -> None:
    w = compile_workload(rag)
    settings = SimSettings(workflows=800)
    one = build_replicas(
        w, [Allocation(GEN, H100, 1, 4, 1), Allocation(RERANK, H100, 1, 1, 1)], profiles
    )
    two = build_replicas(
        w, [Allocation(GEN, H100, 1, 4, 2), Allocation(RERANK, H100, 1, 1, 2)], profiles
    )
    r1 = max_sustainable_rate(w, one, settings)
    r2 = max_sustainable_rate(w, two, settings)
    assert r2.max_rate_per_s > 1.6 * r1.max_rate_per_s
    # The simulated rate stays near the curves' capacity bound (within fan-out losses).
    for found, reps in ((r1, one), (r2, two)):
        assert found.max_rate_per_s == pytest.approx(capacity_bound(w, reps), rel=0.1)


def test_a_model_without_replicas_is_an_input_error(
    rag: CallTable, profiles: AnalyticProfiles
) -> None:
    plan = plan_of(Allocation(GEN, H100, 1, 8, 1))
    with pytest.raises(InputError, match="no replica of it"):
        simulate(rag, plan, profiles, ArrivalSpec(0.1), seed=0, warmup_s=0.0)


def test_allocation_file(tmp_path: Path) -> None:
    path = tmp_path / "alloc.yaml"
    path.write_text(
        "schema_version: 1\nallocations:\n"
        f"  - {{model: {GEN}, gpu_type: {H100}, replicas: 2}}\n"
        f"  - {{model: {RERANK}, gpu_type: {H100}, gpu_fraction: 0.5, replicas: 1}}\n"
    )
    assert load_allocation(path) == (  # sorted
        Allocation(RERANK, H100, 1, 4, 1),
        Allocation(GEN, H100, 1, 8, 2),
    )
    path.write_text("schema_version: 1\nallocations:\n  - {model: x, gpu_type: y, replica: 1}\n")
    with pytest.raises(ConfigError, match='did you mean "replicas"'):
        load_allocation(path)


@pytest.fixture(scope="module")
def rag_plan(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import dataclasses

    from planner.aggregate import aggregate_pipeline
    from planner.catalog import resolve_model
    from planner.io.plan_file import write_plan
    from planner.search import SolveSettings, search_plan
    from planner.search.problem import build_problem
    from planner.types.cluster import uniform_cluster

    calls = read_calls(repo / "traces" / "rag.parquet")
    apl = aggregate_pipeline(calls)
    catalog = load_catalog()
    specs = {m: dataclasses.replace(resolve_model(catalog, m), name=m) for m in apl.models()}
    problem = build_problem(apl, AnalyticProfiles(catalog), uniform_cluster(2), specs)
    plan = search_plan(problem, SolveSettings(time_limit_s=5, num_workers=1))
    return write_plan(plan, tmp_path_factory.mktemp("plan"))


def test_evaluate_json_compares_plan_with_baselines(repo: Path, rag_plan: Path) -> None:
    args = ["evaluate", str(repo / "traces" / "rag.parquet"), "--plan", str(rag_plan)]
    result = CliRunner().invoke(app, [*args, "--json", "--calls", "5000"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc["baselines"]) == {"uniform", "independent", "greedy"}
    for entry in (doc["plan"], *doc["baselines"].values(), doc["prediction_error"]):
        assert "max_rate_per_s" in entry and "mean_latency_s" in entry
    plan = doc["plan"]
    assert plan["max_rate_per_s"] > doc["target_rate_per_s"]
    assert plan["sustainable_at_target"]
    assert {m["model"] for m in plan["models"]} == {GEN, RERANK}
    # per workflow type: the APL's mean and p95 next to the simulator's
    (rag,) = plan["prediction_by_workflow_type"].values()
    assert rag["simulated_p95_latency_s"] >= rag["simulated_mean_latency_s"] > 0
    assert rag["predicted_p95_latency_s"] >= rag["predicted_mean_latency_s"] > 0
    sim = rag["simulated_mean_latency_s"]
    assert rag["mean_latency_error"] == pytest.approx(
        (rag["predicted_mean_latency_s"] - sim) / sim, rel=1e-3, abs=1e-5
    )
    assert "backlog" in doc["criterion"]
    # The plan's predicted prefix-cache hit rates beside the block-level LRU replay: this
    # plan was made without the cache (predicted 0), vLLM's cache still hits.
    hits = doc["prefix_hit_rate"]
    assert set(hits) == {m["model"] for m in plan["models"]}
    for entry in hits.values():
        assert entry["predicted"] == 0 and entry["routing"] == "balanced"
        assert 0 < entry["simulated"] < 1 and entry["evidence"] == "hashes"
    # Every probe at or below the max rate was sustainable, every probe above was not.
    probes = plan["rate_probes"]
    assert probes and all(p["sustainable"] is not None for p in probes)
    again = CliRunner().invoke(app, [*args, "--json", "--calls", "5000"])
    assert again.output == result.output  # deterministic


def test_evaluate_bad_inputs_exit_2_with_one_line(
    repo: Path, rag_plan: Path, tmp_path: Path
) -> None:
    trace = str(repo / "traces" / "rag.parquet")
    cases = [
        ["--plan", str(tmp_path / "missing.yaml")],
        ["--plan", str(rag_plan), "--arrivals", "bursty"],
    ]
    beam = str(repo / "traces" / "beam_search.csv.gz")
    for extra in cases:
        code, _, stderr = invoke("evaluate", trace, *extra)
        assert code == 2, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    code, _, stderr = invoke("evaluate", beam, "--plan", str(rag_plan))
    assert code == 2 and "workflow types rag" in stderr, stderr


def test_evaluate_leaves_out_the_workflow_types_the_plan_does_not_serve(
    repo: Path, rag_plan: Path, tmp_path: Path
) -> None:
    # A max-throughput plan on a cluster too small for every model serves some types only.
    import shutil

    for name in ("rag.parquet", "beam_search.csv.gz"):
        shutil.copy(repo / "traces" / name, tmp_path / name)
    args = ["evaluate", str(tmp_path), "--plan", str(rag_plan), "--json", "--calls", "3000"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert list(doc["plan"]["prediction_by_workflow_type"]) == ["rag"]
    assert doc["plan"]["max_rate_per_s"] > 0
    (note,) = doc["notes"]
    assert "does not serve workflow type(s) beam_search" in note and "on rag only" in note


def test_evaluate_with_a_user_allocation(repo: Path, rag_plan: Path, tmp_path: Path) -> None:
    trace = str(repo / "traces" / "rag.parquet")
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "schema_version: 1\nallocations:\n"
        f"  - {{model: {GEN}, gpu_type: {H100}, replicas: 1}}\n"
        f"  - {{model: {RERANK}, gpu_type: {H100}, gpu_fraction: 0.5, replicas: 1}}\n"
    )
    args = ["evaluate", trace, "--plan", str(rag_plan), "--allocation", str(mine)]
    result = CliRunner().invoke(app, [*args, "--json", "--calls", "3000"])
    assert result.exit_code == 0, result.output
    user = json.loads(result.output)["baselines"]["user"]
    assert user["gpus"] == 1.5 and user["max_rate_per_s"] > 0
    too_big = tmp_path / "big.yaml"
    too_big.write_text(
        f"schema_version: 1\nallocations:\n  - {{model: {GEN}, gpu_type: {H100}, replicas: 3}}\n"
    )
    code, _, stderr = invoke(*args[:-1], str(too_big))
    assert code == 2 and "does not fit" in stderr, stderr


def test_predicted_p95_over_a_mix_is_the_mixture_quantile() -> None:
    import numpy as np

    from planner.simulate.evaluate import predicted_p95_latency_s
    from planner.types.plan import WorkflowPrediction

    one = WorkflowPrediction("a", 1.0, 2.0, 10.0, None, 25.0)
    assert predicted_p95_latency_s([one]) == 25.0
    flows = [one, WorkflowPrediction("b", 3.0, 5.0, 2.0, None, 4.0)]
    # The same mixture sampled: each type log-normal with its mean and p95.
    rng = np.random.default_rng(0)
    samples = []
    for w, n in ((flows[0], 100_000), (flows[1], 300_000)):
        z = 1.6448536269514722
        gap = math.log(w.p95_latency_s / w.mean_latency_s)  # type: ignore[operator]
        sigma = z - math.sqrt(z * z - 2 * gap)
        mu = math.log(w.mean_latency_s) - sigma * sigma / 2
        samples.append(rng.lognormal(mu, sigma, size=n))
    expected = float(np.percentile(np.concatenate(samples), 95))
    assert predicted_p95_latency_s(flows) == pytest.approx(expected, rel=0.01)
