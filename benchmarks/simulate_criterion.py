"""Does the sustainability criterion find the steady-state capacity? A long-horizon check.

For the plan `planner plan` makes for a workload on N GPUs (max-throughput objective),
runs the default rate search (`planner evaluate`'s settings) and then long simulations
(default 400,000 calls, half of the span as warm-up) at fractions of the capacity bound,
printing the workflow backlog growth and KV-queue growth of each: a steady state shows
~0 backlog growth, overload a growth of about (rate - capacity) / rate.

    PYTHONPATH=$PWD python benchmarks/simulate_criterion.py [--workload rag] [--gpus 8]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from planner.aggregate import aggregate_pipeline
from planner.catalog import resolve_model
from planner.io.configs import load_catalog
from planner.io.traces import read_calls
from planner.profiles.analytic import AnalyticProfiles
from planner.search import SolveSettings, search_plan
from planner.search.problem import build_problem
from planner.simulate import build_replicas, compile_workload
from planner.simulate.candidates import canonical_names
from planner.simulate.rates import SimSettings, max_sustainable_rate, simulate_at
from planner.types.cluster import uniform_cluster

TRACES = Path(__file__).resolve().parents[1] / "traces"
FILES = {
    "rag": "rag.parquet",
    "beam_search": "beam_search.csv.gz",
    "coding_agent": "coding_agent.jsonl.gz",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="rag", choices=sorted(FILES))
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--calls", type=int, default=400_000)
    args = parser.parse_args()

    calls = read_calls(TRACES / FILES[args.workload])
    apl = aggregate_pipeline(calls)
    catalog = load_catalog()
    profiles = AnalyticProfiles(catalog)
    specs = {m: replace(resolve_model(catalog, m), name=m) for m in apl.models()}
    problem = build_problem(apl, profiles, uniform_cluster(args.gpus), specs)
    plan = search_plan(problem, SolveSettings(objective="max-throughput", num_workers=2))
    workload = compile_workload(calls)
    replicas = build_replicas(workload, plan.allocations, profiles, canonical_names(catalog))
    found = max_sustainable_rate(workload, replicas, SimSettings())
    bound = found.bound_rate_per_s
    print(
        f"{args.workload} on {args.gpus} GPUs: capacity bound {bound:.4g}/s, "
        f"default search {found.max_rate_per_s:.4g}/s ({found.max_rate_per_s / bound:.3f} x bound)"
    )
    print(
        "| rate / bound | offered/s | throughput/s | backlog growth | queue growth "
        "| mean latency s |"
    )
    print("|---|---|---|---|---|---|")
    long = SimSettings(calls=args.calls, warmup_fraction=0.5)
    for fraction in (0.9, 0.95, 0.98, 1.0, 1.02, 1.05):
        res = simulate_at(workload, replicas, fraction * bound, long)
        print(
            f"| {fraction:.2f} | {res.offered_rate_per_s:.4g} | {res.throughput_per_s:.4g} | "
            f"{res.backlog_growth:+.2%} | {res.queue_growth:+.2%} | {res.latency_s.mean:.4g} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
