"""Data-parallel attention for MoE models (vLLM --data-parallel-size with
--enable-expert-parallel): the `dp` shape dimension through plan files, validation,
candidate shapes, memory fit, the kernel step model, planning, placement and rendering."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from deploy_helpers import make_plan, validate_object
from typer.testing import CliRunner

from planner.cli import app
from planner.io.configs import load_catalog
from planner.io.manifests import to_dict
from planner.io.placement import placement_document
from planner.io.plan_file import dump_plan, parse_plan
from planner.place import place
from planner.profiles.analytic import memory_fit
from planner.profiles.kernels import KernelProfiles
from planner.profiles.kernels.steady import step_costs
from planner.profiles.kernels.tables import kernel_tables
from planner.profiles.roofline import kv_bytes_per_token
from planner.render.objects import render_manifests
from planner.render.settings import RenderOptions
from planner.search.problem import candidate_shapes
from planner.search.validate import PlanInvalid, validate_plan
from planner.types.cluster import Cluster, NodePool, uniform_cluster
from planner.types.plan import Allocation
from planner.types.shapes import ShapeKey

CATALOG = load_catalog()
H100 = "H100-SXM-80GB"
QWEN = "Qwen3-235B-A22B-FP8"  # 4 KV heads: TP 8 repeats each KV head on 2 GPUs
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def profiles() -> KernelProfiles:
    return KernelProfiles(CATALOG)


# ---- shape and files --------------------------------------------------------------------


def test_dp_counts_its_gpus_everywhere() -> None:
    key = ShapeKey(QWEN, H100, 4, 8, 1, True, 2)
    alloc = Allocation(QWEN, H100, 4, 8, 3, expert_parallel=True, dp=2)
    assert key.group_gpus == 8 and key.gpus == 8 and key.stage_units == 64
    assert alloc.shape == key and alloc.gpus == 24 and alloc.group_gpus == 8


def test_dp_round_trips_through_plan_and_placement_files() -> None:
    plan = make_plan(
        Allocation(QWEN, H100, 4, 8, 1, expert_parallel=True, dp=2),
        Allocation("Qwen3-8B", H100, 1, 8, 2),
    )
    text = dump_plan(plan)
    assert text.count("data_parallel: 2") == 1 and text.count("expert_parallel: true") == 1
    assert parse_plan(text, "plan.yaml").allocations == plan.allocations
    # A plan without DP keeps its bytes: no data_parallel key at all.
    assert "data_parallel" not in dump_plan(make_plan(Allocation("Qwen3-8B", H100, 1, 8, 2)))
    placement = place(plan, uniform_cluster(16, H100, 8))
    (big,) = [r for r in placement.replicas if r.model == QWEN]
    assert (
        big.dp == 2
        and len(big.gpu_indices) == 8
        and big.allocation.shape == plan.allocations[0].shape
    )
    doc = placement_document(placement)
    (row,) = [r for r in doc["replicas"] if r["model"] == QWEN]
    assert row["data_parallel"] == 2 and len(row["gpus"]) == 8
    assert all("data_parallel" not in r for r in doc["replicas"] if r["model"] != QWEN)


def _edited(index: int, **changes: Any) -> str:
    plan = make_plan(
        Allocation(QWEN, H100, 4, 8, 1, expert_parallel=True, dp=2),
        Allocation("Qwen3-8B", H100, 1, 8, 1),
    )
    doc = yaml.safe_load(dump_plan(plan))
    doc["allocations"][index].update(changes)
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.mark.parametrize(
    ("index", "changes", "message"),
    [
        (0, {"data_parallel": 0}, "data_parallel 0 is not a whole number >= 1"),
        (0, {"data_parallel": "two"}, "data_parallel 'two' is not a whole number >= 1"),
        (0, {"data_parallel": 2.5}, "data_parallel 2.5 is not a whole number >= 1"),
    ],
)
def test_hand_edited_plan_with_a_malformed_dp_is_one_clear_error(
    index: int, changes: dict[str, Any], message: str
) -> None:
    from planner.errors import ConfigError

    with pytest.raises(ConfigError, match="malformed plan") as err:
        parse_plan(_edited(index, **changes), "plan.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("index", "changes", "message"),
    [
        (0, {"expert_parallel": False}, "needs expert_parallel: true"),
        (0, {"data_parallel": 4, "tensor_parallel": 4}, "NVLink domain of 16 GPUs"),
        (1, {"data_parallel": 2, "expert_parallel": True}, "Qwen3-8B is dense"),
    ],
)
def test_render_refuses_a_hand_edited_plan_with_a_bad_dp(
    tmp_path: Path, index: int, changes: dict[str, Any], message: str
) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(_edited(index, **changes))
    with pytest.raises(PlanInvalid, match=message):
        cluster = uniform_cluster(32, H100, 8)
        validate_plan(parse_plan(path.read_text(), str(path)), CATALOG, cluster, str(path))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", str(path), "--gpus", "32", "-o", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert not out.exists()


# ---- candidate shapes and memory --------------------------------------------------------


def _node(gpu: str = H100) -> Cluster:
    return Cluster((NodePool("p", gpu, 1, 8, 8),))


def test_dense_models_never_get_dp_shapes_moe_models_where_tp_copies_kv() -> None:
    for name in ("Qwen3-32B", "Llama-3.1-8B-Instruct", "Meta-Llama-3.1-70B-Instruct"):
        if name in CATALOG.models:
            assert all(k.dp == 1 for k in candidate_shapes(CATALOG.models[name], _node()))

    def dp_shapes(name: str) -> list[tuple[int, int]]:
        keys = candidate_shapes(CATALOG.models[name], _node())
        assert all(k.expert_parallel for k in keys if k.dp > 1)
        return sorted((k.tp, k.dp) for k in keys if k.dp > 1)

    # GQA with 4 KV heads: only the 8-GPU group copies KV; TP 4 per rank copies none.
    assert dp_shapes("Qwen3-30B-A3B") == [(4, 2)]
    # MLA keeps its latent KV on every TP GPU: one GPU per rank, 2, 4 or 8 ranks.
    assert dp_shapes("DeepSeek-V3") == [(1, 2), (1, 4), (1, 8)]
    # 8 KV heads: TP 8 copies no KV, so DP only adds lockstep; none offered.
    assert dp_shapes("gpt-oss-120b") == []


def test_memory_fit_per_rank_splits_experts_over_all_gpus() -> None:
    model, gpu = CATALOG.models[QWEN], CATALOG.gpus[H100]
    parts = model.weight_gib_by_part()
    tp8 = memory_fit(model, gpu, 8, 1.0, 0.9)
    dp = memory_fit(model, gpu, 4, 1.0, 0.9, dp=2)
    # Attention, dense and embeddings split by the rank's TP; experts by all 8 GPUs.
    expected = (parts["embeddings"] + parts["dense"]) / 4 + parts["experts"] / 8
    assert dp.fits and dp.weights_gib == pytest.approx(expected)
    assert dp.weights_gib > tp8.weights_gib
    # Each rank's 4 GPUs hold its own KV; the replica's is the two ranks' together.
    per_rank = dp.kv_cache_gib * 2**30 / kv_bytes_per_token(model, 4)
    assert dp.kv_cache_tokens == 2 * (int(per_rank) // 16 * 16)
    # TP 8 repeats each of the 4 KV heads: the same 8 GPUs hold about half as much.
    assert dp.kv_cache_tokens > 1.8 * tp8.kv_cache_tokens
    dense = memory_fit(CATALOG.models["Qwen3-32B"], gpu, 4, 1.0, 0.9, dp=2)
    assert not dense.fits and "dense" in dense.reason


def test_a_gpu_without_tables_refuses_dp_shapes(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "gpus").mkdir()
    model = (REPO / "configs" / "models" / "Qwen3-30B-A3B.yaml").read_text()
    (tmp_path / "models" / "Qwen3-30B-A3B.yaml").write_text(model)
    gpu = (REPO / "configs" / "gpus" / "H100-SXM-80GB.yaml").read_text()
    gpu = "\n".join(line for line in gpu.splitlines() if not line.startswith("kernel_tables:"))
    (tmp_path / "gpus" / "H100-SXM-80GB.yaml").write_text(gpu)
    profiles = KernelProfiles(load_catalog(tmp_path))
    key = ShapeKey("Qwen3-30B-A3B", H100, 4, 8, 1, True, 2)
    assert profiles.source_of(key) == "roofline"
    fit = profiles.memory(key)
    assert not fit.fits and "kernel tables only" in fit.reason
    assert profiles.memory(replace(key, dp=1)).fits


# ---- step model ---------------------------------------------------------------------------


def test_dp_step_runs_the_rank_own_kernels_and_the_experts_at_all_ranks_tokens(
    profiles: KernelProfiles,
) -> None:
    name = "Qwen3-30B-A3B"
    model, tables = CATALOG.models[name], kernel_tables("h100_sxm")
    step = profiles.step_model(ShapeKey(name, H100, 4, 8, 1, True, 2))
    tokens = np.array([64.0])
    own = step.layer_kernels(tokens, np.array([True]))
    assert "moe" not in own and {"router", "qkv_proj", "allreduce"} <= set(own)
    experts = step.expert_kernels(2 * tokens)
    moe_layers = model.layers - model.dense_layers
    one, _ = tables.moe("bfloat16", model.hidden, model.moe_intermediate, 8, 128, 1, 8, 2 * tokens)
    assert float(experts["moe"][0]) == pytest.approx(moe_layers * float(one[0]))
    gather, _ = tables.nccl("all_gather", 2, 2 * tokens * model.hidden)
    scatter, _ = tables.nccl("reduce_scatter", 2, 2 * tokens * model.hidden)
    assert float(experts["all_gather"][0]) == pytest.approx(moe_layers * float(gather[0]))
    assert float(experts["reduce_scatter"][0]) == pytest.approx(moe_layers * float(scatter[0]))
    # A decode step of 64 running requests: 32 per rank, the experts see all 64.
    curves = step.curves()
    costs = step_costs(step, 8192, 64.0, 1000.0, 200.0)
    context = 1000.0 + 100.0
    expected = (
        curves.linear(32.0)
        + curves.expert(64.0)  # type: ignore[misc]
        + curves.lm_head(32.0)
        + curves.decode_attention(32.0, context)
    )
    assert costs.batch == 32.0 and costs.decode_ms == pytest.approx(expected)
    # Lockstep: a request sees more prefills than its rank's own, at most the replica's.
    assert 31.0 < costs.interfering <= 63.0
    with pytest.raises(Exception, match="expert parallelism"):
        profiles.step_model(ShapeKey(name, H100, 4, 8, 1, False, 2))


def test_dp_buys_capacity_where_tp_copies_kv(profiles: KernelProfiles) -> None:
    tp8 = ShapeKey(QWEN, H100, 8, 8, 1, True)
    dp = ShapeKey(QWEN, H100, 4, 8, 1, True, 2)
    assert profiles.source_of(dp) == "kernels"
    top_tp8 = profiles.at_concurrency(tp8, 3000, 600, 2000)
    top_dp = profiles.at_concurrency(dp, 3000, 600, 2000)
    assert top_dp.max_concurrency > 1.8 * top_tp8.max_concurrency
    assert profiles.capacity_per_s(dp, 3000, 600) > profiles.capacity_per_s(tp8, 3000, 600)


def test_predict_takes_dp_and_says_so() -> None:
    args = ["profile", "predict", "--model", "Qwen/Qwen3-235B-A22B-FP8", "--gpu-type", "h100"]
    args += ["--input-tokens", "2000", "--output-tokens", "500", "--concurrency", "256"]
    result = CliRunner().invoke(
        app, [*args, "--tp", "4", "--dp", "2", "--enable-expert-parallel", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["data_parallel"] == 2 and out["gpus"] == 8 and out["source"] == "kernels"
    plain = json.loads(CliRunner().invoke(app, [*args, "--tp", "8", "--json"]).output)
    assert "data_parallel" not in plain
    refused = CliRunner().invoke(app, [*args, "--tp", "4", "--dp", "2"])
    assert refused.exit_code == 2 and "--enable-expert-parallel" in refused.output


# ---- planning and rendering ---------------------------------------------------------------


def write_trace(path: Path, rate_per_s: float) -> Path:
    """One Qwen3-235B call per workflow (3,000 prompt, 600 output tokens)."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(
            ["workflow_id", "model", "start_time", "end_time", "input_tokens", "output_tokens"]
        )
        for w in range(400):
            t = w / rate_per_s
            out.writerow([f"w{w}", "Qwen/Qwen3-235B-A22B-FP8", t, t + 20, 3000, 600])
    return path


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from planner.jobs.planning import plan_job
    from planner.jobs.requests import ClusterSpec, PlanRequest
    from planner.types.settings import SolveSettings

    # 5.2 calls/s on one node: TP 8 tops out at 5.5/s (4.7/s below the 85% cap), two
    # TP-4 replicas at 5.7/s (4.8/s); TP 4 x DP 2 keeps twice the KV of TP 8 and serves it.
    trace = write_trace(tmp_path_factory.mktemp("trace") / "qwen.csv", 5.2)
    return plan_job(PlanRequest(trace, ClusterSpec(8, H100, 8), solve=SolveSettings()))


