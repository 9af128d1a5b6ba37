"""How the exact search scales: time, status and optimality gap on synthetic model mixes.

Models are drawn (seeded) from the shipped catalog, copied under distinct names with
their own token shapes, and grouped into workflow types; rates are scaled so the
cheapest allocation of every model takes about `load` of the cluster. Profiles are the
analytic ones. Run from the repository root:

    PYTHONPATH=$PWD python benchmarks/search_scale.py            # the three sizes
    PYTHONPATH=$PWD python benchmarks/search_scale.py --case 1024
    PYTHONPATH=$PWD python benchmarks/search_scale.py --single   # one shape per model
    PYTHONPATH=$PWD python benchmarks/search_scale.py --case 4096x100 --objective all
    PYTHONPATH=$PWD python benchmarks/search_scale.py --case 4096x100 --latency-tolerance 0
    PYTHONPATH=$PWD python benchmarks/search_scale.py --grid --objective all   # the table
    PYTHONPATH=$PWD python benchmarks/search_scale.py --case 4096x100 --prices --objective min-cost

`--prices` gives each pool an illustrative price per GPU-hour (`PRICES`: on-demand list
prices of the order clouds charged in 2026, for comparing types, not a quote), which
min-cost needs and which makes cost the default objective's tie-break.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace

from planner.catalog import Catalog, ModelSpec
from planner.io.configs import load_catalog
from planner.profiles.analytic import AnalyticProfiles
from planner.search import SearchInfeasible, SolveSettings, search_plan
from planner.search.baselines import greedy_plan
from planner.search.choices import fewest_replicas, shape_fits_memory
from planner.search.problem import (
    DEFAULT_LADDER,
    ModelCandidates,
    ModelUse,
    SearchProblem,
    WorkflowDemand,
    _profile_shape,
    candidate_shapes,
)
from planner.search.queueing import TokenMoments
from planner.types.cluster import Cluster, NodePool
from planner.types.plan import Plan

# The cluster of the scale grid: three GPU types in the proportions of the 1,024-GPU case
# (half H100 in 8-GPU nodes, a quarter A100 in 8-GPU nodes, a quarter L40S in 4-GPU PCIe
# nodes); workflow types: one per four models (at least two).
GRID_GPUS = (8, 64, 256, 1024, 4096)
# The models the synthetic mixes draw from: a fixed list (the catalog of 2026-11-29, before
# it grew), so a case draws the same mix whatever models the catalog adds later.
BASE_MODELS = (
    "Llama-3.1-70B-Instruct", "Llama-3.1-70B-Instruct-FP4", "Llama-3.1-70B-Instruct-FP8",
    "Llama-3.1-8B-Instruct", "Llama-3.1-8B-Instruct-FP8", "Mistral-7B-Instruct-v0.3",
    "Qwen2.5-7B-Instruct", "Qwen3-0.6B", "Qwen3-32B", "Qwen3-32B-FP8", "Qwen3-Reranker-0.6B",
)  # fmt: skip
GRID_MODELS = (5, 20, 50, 100)


def grid_case(gpus: int, models: int) -> dict[str, object]:
    pools = []
    for gpu, share, per in (("H100-SXM-80GB", 2, 8), ("A100-SXM-80GB", 4, 8), ("L40S-48GB", 4, 4)):
        count = gpus // share
        node = min(per, count)
        pools.append((gpu, count // node, node))
    return dict(models=models, types=max(2, models // 4), pools=pools, limit=60.0)


CASES: dict[str, dict[str, object]] = {
    "8": dict(models=4, types=2, pools=[("H100-SXM-80GB", 1, 8)], limit=10.0),
    "64": dict(models=10, types=4, pools=[("H100-SXM-80GB", 8, 8)], limit=20.0),
    "1024": dict(
        models=50,
        types=12,
        pools=[("H100-SXM-80GB", 64, 8), ("A100-SXM-80GB", 32, 8), ("L40S-48GB", 64, 4)],
        limit=55.0,
    ),
}


# Illustrative $ per GPU-hour for `--prices` (relative cost of the three types).
PRICES = {"H100-SXM-80GB": 3.9, "A100-SXM-80GB": 1.9, "L40S-48GB": 1.1}


def synthetic(
    case: str, seed: int = 0, load: float = 0.6, bursts: bool = False, prices: bool = False
) -> SearchProblem:
    """The case's problem; a case "GxM" is the grid cell of G GPUs and M models.

    `bursts`: models get token spread and fan-out bursts of 1, 4 or 12 calls (drawn from a
    second seeded stream, so the rest of the problem is the same as without). `prices`:
    each pool gets its `PRICES` entry."""
    spec = _spec(case)
    rng = random.Random(seed)
    fan = random.Random(seed + 1)
    base = load_catalog()
    bases = sorted((base.models[n] for n in BASE_MODELS), key=lambda m: m.name)
    models: dict[str, ModelSpec] = {}
    for i in range(int(spec["models"])):  # type: ignore[call-overload]
        m = rng.choice(bases)
        models[f"{m.name}-{i:02d}"] = replace(m, name=f"{m.name}-{i:02d}", aliases=())
    catalog = Catalog(models=models, gpus=base.gpus)
    profiles = AnalyticProfiles(catalog)
    pools = tuple(
        NodePool(
            f"pool-{g}",
            g,
            n,
            per,
            min(per, base.gpus[g].nvlink_domain_size),
            price_per_gpu_hour=PRICES[g] if prices else None,
        )
        for g, n, per in spec["pools"]  # type: ignore[attr-defined]
    )
    cluster = Cluster(pools)
    names = sorted(models)
    cands = []
    for name in names:
        fitting = [
            (i, o)
            for i, o in [(500, 100), (2000, 300), (8000, 400), (1500, 1)]
            if i + o <= models[name].max_model_len
        ]
        inp, out = rng.choice(fitting)
        burst = fan.choice([1.0, 4.0, 12.0]) if bursts else 1.0
        tokens = TokenMoments(inp, out, 0.3, 0.8, burst) if bursts else None
        shapes = tuple(
            _profile_shape(profiles, k, inp, out, DEFAULT_LADDER, tokens=tokens)
            for k in candidate_shapes(models[name], cluster)
        )
        cands.append(ModelCandidates(name, models[name].heads, inp, out, shapes, burst_calls=burst))
    # Every model belongs to at least one type; types use 2-5 models.
    flows = []
    order = names[:]
    rng.shuffle(order)
    for t in range(int(spec["types"])):  # type: ignore[call-overload]
        own = order[t :: int(spec["types"])]  # type: ignore[call-overload]
        extra = rng.sample(names, k=min(len(names), rng.randint(0, 2)))
        uses = tuple(
            ModelUse(n, round(rng.uniform(1, 10), 2), round(rng.uniform(1, 3), 2))
            for n in sorted(set(own) | set(extra))
        )
        flows.append(WorkflowDemand(f"type{t:02d}", rng.uniform(0.5, 2.0), uses, rng.uniform(0, 5)))
    problem = SearchProblem(tuple(flows), tuple(cands), cluster)
    # Scale rates so the cheapest allocations fill `load` of the cluster.
    need = 0.0
    for m in cands:
        d = problem.demand_per_s(m.model)
        need += min(
            (fewest_replicas(s, d, 0.85) * s.key.gpus for s in m.shapes if shape_fits_memory(s)),
            default=0.0,
        )
    return problem.scaled(load * cluster.gpus / need * 0.8)


def _spec(case: str) -> dict[str, object]:
    if "x" in case:
        gpus, models = case.split("x")
        return grid_case(int(gpus), int(models))
    return CASES[case]


def run(
    case: str,
    workers: int,
    objective: str,
    single: bool,
    limit: float | None,
    problem: SearchProblem | None = None,
    tolerance: float | None = None,
) -> None:
    start = time.perf_counter()
    problem = problem or synthetic(case)
    built = time.perf_counter() - start
    limit = limit or float(_spec(case)["limit"])  # type: ignore[arg-type]
    least = _least_gpus(problem)
    if least > problem.cluster.gpus:
        print(
            f"| {case} | {objective} | - | INFEASIBLE | - | one replica per model needs >= "
            f"{least:g} GPUs | -/{problem.cluster.gpus} | {_load()} |",
            flush=True,
        )
        return
    settings = SolveSettings(objective=objective, time_limit_s=limit, num_workers=workers)  # type: ignore[arg-type]
    if single:
        settings = replace(settings, mix=None)
    if tolerance is not None:
        settings = replace(settings, latency_tolerance=tolerance)
        objective = f"{objective} tol {tolerance:g}"
    try:
        plan = search_plan(problem, settings)
    except SearchInfeasible as err:
        print(f"| {case} | {objective} | {time.perf_counter() - start:.1f} | INFEASIBLE | - | "
              f"{err} | -/{problem.cluster.gpus} | {_load()} |", flush=True)  # fmt: skip
        return
    total = time.perf_counter() - start
    greedy = greedy_plan(problem)
    s = plan.solver
    print(
        f"{objective} case {case:>4} GPUs: {len(problem.models)} models, "
        f"{len(problem.gpu_types())} GPU types, "
        f"{len(problem.workflows)} workflow types | build {built:.2f} s, solve {s.wall_s:.2f} s, "
        f"total {total:.2f} s | {s.status}, objective {s.objective:.4f}, bound {s.bound:.4f}, "
        f"gap {s.gap:.3%} | GPUs used {plan.gpus_used:g}/{plan.gpus_total} | "
        f"mixed models {_mixed(plan)} | "
        f"mean latency {_mean(plan):.4f} s (greedy {greedy.solver.objective:.4f} s)"
    )
    stages = "; ".join(
        f"{st.stage} {st.status} gap {st.gap:.2%} {st.wall_s:.1f} s" for st in s.stages
    )
    print(
        f"| {case} | {objective} | {total:.1f} | {s.status} | {s.gap:.2%} | {stages} | "
        f"{plan.gpus_used:g}/{plan.gpus_total} | {_load()} |",
        flush=True,
    )


def _least_gpus(problem: SearchProblem) -> float:
    """GPUs that one fitting replica per model (the smallest meeting its demand) takes:
    a lower bound on any plan, so cells below it are reported without a solve."""
    total = 0.0
    for m in problem.models:
        d = problem.demand_per_s(m.model)
        total += min(
            (fewest_replicas(s, d, 0.85) * s.key.gpus for s in m.shapes if shape_fits_memory(s)),
            default=0.0,
        )
    return total


def _load() -> str:
    """1-minute load average of the machine (other work shares the cores)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            return handle.read().split()[0]
    except OSError:
        return "?"


