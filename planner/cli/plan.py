"""`planner plan`: traces -> APL -> profiles -> SearchProblem -> Plan -> DIR/plan.yaml.

`run_planning` is the whole job as one function (it calls io and stages, so it lives in
the CLI layer); `evaluate` and `replan` reuse it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from planner.cli import app
from planner.cli.deploy_options import (
    ClaimOpt,
    NamespaceOpt,
    PlannerImageOpt,
    ScheduleOpt,
    SharingOpt,
    TracesOpt,
    VllmImageOpt,
)
from planner.cli.options import (
    ClusterOpt,
    ConfigsOpt,
    GpusPerNodeOpt,
    GpuTypeOpt,
    HeadroomOpt,
    MappingOpt,
    ProfilesOpt,
    SloOpt,
    TargetRateOpt,
    TimeLimitOpt,
    UtilisationCapOpt,
    WorkersOpt,
)
from planner.defaults import DEFAULT_GPU_TYPE, DEFAULT_GPUS_PER_NODE
from planner.errors import InputError
from planner.render.settings import RenderOptions
from planner.types.cluster import Cluster
from planner.types.plan import Objective, Plan

if TYPE_CHECKING:
    from collections.abc import Callable

    from planner.catalog import Catalog
    from planner.place import PlacementError
    from planner.search.problem import SearchProblem
    from planner.types.apl import AggregatePipeline

OBJECTIVES: tuple[Objective, ...] = ("min-latency", "max-throughput", "min-gpus")
_RENDER = RenderOptions()  # deploy flag defaults live in RenderOptions


@dataclass(frozen=True)
class PlanningOptions:
    """Everything `planner plan` decides besides traces and cluster (defaults in one place)."""

    objective: Objective = "min-latency"
    target_rate_per_s: dict[str, float] | float | None = None
    headroom: float = 1.0
    slo_s: dict[str, tuple[float, str]] = field(default_factory=dict)
    utilisation_cap: float = 0.85
    time_limit_s: float = 30.0
    num_workers: int = 1
    random_seed: int = 0
    mapping: Path | None = None
    configs_dir: Path | None = None
    profiles_dir: Path | None = None
    window_s: float | None = None  # plan on the workflows of the trace's last window_s seconds


PLANNING_DEFAULTS = PlanningOptions()


@dataclass(frozen=True)
class PlanningResult:
    apl: AggregatePipeline
    problem: SearchProblem
    plan: Plan
    catalog: Catalog


def run_planning(
    traces: Path,
    cluster: Cluster,
    options: PlanningOptions | None = None,
    cluster_file: Path | None = None,
    growth: Cluster | None = None,
) -> PlanningResult:
    """Ingest, aggregate, look up profiles, build the SearchProblem and search.

    `growth` holds the node shapes in which an infeasible request counts the GPUs that
    would suffice (for `--gpus N`: full nodes); default: the cluster's own pools.

    Raises:
        InputError, ConfigError, ProfileError: bad traces, configs or options (exit 2).
        SearchInfeasible: no plan meets the target on the cluster (exit 3).
    """
    from planner.aggregate import aggregate_pipeline
    from planner.catalog import resolve_model
    from planner.io.configs import default_configs_dir, load_catalog
    from planner.io.plan_file import inputs_digest
    from planner.io.profiles import load_profiles
    from planner.io.traces import load_mapping, read_calls, trace_files
    from planner.search import SolveSettings, search_plan
    from planner.search.problem import WorkloadTargets, build_problem

    opts = options or PlanningOptions()
    _check_options(opts)
    mapping = load_mapping(opts.mapping) if opts.mapping is not None else None
    calls = read_calls(traces, mapping)
    if opts.window_s is not None:
        from planner.replan import recent_window

        calls = recent_window(calls, opts.window_s)
    apl = aggregate_pipeline(calls)
    catalog = load_catalog(opts.configs_dir)
    specs = {name: resolve_model(catalog, name) for name in apl.models()}
    profiles = load_profiles(opts.profiles_dir, catalog)
    targets = WorkloadTargets(opts.headroom, opts.target_rate_per_s, opts.slo_s)  # type: ignore[arg-type]
    problem = build_problem(
        apl,
        profiles,
        cluster,
        specs,
        targets,
        opts.utilisation_cap,
        growth=growth.pools if growth is not None else (),
    )
    settings = SolveSettings(
        objective=opts.objective,
        time_limit_s=opts.time_limit_s,
        num_workers=opts.num_workers,
        random_seed=opts.random_seed,
    )
    plan = search_plan(problem, settings)
    configs = default_configs_dir() if opts.configs_dir is None else opts.configs_dir
    files = [*trace_files(traces), *sorted(configs.rglob("*.yaml"))]
    files += [p for p in (opts.mapping, cluster_file) if p is not None]
    if opts.profiles_dir is not None and opts.profiles_dir.is_dir():
        files += sorted(opts.profiles_dir.rglob("*.parquet"))
    digest = inputs_digest(files, _digest_options(opts, cluster))
    return PlanningResult(apl, problem, replace(plan, inputs_digest=digest), catalog)


def _check_options(opts: PlanningOptions) -> None:
    if not 0 < opts.utilisation_cap <= 1:
        raise InputError(f"--utilisation-cap must be in (0, 1], got {opts.utilisation_cap}")
    if opts.headroom <= 0:
        raise InputError(f"--headroom must be > 0, got {opts.headroom}")
    if opts.time_limit_s <= 0:
        raise InputError(f"--time-limit must be > 0 seconds, got {opts.time_limit_s}")


def _digest_options(opts: PlanningOptions, cluster: Cluster) -> dict[str, Any]:
    return {
        "objective": opts.objective,
        "target_rate_per_s": opts.target_rate_per_s,
        "headroom": opts.headroom,
        "slo_s": {k: list(v) for k, v in sorted(opts.slo_s.items())},
        "utilisation_cap": opts.utilisation_cap,
        "random_seed": opts.random_seed,
        "num_workers": opts.num_workers,
        "cluster": [
            [p.name, p.gpu_type, p.nodes, p.gpus_per_node, p.nvlink_domain_size]
            for p in cluster.pools
        ],
    }


def parse_target_rates(values: list[str]) -> dict[str, float] | float | None:
    """`--target-rate 2.5` (total) or `--target-rate rag=1.5 --target-rate coding=0.5`."""
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return _positive(values[0], "--target-rate")
    rates: dict[str, float] = {}
    for value in values:
        name, sep, rate = value.partition("=")
        if not sep or not name:
            raise InputError(
                f"--target-rate {value!r}: give one total rate, or TYPE=RATE per workflow type"
            )
        rates[name] = _positive(rate, f"--target-rate {name}")
    return rates


def parse_slos(values: list[str]) -> dict[str, tuple[float, str]]:
    """`--slo rag=5` (mean seconds) or `--slo rag=8:p95`."""
    out: dict[str, tuple[float, str]] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        seconds, _, kind = rest.partition(":")
        kind = kind or "mean"
        if not sep or not name or kind not in ("mean", "p95"):
            raise InputError(f"--slo {value!r}: expected TYPE=SECONDS or TYPE=SECONDS:p95")
        out[name] = (_positive(seconds, f"--slo {name}"), kind)
    return out


def _positive(text: str, where: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not number > 0 or math.isinf(number):
        raise InputError(f"{where}: must be a positive number, got {text}")
    return number


def resolve_cluster(
    gpus: int | None,
    gpu_type: str,
    gpus_per_node: int,
    cluster_file: Path | None,
    catalog_dir: Path | None,
) -> Cluster:
    """`--cluster FILE`, or `--gpus N --gpu-type G` as full nodes of `gpus_per_node`."""
    from planner.catalog import resolve_gpu
    from planner.io.configs import load_catalog
    from planner.types.cluster import uniform_cluster

    if cluster_file is not None:
        if gpus is not None:
            raise InputError("give either --gpus or --cluster, not both")
        from planner.io.cluster_file import load_cluster

        return load_cluster(cluster_file)
    count = 8 if gpus is None else gpus
    if count < 1 or gpus_per_node < 1:
        raise InputError(f"--gpus and --gpus-per-node must be >= 1, got {count}, {gpus_per_node}")
    gpu = resolve_gpu(load_catalog(catalog_dir), gpu_type)
    domain = min(gpu.nvlink_domain_size, gpus_per_node)
    return uniform_cluster(count, gpu.name, gpus_per_node, domain)


@app.command()
def plan(
    traces: Annotated[
        Path,
        typer.Argument(help="A trace file or directory (default: the shipped example traces)."),
    ] = Path("traces"),
    gpus: Annotated[
        int | None, typer.Option("--gpus", help="GPUs in the cluster (full nodes; default 8).")
    ] = None,
    gpu_type: GpuTypeOpt = DEFAULT_GPU_TYPE,
    gpus_per_node: GpusPerNodeOpt = DEFAULT_GPUS_PER_NODE,
    cluster_file: ClusterOpt = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for plan.yaml.")] = Path(
        "out"
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON instead of a summary.")
    ] = False,
    objective: Annotated[
        str,
        typer.Option(
            "--objective",
            help="min-latency (lowest mean workflow latency at the target rate), "
            "max-throughput (highest common scale of the rates), or min-gpus.",
        ),
    ] = "min-latency",
    target_rate: TargetRateOpt = None,
    headroom: HeadroomOpt = PLANNING_DEFAULTS.headroom,
    slo: SloOpt = None,
    utilisation_cap: UtilisationCapOpt = PLANNING_DEFAULTS.utilisation_cap,
    time_limit: TimeLimitOpt = PLANNING_DEFAULTS.time_limit_s,
    workers: WorkersOpt = PLANNING_DEFAULTS.num_workers,
    mapping: MappingOpt = None,
    configs: ConfigsOpt = None,
    profiles: ProfilesOpt = None,
    sharing: SharingOpt = _RENDER.sharing,
    namespace: NamespaceOpt = _RENDER.namespace,
    vllm_image: VllmImageOpt = _RENDER.vllm_image,
    planner_image: PlannerImageOpt = _RENDER.planner_image,
    replan_schedule: ScheduleOpt = _RENDER.replan_schedule,
    replan_traces: TracesOpt = _RENDER.replan_traces,
    replan_traces_claim: ClaimOpt = _RENDER.replan_traces_claim,
) -> None:
    """Choose replicas, TP degrees and GPU shares for the traces' models; write plan.yaml.

    Also places the plan on the cluster and writes placement.yaml and manifests/ (apply
    them with `kubectl apply -k DIR/manifests`).
    """
    from planner.cli.deploy_options import (
        deploy_plan,
        placement_summary,
        render_options,
        write_deployment,
    )
    from planner.io.atomic import write_text_atomic
    from planner.io.placement import PLACEMENT_FILE
    from planner.io.plan_file import write_plan

    if objective not in OBJECTIVES:
        raise InputError(f"--objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    options = PlanningOptions(
        objective=objective,
        target_rate_per_s=parse_target_rates(target_rate or []),
        headroom=headroom,
        slo_s=parse_slos(slo or []),
        utilisation_cap=utilisation_cap,
        time_limit_s=time_limit,
        num_workers=workers,
        mapping=mapping,
        configs_dir=configs,
        profiles_dir=profiles,
    )
    deploy_options = render_options(
        sharing,
        namespace,
        vllm_image,
        planner_image,
        replan_schedule,
        replan_traces,
        replan_traces_claim,
    )
    # The CronJob re-plans toward the same targets this plan was made for.
    targets = [f"--target-rate={t}" for t in target_rate or []]
    targets += [f"--slo={s}" for s in slo or []]
    deploy_options = replace(
        deploy_options,
        replan_args=(
            f"--objective={objective}",
            f"--headroom={headroom:g}",
            f"--utilisation-cap={utilisation_cap:g}",
            *targets,
        ),
    )
    cluster = resolve_cluster(gpus, gpu_type, gpus_per_node, cluster_file, configs)
    growth = None
    if cluster_file is None:  # count missing GPUs in full nodes of the requested shape
        growth = resolve_cluster(gpus_per_node, gpu_type, gpus_per_node, None, configs)
    result = run_planning(traces, cluster, options, cluster_file, growth)
    deployment = deploy_plan(
        result.plan, cluster, result.catalog, deploy_options, research_without(result, options)
    )
    path = write_plan(deployment.plan, output)
    write_text_atomic(output / PLACEMENT_FILE, deployment.placement_text)
    manifests = write_deployment(output, deployment.rendered)
    if as_json:
        typer.echo(json.dumps(plan_json(deployment.plan, path), indent=2, allow_nan=False))
    else:
        typer.echo(summary(deployment.plan, path))
        typer.echo(
            placement_summary(deployment.placement, manifests, len(deployment.rendered.objects))
        )


def research_without(
    result: PlanningResult, options: PlanningOptions
) -> Callable[[Plan, PlacementError], Plan]:
    """Search again without the shape placement could not honour (see deploy_plan)."""

    def research(plan: Plan, error: PlacementError) -> Plan:
        from planner.cli.deploy_options import without_shape
        from planner.search import SolveSettings, search_plan

        settings = SolveSettings(
            objective=options.objective,
            time_limit_s=options.time_limit_s,
            num_workers=options.num_workers,
            random_seed=options.random_seed,
        )
        found = search_plan(without_shape(result.problem, error), settings)
        return replace(found, inputs_digest=plan.inputs_digest)

    return research


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def plan_json(plan: Plan, path: Path | None = None) -> dict[str, Any]:
    """The `--json` document: plan.yaml's content plus per-type shortcuts and wall time."""
    from planner.io.plan_file import plan_document

    doc = plan_document(plan, with_wall=True)
    total_rate = sum(w.target_rate_per_s for w in plan.workflows)
    mean = (
        sum(w.target_rate_per_s * w.mean_latency_s for w in plan.workflows) / total_rate
        if total_rate > 0
        else math.nan
    )
    predicted = doc["predicted"]
    predicted["throughput_per_s"] = _finite(sum(w.throughput_per_s for w in plan.workflows))
    predicted["mean_latency_s"] = _finite(mean)
    predicted["per_workflow_type"] = {
        w.workflow_type: {
            "throughput_per_s": _finite(w.throughput_per_s),
            "mean_latency_s": _finite(w.mean_latency_s),
            "target_rate_per_s": w.target_rate_per_s,
        }
        for w in plan.workflows
    }
    if path is not None:
        doc["plan_file"] = str(path)
    safe: dict[str, Any] = _json_safe(doc)
    return safe


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def summary(plan: Plan, path: Path) -> str:
    """The human summary: allocations, predictions, bottleneck, utilisation, solver."""
    lines = [f"Plan ({plan.objective}) written to {path}", "", "Allocation:"]
    lines.append(f"  {'model':<40} {'gpu':<16} {'tp':>3} {'share':>6} {'replicas':>8} {'gpus':>6}")
    for a in plan.allocations:
        lines.append(
            f"  {a.model:<40} {a.gpu_type:<16} {a.tp:>3} {a.gpu_fraction:>6g} "
            f"{a.replicas:>8} {a.gpus:>6g}"
        )
    lines += ["", "Predicted per workflow type:"]
    lines.append(f"  {'type':<20} {'target/s':>9} {'max/s':>9} {'latency s':>10} {'SLO s':>7}")
    for w in plan.workflows:
        slo = f"{w.slo_s:g}" if w.slo_s is not None else "-"
        lines.append(
            f"  {w.workflow_type:<20} {w.target_rate_per_s:>9.3g} {w.throughput_per_s:>9.3g} "
            f"{w.mean_latency_s:>10.3f} {slo:>7}"
        )
    lines += ["", "Models:"]
    for m in plan.models:
        lines.append(
            f"  {m.model:<40} demand {m.demand_per_s:8.3g}/s  capacity {m.capacity_per_s:8.3g}/s"
            f"  utilisation {m.utilisation:5.1%}  call latency {m.call_latency_s:.3f} s"
        )
    s = plan.solver
    lines += [
        "",
        f"Bottleneck model: {plan.bottleneck_model}",
        f"GPUs: {plan.gpus_used:g} of {plan.gpus_total} used "
        f"({plan.gpus_used / max(1, plan.gpus_total):.0%})",
        f"Solver: {s.status}, objective {s.objective:.6g}, bound {s.bound:.6g}, "
        f"gap {s.gap:.2%}, {s.wall_s:.2f} s",
    ]
    lines += [f"Note: {n}" for n in plan.notes]
    return "\n".join(lines)