def test_high_load_on_a_large_moe_plans_dp_attention(planned: Any) -> None:
    (alloc,) = planned.plan.allocations
    assert (alloc.tp, alloc.dp, alloc.expert_parallel, alloc.replicas) == (4, 2, True, 1)
    assert alloc.gpus == 8 and planned.plan.gpus_used == 8


@pytest.mark.parametrize("target", ["deployments", "lws", "kserve"])
def test_dp_plan_renders_the_vllm_flags_and_gpu_count(planned: Any, target: str) -> None:
    r = render_manifests(
        place(planned.plan, planned.cluster),
        planned.cluster,
        planned.catalog.models,
        "plan",
        RenderOptions(target=target, autoscaler="none"),  # type: ignore[arg-type]
        planned.catalog.gpus,
    )
    items = [to_dict(o) for o in r.objects]
    for obj in items:
        validate_object(obj)  # CRDs included (LeaderWorkerSet, LLMInferenceService)
    if target == "kserve":
        (svc,) = [o for o in items if o["kind"] == "LLMInferenceService"]
        assert svc["spec"]["parallelism"] == {
            "tensor": 4,
            "data": 2,
            "dataLocal": 2,
            "expert": True,
        }
        pod = svc["spec"]["template"]
    elif target == "lws":
        (lws,) = [o for o in items if o["kind"] == "LeaderWorkerSet"]
        assert "tp4dp2-ep" in lws["metadata"]["name"]
        group = lws["spec"]["leaderWorkerTemplate"]
        assert group["size"] == 1  # one pod runs every rank
        pod = group.get("leaderTemplate", group["workerTemplate"])["spec"]
    else:
        (dep,) = [o for o in items if o["kind"] == "Deployment" and "qwen" in o["metadata"]["name"]]
        assert "tp4dp2-ep" in dep["metadata"]["name"]
        pod = dep["spec"]["template"]["spec"]
    (main,) = [c for c in pod["containers"] if c["name"] in ("vllm", "main")]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "8"
    command = " ".join(main.get("command", []) + main.get("args", []))
    assert "--tensor-parallel-size 4" in command and "--data-parallel-size 2" in command
    assert "--enable-expert-parallel" in command