def _mixed(plan: Plan) -> int:
    """Models running more than one shape."""
    return len(plan.allocations) - len({a.model for a in plan.allocations})


def _mean(plan: Plan) -> float:
    rate = sum(w.target_rate_per_s for w in plan.workflows)
    return sum(w.target_rate_per_s * w.mean_latency_s for w in plan.workflows) / rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--case", action="append", help=f"{', '.join(sorted(CASES))}, or GPUSxMODELS (grid cell)"
    )
    parser.add_argument("--grid", action="store_true", help="Every grid cell (long).")
    parser.add_argument("--skip", action="append", default=[], help="Grid cells to skip.")
    parser.add_argument("--limit", type=float, help="Time limit (deterministic s).")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--latency-tolerance", type=float, help="min-latency's tolerance (default: planner's)."
    )
    parser.add_argument(
        "--objective",
        choices=["min-latency", "min-gpus", "max-throughput", "min-cost", "all", "others"],
        default="min-latency",
    )
    parser.add_argument(
        "--single", action="store_true", help="One shape per model (no mixtures), to compare."
    )
    parser.add_argument(
        "--prices", action="store_true", help="Illustrative prices per pool (PRICES)."
    )
    parser.add_argument(
        "--bursts", action="store_true", help="Token spread and fan-out bursts per model."
    )
    args = parser.parse_args()
    cases = args.case or ["8", "64", "1024"]
    if args.grid:
        cases = [f"{g}x{m}" for g in GRID_GPUS for m in GRID_MODELS]
        cases = [c for c in cases if c not in args.skip]
    every = ["min-latency", "min-gpus", "max-throughput"]
    objectives = {"all": every, "others": every[1:]}.get(args.objective, [args.objective])
    for case in cases:
        start = time.process_time()
        problem = synthetic(case, bursts=args.bursts, prices=args.prices)
        print(f"case {case}: problem built in {time.process_time() - start:.2f} s CPU")
        for objective in objectives:
            run(
                case,
                args.workers,
                objective,
                args.single,
                args.limit,
                problem,
                args.latency_tolerance,
            )


if __name__ == "__main__":
    main()
