"""Plan quality: the plan against the uniform, independent and greedy baselines, simulated.

For each shipped workload (RAG, beam search, coding agent, and the three mixed) and each
GPU budget (4, 8, 16 H100s), plans with the chosen objective (default max-throughput:
the highest common rate on the budget), builds the baselines for the plan's target rates
on the same GPUs, and simulates all of them (`planner.simulate.evaluate`): max sustainable
workflow rate, mean latency at the plan's target rate, and the APL's prediction error.
Prints one Markdown table (the `## Plan quality` section of docs/benchmarks.md).

With `--accuracy` it simulates the plan alone (no baselines) and prints the APL's
predictions against the simulation per cell and per workflow type: mean and p95 workflow
latency at the plan's target rates and the max sustainable rate (the `## APL accuracy`
section). Two more workloads are generated for it with traces/generate.py (written to a
temporary folder): `fanout` (rag and beam_search only, beam search 4x its default rate:
wide fan-out, the reranker shared by both types) and `shared` (all three types at
rag 1.0, beam_search 0.1, coding_agent 0.3 per second, seed 13: every model but the
70B shared by two types).

    PYTHONPATH=$PWD python benchmarks/plan_quality.py [--gpus 4 8 16] [--calls 100000]
    PYTHONPATH=$PWD python benchmarks/plan_quality.py --accuracy --objective min-latency
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from planner.aggregate import aggregate_pipeline
from planner.catalog import Catalog, resolve_model
from planner.errors import PlannerError
from planner.io.configs import load_catalog
from planner.io.traces import read_calls
from planner.profiles.analytic import AnalyticProfiles
from planner.search import SolveSettings, search_plan
from planner.search.predict import predict_models, predict_workflows
from planner.search.problem import build_problem
from planner.simulate import Workload, compile_workload
from planner.simulate.candidates import BASELINES, canonical_names, evaluation_candidates
from planner.simulate.evaluate import (
    CandidateResult,
    Evaluation,
    evaluate_plans,
    predicted_p95_latency_s,
)
from planner.simulate.rates import SimSettings
from planner.types.apl import AggregatePipeline
from planner.types.calls import CallTable
from planner.types.cluster import Cluster, uniform_cluster
from planner.types.plan import Plan, WorkflowPrediction
from planner.types.settings import WorkloadTargets

TRACES = Path(__file__).resolve().parents[1] / "traces"
WORKLOADS: dict[str, tuple[str, ...]] = {
    "rag": ("rag.parquet",),
    "beam_search": ("beam_search.csv.gz",),
    "coding_agent": ("coding_agent.jsonl.gz",),
    "mix": ("rag.parquet", "beam_search.csv.gz", "coding_agent.jsonl.gz"),
}
# Generated workloads: (seed, minutes, {type: rate/s}); types without a rate are left out.
GENERATED: dict[str, tuple[int, float, dict[str, float]]] = {
    "fanout": (11, 20.0, {"rag": 0.5, "beam_search": 0.2}),
    "shared": (13, 20.0, {"rag": 1.0, "beam_search": 0.1, "coding_agent": 0.3}),
}


def _read(name: str, scratch: Path) -> CallTable:
    if name in GENERATED:
        return read_calls(_generated(name, scratch))
    files = WORKLOADS[name]
    # The mix is the whole traces/ folder, as `planner evaluate traces/` reads it.
    return read_calls(TRACES / files[0] if len(files) == 1 else TRACES)


def _generated(name: str, scratch: Path) -> Path:
    """Write the generated workload's trace files under `scratch` (deterministic)."""
    spec = importlib.util.spec_from_file_location("generate", TRACES / "generate.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    sys.modules["generate"] = gen  # its dataclasses look their module up
    spec.loader.exec_module(gen)
    seed, minutes, rates = GENERATED[name]
    out = scratch / name
    out.mkdir(parents=True, exist_ok=True)
    for kind in gen.WORKFLOW_KINDS:
        if kind.name in rates:
            rate = rates[kind.name]
            frame = gen.generate(kind, seed, max(1, round(rate * minutes * 60)), rate)
            (out / kind.file_name).write_bytes(gen.encode(frame, kind.file_name))
    return out


def _ratio(a: float, b: float) -> str:
    if not (b > 0 and math.isfinite(a) and math.isfinite(b)):
        return "n/a"
    return f"{a / b:.2f}"


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:+.1%}"


def _lat(c: CandidateResult) -> float:
    return c.at_target.latency_s.mean if c.at_target else math.nan


def _err(pred: float, sim: float) -> str:
    return _pct((pred - sim) / sim) if sim > 0 and math.isfinite(pred) else "n/a"


def _cell(pred: float, sim: float) -> str:
    return f"{pred:.4g} / {sim:.4g} ({_err(pred, sim)})"