def test_prefix_cache_hits_count_a_dp_replica_cache_per_rank() -> None:
    """vLLM spreads a pod's requests over its DP ranks by load, not prefix: each rank's
    cache (KV / dp) sees the pod's whole reference stream."""
    from planner.profiles.prefix_cache import reference_curves
    from planner.search.prefix import HIT_GRID, PrefixCandidates, cache_choice
    from planner.search.problem import ModelCandidates, ShapeCandidate
    from planner.types.reuse import BlockReferences

    rng = np.random.default_rng(1)
    weights = 1.0 / np.arange(1, 401) ** 0.8
    blocks = rng.choice(400, size=6000, p=weights / weights.sum())
    n = len(blocks)
    refs = BlockReferences(
        model=QWEN,
        source="hashes",
        block_tokens=16,
        time_s=np.arange(n) * 0.1,
        workflow_start_s=np.arange(n) * 0.1,
        block=np.unique(blocks, return_inverse=True)[1].astype(np.int64),
        session=np.arange(n, dtype=np.int64),
        call=np.arange(n, dtype=np.int64),
        tokens=np.full(n, 16.0),
        input_tokens=16.0 * n,
        calls=n,
    )
    prefix = PrefixCandidates(reference_curves(refs), HIT_GRID, {})

    def hit(tp: int, dp: int, kv_tokens: int, replicas: int = 1) -> float:
        key = ShapeKey(QWEN, H100, tp, 8, 1, True, dp)
        shape = ShapeCandidate(key, True, 1.0, (0.1, 0.9), (1.0, 2.0), kv_cache_tokens=kv_tokens)
        model = ModelCandidates(QWEN, 64, 16.0, 0.0, (shape,), prefix)
        choice = cache_choice(model, [(shape, replicas)], 0.5)
        assert choice.routing == "balanced"  # no sessions to keep together here
        return choice.hit_rate

    per_rank = 60 * 16
    # One replica of 2 ranks caches like 2 balanced replicas of a rank's cache each.
    assert hit(4, 2, 2 * per_rank) == pytest.approx(hit(8, 1, per_rank, replicas=2))
    assert hit(4, 2, 2 * per_rank) < hit(8, 1, 2 * per_rank)
