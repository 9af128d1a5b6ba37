"""A mixture-of-experts model in FP8 that needs more than one node: DeepSeek-V3 (671 B
parameters, MLA attention, 256 experts; FP8 block-scaled weights, 78 GiB per GPU at TP 8)
on 8 x H100 nodes. Its shapes, its kernel-composed cost across pipeline stages, and an
unseen agent workload (DeepSeek-V3 planner + Qwen3-8B tool caller) planned, placed,
rendered for every target and validated against the Kubernetes schemas and the CRDs."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import make_plan, validate_object

from planner.defaults import UNITS_PER_GPU
from planner.io.configs import load_catalog
from planner.io.manifests import to_dict
from planner.place import place
from planner.profiles.analytic import pipeline_hops_ms
from planner.profiles.kernels import KernelProfiles
from planner.render.objects import render_manifests
from planner.render.settings import RenderOptions
from planner.search.problem import pipeline_shapes
from planner.types.cluster import uniform_cluster
from planner.types.plan import Allocation
from planner.types.shapes import ShapeKey

H100 = "H100-SXM-80GB"
DSV3 = "DeepSeek-V3"
SMALL = "Qwen3-8B"
TARGETS = ("deployments", "lws", "kserve")


@pytest.fixture(scope="module")
def profiles() -> KernelProfiles:
    return KernelProfiles(load_catalog(None))


def test_deepseek_v3_fp8_needs_two_h100_nodes(profiles: KernelProfiles) -> None:
    one = profiles.memory(ShapeKey(DSV3, H100, 8))
    two = profiles.memory(ShapeKey(DSV3, H100, 8, UNITS_PER_GPU, 2))
    assert not one.fits and one.weights_gib > 73  # FP8 weights alone exceed a node
    assert two.fits and two.weights_gib == pytest.approx(one.weights_gib / 2)
    catalog = load_catalog(None)

    def fits(k: ShapeKey) -> bool:
        return profiles.memory(k).fits

    base = ShapeKey(DSV3, H100, 8, UNITS_PER_GPU, 2)
    # Two stages of TP 8, with and without expert parallelism inside each stage.
    assert pipeline_shapes(catalog.models[DSV3], uniform_cluster(24, H100, 8), fits) == (
        base,
        replace(base, expert_parallel=True),
    )


def test_pipeline_cost_comes_from_the_kernel_tables_plus_the_hops(
    profiles: KernelProfiles,
) -> None:
    catalog = load_catalog(None)
    model = "Llama-3.1-70B-Instruct"  # fits one node too, so both can be compared
    one, two = ShapeKey(model, H100, 8), ShapeKey(model, H100, 8, UNITS_PER_GPU, 2)
    assert profiles.source_of(one) == profiles.source_of(two) == "kernels"
    a = profiles.at_concurrency(one, 2000, 300, 1)
    b = profiles.at_concurrency(two, 2000, 300, 1)
    # One request decoding: each step carries one token's hidden state over one link.
    hop = pipeline_hops_ms(catalog.models[model], catalog.gpus[H100], 2, 1)
    assert b.tpot_ms - a.tpot_ms == pytest.approx(hop, rel=1e-6)
    assert b.ttft_ms > a.ttft_ms  # the prompt's hidden states cross the link too
    key = ShapeKey(DSV3, H100, 8, UNITS_PER_GPU, 2)
    assert profiles.source_of(key) == "kernels"
    low, high = (profiles.at_concurrency(key, 4000, 400, c) for c in (1, 64))
    assert low.source == high.source == "kernels"
    assert 0 < low.tpot_ms < high.tpot_ms and high.requests_per_s > low.requests_per_s


def write_trace(path: Path) -> Path:
    """An agent: DeepSeek-V3 plans, Qwen3-8B calls a tool, DeepSeek-V3 answers; one
    workflow every 2 s."""
    rows = []
    for w in range(200):
        t = 2.0 * w
        rows.append((f"w{w}", "deepseek-ai/DeepSeek-V3", t, t + 6, 4000, 500))
        rows.append((f"w{w}", "Qwen/Qwen3-8B", t + 6, t + 7, 800, 150))
        rows.append((f"w{w}", "deepseek-ai/DeepSeek-V3", t + 7, t + 12, 5000, 300))
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(
            ["workflow_id", "model", "start_time", "end_time", "input_tokens", "output_tokens"]
        )
        out.writerows(rows)
    return path


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from planner.jobs.planning import plan_job
    from planner.jobs.requests import ClusterSpec, PlanRequest
    from planner.types.settings import SolveSettings

    trace = write_trace(tmp_path_factory.mktemp("trace") / "agent.csv")
    request = PlanRequest(trace, ClusterSpec(24, H100, 8), solve=SolveSettings(time_limit_s=10))
    return plan_job(request)


def test_unseen_moe_workload_gets_a_two_node_replica_on_distinct_nodes(planned: Any) -> None:
    (big,) = [a for a in planned.plan.allocations if a.model == DSV3]
    assert (big.tp, big.pp) == (8, 2)
    assert any(a.model == SMALL for a in planned.plan.allocations)
    placement = place(planned.plan, planned.cluster)
    for r in (r for r in placement.replicas if r.model == DSV3):
        assert len(set(r.nodes)) == 2
        pools = {n.pool for n in placement.nodes if n.node in r.nodes}
        assert len(pools) == 1


def rendered(result: Any, plan: Any = None, **kw: Any) -> list[dict[str, Any]]:
    plan = plan or result.plan
    r = render_manifests(
        place(plan, result.cluster),
        result.cluster,
        result.catalog.models,
        "plan",
        RenderOptions(hf_token_secret="hf-token", **kw),
        result.catalog.gpus,
    )
    items = [to_dict(o) for o in r.objects]
    for obj in items:
        validate_object(obj)
    return items


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("extras", [{}, {"gateway": True, "autoscaler": "keda"}])
def test_every_target_renders_the_moe_pipeline_and_validates(
    planned: Any, target: str, extras: dict[str, Any]
) -> None:
    items = rendered(planned, target=target, **extras)
    mine = [o for o in items if "deepseek" in o["metadata"]["name"]]
    if target == "kserve":
        (svc,) = [o for o in mine if o["kind"] == "LLMInferenceService"]
        assert svc["spec"]["parallelism"]["tensor"] == 8
        assert svc["spec"]["parallelism"]["pipeline"] == 2
        assert "worker" in svc["spec"]
        return
    (lws,) = [o for o in mine if o["kind"] == "LeaderWorkerSet"]
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    script = template["leaderTemplate"]["spec"]["containers"][0]["command"][2]
    serve = next(line for line in script.splitlines() if "vllm serve" in line)
    assert "--tensor-parallel-size 8" in serve and "--pipeline-parallel-size 2" in serve
    assert "deepseek-ai/DeepSeek-V3" in serve
    if extras.get("gateway"):
        assert any(
            o["kind"] == "InferencePool" and "deepseek" in o["metadata"]["name"] for o in items
        )


@pytest.mark.parametrize("target", TARGETS)
def test_expert_parallel_pipeline_renders_for_every_target(planned: Any, target: str) -> None:
    plan = make_plan(
        Allocation(DSV3, H100, 8, UNITS_PER_GPU, 1, 2, expert_parallel=True),
        Allocation(SMALL, H100, 1, UNITS_PER_GPU, 2),
    )
    items = rendered(planned, plan, target=target)
    text = repr([o for o in items if "deepseek" in o["metadata"]["name"]])
    if target == "kserve":
        (svc,) = [o for o in items if o["kind"] == "LLMInferenceService" and "deepseek" in repr(o)]
        assert svc["spec"]["parallelism"] == {"tensor": 8, "pipeline": 2, "expert": True}
    else:
        assert "--enable-expert-parallel" in text and "--pipeline-parallel-size 2" in text


def test_predict_cli_answers_a_pipeline_from_the_kernels_source() -> None:
    import json

    from cli_helpers import invoke

    args = ["profile", "predict", "--model", "deepseek-ai/DeepSeek-V3", "--gpu-type", "h100"]
    args += ["--tp", "8", "--input-tokens", "3000", "--output-tokens", "400"]
    code, out, _ = invoke(*args, "--concurrency", "32", "--pp", "2", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["source"] == "kernels" and doc["pipeline_parallel"] == 2
    assert doc["weights_gib_per_gpu"] < 40
    code, _, err = invoke(*args, "--concurrency", "32")
    assert code == 3 and "does not fit" in err  # one node cannot hold it