def accuracy_rows(
    name: str, gpus: int, ev: Evaluation, flows_at_sim: Sequence[WorkflowPrediction]
) -> list[str]:
    """The plan's predictions against its simulation: one row per cell, then per type.

    `flows_at_sim`: the APL's workflow predictions at the rate the simulation realised.
    """
    p = ev.candidate("plan")
    sim = p.at_target
    if sim is None:
        return [f"| {name} | {gpus} | all | cannot serve: {p.problem} |||"]
    by_type = dict(sim.latency_by_type_s)
    # The simulated mean at the plan's target mix: a finite Poisson sample of the mix is
    # off by ~1/sqrt(workflows of a type), which moves the mean of types with 30x apart
    # latencies by several percent; the types' simulated means weighted by the target mix
    # remove that noise (one type: the simulated mean itself).
    flows = [w for w in flows_at_sim if w.workflow_type in by_type]
    total = sum(w.target_rate_per_s for w in flows)
    sim_mean = (
        sum(w.target_rate_per_s * by_type[w.workflow_type].mean for w in flows) / total
        if len(flows) > 1 and total > 0
        else sim.latency_s.mean
    )
    rows = [
        f"| {name} | {gpus} | all | {_cell(predicted_mean(flows_at_sim), sim_mean)} | "
        f"{_cell(predicted_p95_latency_s(flows_at_sim), sim.latency_s.p95)} | "
        f"{_cell(p.predicted_max_rate_per_s, p.max_rate_per_s)} |"
    ]
    for w in flows_at_sim:
        s = by_type.get(w.workflow_type)
        if s is None or len(flows_at_sim) < 2:
            continue
        p95 = w.p95_latency_s if w.p95_latency_s is not None else math.nan
        rows.append(
            f"| {name} | {gpus} | {w.workflow_type} | {_cell(w.mean_latency_s, s.mean)} | "
            f"{_cell(p95, s.p95)} | |"
        )
    return rows


def predicted_mean(flows: Sequence[WorkflowPrediction]) -> float:
    total = sum(w.target_rate_per_s for w in flows)
    return sum(w.target_rate_per_s * w.mean_latency_s for w in flows) / total


def _at_realised_rate(
    plan: Plan,
    ev: Evaluation,
    apl: AggregatePipeline,
    catalog: Catalog,
    profiles: AnalyticProfiles,
    gpus: int,
) -> tuple[WorkflowPrediction, ...]:
    """The APL's workflow predictions at the arrival rate the simulation realised (a
    finite Poisson sample is a few percent off the nominal rate, and near capacity the
    latency moves several times as much)."""
    sim = ev.candidate("plan").at_target
    specs = {m: replace(resolve_model(catalog, m), name=m) for m in apl.models()}
    targets = WorkloadTargets(
        target_rate_per_s={w.workflow_type: w.target_rate_per_s for w in plan.workflows}
    )
    problem = build_problem(apl, profiles, uniform_cluster(gpus), specs, targets)
    if sim is not None and ev.target_rate_per_s > 0:
        problem = problem.scaled(sim.offered_rate_per_s / ev.target_rate_per_s)
    return predict_workflows(problem, predict_models(problem, plan.allocations))


def _model_notes(ev: Evaluation, plan: Plan) -> str:
    """Per model: predicted vs simulated per-call latency and utilisation."""
    sim = ev.candidate("plan").at_target
    if sim is None:
        return ""
    parts = []
    for m in plan.models:
        s = next((x for x in sim.models if x.model.split("/")[-1] == m.model.split("/")[-1]), None)
        if s is None:
            continue
        parts.append(
            f"{m.model.split('/')[-1]}: call {m.call_latency_s:.3g}/{s.mean_call_latency_s:.3g} s"
            f", u {m.utilisation:.2f}/{s.utilisation:.2f}"
        )
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--workloads", nargs="+", default=None)
    parser.add_argument(
        "--accuracy", action="store_true", help="the plan alone: APL vs simulation per type"
    )
    parser.add_argument("--objective", default="max-throughput")
    parser.add_argument("--calls", type=int, default=100_000, help="calls per simulation")
    parser.add_argument("--time-limit", type=float, default=20.0, help="solver seconds")
    args = parser.parse_args()

    catalog = load_catalog()
    profiles = AnalyticProfiles(catalog)
    canonical = canonical_names(catalog)
    settings = SimSettings(calls=args.calls)
    workloads = args.workloads or ([*WORKLOADS, *GENERATED] if args.accuracy else list(WORKLOADS))
    with tempfile.TemporaryDirectory() as scratch:
        if args.accuracy:
            _accuracy(args, workloads, Path(scratch), catalog, profiles, canonical, settings)
            return
        _quality(args, workloads, Path(scratch), catalog, profiles, canonical, settings)


