"""The jobs layer: one cluster resolution, requests that round-trip, a light CLI import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from planner.defaults import LATENCY_TOLERANCE
from planner.errors import InputError
from planner.io.configs import load_catalog
from planner.jobs.clusters import resolve_cluster
from planner.jobs.requests import (
    ClusterSpec,
    PlanRequest,
    parse_objective,
    parse_slos,
    parse_target_rates,
    replan_flags,
)
from planner.types.settings import SolveSettings, WorkloadTargets

L40S = "L40S-48GB"


def test_importing_the_cli_loads_no_heavy_library() -> None:
    # A fresh interpreter: the test process itself has them all loaded already.
    code = (
        "import sys, planner.cli\n"
        "print([m for m in ('pandas', 'pyarrow', 'ortools', 'kubernetes', 'numpy')"
        " if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_gpus_take_the_catalogs_nvlink_domain(repo: Path) -> None:
    catalog = load_catalog(repo / "configs")
    l40s = resolve_cluster(ClusterSpec(gpus=8, gpu_type=L40S, gpus_per_node=4), catalog)
    assert {p.nvlink_domain_size for p in l40s.cluster.pools} == {1}
    assert [(p.gpu_type, p.gpus_per_node, p.nvlink_domain_size) for p in l40s.growth] == [
        (L40S, 4, 1)
    ]
    h100 = resolve_cluster(ClusterSpec(gpus=12), catalog)
    assert [(p.nodes, p.gpus_per_node, p.nvlink_domain_size) for p in h100.cluster.pools] == [
        (1, 8, 8),
        (1, 4, 4),
    ]


def test_cluster_needs_exactly_one_source(repo: Path) -> None:
    catalog = load_catalog(repo / "configs")
    with pytest.raises(InputError, match="give the cluster"):
        resolve_cluster(ClusterSpec(), catalog)
    both = ClusterSpec(gpus=8, cluster_file=repo / "configs" / "cluster.yaml")
    with pytest.raises(InputError, match="either --gpus or --cluster"):
        resolve_cluster(both, catalog)


@pytest.mark.parametrize(
    ("rates", "slos", "tolerance"),
    [
        ([], [], LATENCY_TOLERANCE),
        (["2.5"], ["rag=30"], 0.0),
        (["rag=0.1", "coding=0.333333333333"], ["rag=8:p95", "coding=120"], 0.05),
    ],
)
def test_replan_flags_parse_back_to_the_same_request(
    rates: list[str], slos: list[str], tolerance: float
) -> None:
    request = PlanRequest(
        Path("traces"),
        targets=WorkloadTargets(
            headroom=1.3,
            target_rate_per_s=parse_target_rates(rates),
            slo_s=parse_slos(slos),
            utilisation_cap=0.8,
        ),
        solve=SolveSettings(
            objective="min-gpus", time_limit_s=12.5, num_workers=2, latency_tolerance=tolerance
        ),
    )
    flags = replan_flags(request)
    values: dict[str, list[str]] = {}
    for flag in flags:
        name, _, value = flag.partition("=")
        values.setdefault(name, []).append(value)
    again = PlanRequest(
        Path("traces"),
        targets=WorkloadTargets(
            headroom=float(values["--headroom"][0]),
            target_rate_per_s=parse_target_rates(values.get("--target-rate", [])),
            slo_s=parse_slos(values.get("--slo", [])),
            utilisation_cap=float(values["--utilisation-cap"][0]),
        ),
        solve=SolveSettings(
            objective=parse_objective(values["--objective"][0]),
            time_limit_s=float(values["--time-limit"][0]),
            num_workers=int(values["--workers"][0]),
            latency_tolerance=float(values.get("--latency-tolerance", [LATENCY_TOLERANCE])[0]),
        ),
    )
    assert again == request
    assert ("--latency-tolerance" in values) == (tolerance != LATENCY_TOLERANCE)


def test_catalog_is_parsed_once_and_again_when_edited(repo: Path, tmp_path: Path) -> None:
    import shutil

    configs = tmp_path / "configs"
    shutil.copytree(repo / "configs", configs)
    first = load_catalog(configs)
    assert load_catalog(configs) is first
    gpu = configs / "gpus" / "L40S-48GB.yaml"
    gpu.write_text(gpu.read_text().replace("nvlink_domain_size: 1", "nvlink_domain_size: 2"))
    edited = load_catalog(configs)
    assert edited is not first and edited.gpus[L40S].nvlink_domain_size == 2


def test_plan_render_and_evaluate_agree_on_l40s_shapes(repo: Path, tmp_path: Path) -> None:
    """One cluster resolution: no job offers TP > 1 on PCIe-only L40S nodes."""
    from cli_helpers import invoke

    from planner.io.plan_file import read_plan
    from planner.jobs.evaluating import EvaluateRequest, evaluate_job, evaluation_cluster

    rag = str(repo / "traces" / "rag.parquet")
    out = tmp_path / "out"
    cluster = ["--gpus", "8", "--gpu-type", L40S, "--gpus-per-node", "4"]
    token = ["--hf-token-secret", "hf-token"]  # the shipped Llama models are gated
    code, _, err = invoke("plan", rag, *cluster, *token, "-o", str(out), "--time-limit", "10")
    assert code == 0, err
    assert {a.tp for a in read_plan(out / "plan.yaml").allocations} == {1}
    code, _, err = invoke("render", str(out), *cluster, *token, "-o", str(tmp_path / "r"))
    assert code == 0, err
    request = EvaluateRequest(
        Path(rag), out / "plan.yaml", ClusterSpec(gpus_per_node=4), calls=2000
    )
    plan = read_plan(out / "plan.yaml")
    cluster = evaluation_cluster(request, plan, load_catalog(repo / "configs"))
    assert cluster.gpus == plan.gpus_total == 8
    assert {(p.gpu_type, p.nvlink_domain_size) for p in cluster.pools} == {(L40S, 1)}
    evaluation = evaluate_job(request)
    tps = {a.tp for c in evaluation.candidates for a in c.allocations}
    assert tps == {1}, [(c.name, c.allocations) for c in evaluation.candidates]


def test_exploring_jobs_agree_with_the_plan(repo: Path) -> None:
    """plan_visualisation.ipynb's jobs: the placement is the planner's, the scale-1 point
    of the rate sweep is the plan's own prediction, and no valid baseline beats it."""
    import math

    from planner.jobs.exploring import (
        BASELINES,
        PLANNER,
        baselines_job,
        placement_job,
        rate_sweep_job,
    )
    from planner.jobs.planning import plan_job
    from planner.place import place
    from planner.search.validate import mean_latency_s

    result = plan_job(
        PlanRequest(
            repo / "traces" / "rag.parquet",
            cluster=ClusterSpec(gpus=8, gpu_type="H100-SXM-80GB"),
            solve=SolveSettings(time_limit_s=10),
        )
    )
    assert placement_job(result.plan, result.cluster) == place(result.plan, result.cluster)
    sweep = rate_sweep_job(result, (1.0, 1000.0))
    one, huge = sweep.points
    assert one.fixed_latency_s == pytest.approx(
        mean_latency_s(result.problem, result.plan.allocations)
    )
    assert one.replanned_latency_s <= one.fixed_latency_s * (1 + result.plan.solver.gap) + 1e-9
    assert math.isnan(huge.replanned_latency_s)  # 1000x the rate fits on no 8 GPUs
    assert math.isinf(huge.fixed_latency_s) and 1.0 <= sweep.sustained_scale < 1000.0
    methods = baselines_job(result)
    assert [m.method for m in methods] == [PLANNER, *BASELINES]
    assert methods[0].plan == result.plan and not methods[0].violations
    best = methods[0].mean_latency_s * (1 - result.plan.solver.gap) - 1e-9
    assert all(m.mean_latency_s >= best for m in methods[1:] if not m.violations)
