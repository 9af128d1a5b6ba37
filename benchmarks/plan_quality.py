"""Plan quality: the plan against the uniform, independent and greedy baselines, simulated.

For each shipped workload (RAG, beam search, coding agent, and the three mixed) and each
GPU budget (4, 8, 16 H100s), plans with the chosen objective (default max-throughput:
the highest common rate on the budget), builds the baselines for the plan's target rates
on the same GPUs, and simulates all of them (`planner.simulate.evaluate`): max sustainable
workflow rate, mean latency at the plan's target rate, and the APL's prediction error.
Prints one Markdown table (the `## Plan quality` section of docs/benchmarks.md).

    PYTHONPATH=$PWD python benchmarks/plan_quality.py [--gpus 4 8 16] [--calls 100000]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

from planner.aggregate import aggregate_pipeline
from planner.catalog import resolve_model
from planner.errors import PlannerError
from planner.io.configs import load_catalog
from planner.io.traces import read_calls
from planner.profiles.analytic import AnalyticProfiles
from planner.search import SolveSettings, search_plan
from planner.search.problem import build_problem
from planner.simulate import compile_workload
from planner.simulate.candidates import BASELINES, canonical_names, evaluation_candidates
from planner.simulate.evaluate import CandidateResult, evaluate_plans
from planner.simulate.rates import SimSettings
from planner.types.calls import CallTable
from planner.types.cluster import uniform_cluster

TRACES = Path(__file__).resolve().parents[1] / "traces"
WORKLOADS: dict[str, tuple[str, ...]] = {
    "rag": ("rag.parquet",),
    "beam_search": ("beam_search.csv.gz",),
    "coding_agent": ("coding_agent.jsonl.gz",),
    "mix": ("rag.parquet", "beam_search.csv.gz", "coding_agent.jsonl.gz"),
}


def _read(files: tuple[str, ...]) -> CallTable:
    # The mix is the whole traces/ folder, as `planner evaluate traces/` reads it.
    return read_calls(TRACES / files[0] if len(files) == 1 else TRACES)


def _ratio(a: float, b: float) -> str:
    if not (b > 0 and math.isfinite(a) and math.isfinite(b)):
        return "n/a"
    return f"{a / b:.2f}"


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:+.1%}"


def _lat(c: CandidateResult) -> float:
    return c.at_target.latency_s.mean if c.at_target else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    parser.add_argument("--objective", default="max-throughput")
    parser.add_argument("--calls", type=int, default=100_000, help="calls per simulation")
    parser.add_argument("--time-limit", type=float, default=20.0, help="solver seconds")
    args = parser.parse_args()

    catalog = load_catalog()
    profiles = AnalyticProfiles(catalog)
    canonical = canonical_names(catalog)
    settings = SimSettings(calls=args.calls)
    print(
        "| workload | GPUs | plan GPUs used | plan max rate/s | x uniform | x independent "
        "| x greedy | latency ratio uniform / indep. / greedy | APL throughput error "
        "| APL latency error | baseline APL throughput errors (u / i / g) | plan sim / bound |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.workloads:
        calls = _read(WORKLOADS[name])
        apl = aggregate_pipeline(calls)
        workload = compile_workload(calls)
        for gpus in args.gpus:
            start = time.perf_counter()
            cluster = uniform_cluster(gpus)
            specs = {m: replace(resolve_model(catalog, m), name=m) for m in apl.models()}
            problem = build_problem(apl, profiles, cluster, specs)
            try:
                plan = search_plan(
                    problem,
                    SolveSettings(
                        objective=args.objective, time_limit_s=args.time_limit, num_workers=2
                    ),
                )
            except PlannerError as exc:
                print(f"| {name} | {gpus} | - | infeasible: {str(exc).splitlines()[0]} ||||||||")
                continue
            plans = evaluation_candidates(plan, apl, profiles, cluster, catalog)
            ev = evaluate_plans(workload, plans, profiles, settings, canonical=canonical)
            p = ev.candidate("plan")
            base = [ev.candidate(b) for b in BASELINES]
            print(
                f"| {name} | {gpus} | {p.gpus:g} | {p.max_rate_per_s:.4g} | "
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
            print(f"<!-- {name} {gpus} GPUs ({time.perf_counter() - start:.0f} s): {details} -->")


if __name__ == "__main__":
    main()