def _solve(
    args: argparse.Namespace,
    name: str,
    gpus: int,
    apl: AggregatePipeline,
    catalog: Catalog,
    profiles: AnalyticProfiles,
) -> tuple[Plan | None, Cluster]:
    cluster = uniform_cluster(gpus)
    specs = {m: replace(resolve_model(catalog, m), name=m) for m in apl.models()}
    problem = build_problem(apl, profiles, cluster, specs)
    try:
        plan = search_plan(
            problem,
            SolveSettings(objective=args.objective, time_limit_s=args.time_limit, num_workers=2),
        )
    except PlannerError as exc:
        print(f"| {name} | {gpus} | - | infeasible: {str(exc).splitlines()[0]} ||||||||")
        return None, cluster
    return plan, cluster


def _accuracy(
    args: argparse.Namespace,
    workloads: list[str],
    scratch: Path,
    catalog: Catalog,
    profiles: AnalyticProfiles,
    canonical: Callable[[str], str],
    settings: SimSettings,
) -> None:
    print(
        "| workload | GPUs | workflow type | mean latency s: APL / sim (error) "
        "| p95 latency s: APL / sim (error) | max rate /s: APL / sim (error) |"
    )
    print("|---|---|---|---|---|---|")
    for c in _cells(args, workloads, scratch, catalog, profiles):
        ev = evaluate_plans(c.workload, {"plan": c.plan}, profiles, settings, canonical=canonical)
        flows = _at_realised_rate(c.plan, ev, c.apl, catalog, profiles, c.gpus)
        for row in accuracy_rows(c.name, c.gpus, ev, flows):
            print(row, flush=True)
        alloc = ", ".join(
            f"{a.model.split('/')[-1]} tp{a.tp}x{a.gpu_fraction:g}x{a.replicas}"
            for a in c.plan.allocations
        )
        print(
            f"<!-- {c.name} {c.gpus} GPUs ({time.perf_counter() - c.start:.0f} s): {alloc}; "
            f"{_model_notes(ev, c.plan)} -->",
            flush=True,
        )


@dataclass(frozen=True)
class _Cell:
    """One workload planned on one GPU count."""

    name: str
    gpus: int
    apl: AggregatePipeline
    workload: Workload
    plan: Plan
    cluster: Cluster
    start: float  # perf_counter when the cell's solve began


def _cells(
    args: argparse.Namespace,
    workloads: list[str],
    scratch: Path,
    catalog: Catalog,
    profiles: AnalyticProfiles,
) -> Iterator[_Cell]:
    """Every (workload, GPU count) cell that has a plan, in order."""
    for name in workloads:
        calls = _read(name, scratch)
        apl = aggregate_pipeline(calls)
        workload = compile_workload(calls)
        for gpus in args.gpus:
            start = time.perf_counter()
            plan, cluster = _solve(args, name, gpus, apl, catalog, profiles)
            if plan is not None:
                yield _Cell(name, gpus, apl, workload, plan, cluster, start)


def _quality(
    args: argparse.Namespace,
    workloads: list[str],
    scratch: Path,
    catalog: Catalog,
    profiles: AnalyticProfiles,
    canonical: Callable[[str], str],
    settings: SimSettings,
) -> None:
    print(
        "| workload | GPUs | plan GPUs used | plan max rate/s | x uniform | x independent "
        "| x greedy | latency ratio uniform / indep. / greedy | APL throughput error "
        "| APL latency error | baseline APL throughput errors (u / i / g) | plan sim / bound |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cell in _cells(args, workloads, scratch, catalog, profiles):
        plans = evaluation_candidates(cell.plan, cell.apl, profiles, cell.cluster, catalog)
        ev = evaluate_plans(cell.workload, plans, profiles, settings, canonical=canonical)
        p = ev.candidate("plan")
        base = [ev.candidate(b) for b in BASELINES]
        print(
            f"| {cell.name} | {cell.gpus} | {p.gpus:g} | {p.max_rate_per_s:.4g} | "
            + " | ".join(_ratio(p.max_rate_per_s, b.max_rate_per_s) for b in base)
            + " | "
            + " / ".join(_ratio(_lat(b), _lat(p)) for b in base)
            + f" | {_pct(p.throughput_error)} | {_pct(p.latency_error)} | "
            + " / ".join(_pct(b.throughput_error) for b in base)
            + f" | {_ratio(p.max_rate_per_s, p.search.bound_rate_per_s if p.search else 0)} |",
            flush=True,
        )
        details = "; ".join(
            f"{c.name}: "
            + ", ".join(
                f"{a.model.split('/')[-1]} tp{a.tp}x{a.gpu_fraction:g}x{a.replicas}"
                for a in c.allocations
            )
            + f" -> {c.max_rate_per_s:.4g}/s, {_lat(c):.4g} s"
            + (f" [{c.problem}]" if c.problem else "")
            for c in ev.candidates
        )
        wall = time.perf_counter() - cell.start
        print(f"<!-- {cell.name} {cell.gpus} GPUs ({wall:.0f} s): {details} -->")


if __name__ == "__main__":
    main()
