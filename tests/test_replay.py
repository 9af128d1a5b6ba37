"""`planner replay`'s pure parts: prompts and prefix groups, the summary, metrics, compare.

The HTTP side runs against real vLLM in tests/test_replay_vllm.py (slow); here only what
needs no server, plus the errors a user meets before anything is sent.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from agent_trace import write_agent_trace
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import ConfigError
from planner.io.endpoints import parse_endpoints
from planner.io.traces import read_calls
from planner.replay.measure import (
    CALL_ERROR,
    CALL_OK,
    WORKFLOW_FAILED,
    WORKFLOW_INCOMPLETE,
    WORKFLOW_OK,
    CallRecord,
    ReplayLog,
    WorkflowRecord,
    summarise_replay,
)
from planner.replay.metrics import (
    ServerSample,
    parse_metrics,
    server_timings,
    summarise_server,
)
from planner.replay.report import compare_with_plan, replay_document
from planner.replay.script import (
    PROMPT_TOKEN_HIGH,
    PROMPT_TOKEN_LOW,
    SCOPE_GLOBAL,
    plan_prefixes,
    prompt_tokens,
)
from planner.simulate import compile_workload
from planner.types.plan import Allocation, ModelPrediction, Plan, SolverFacts, WorkflowPrediction

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_agent_trace(
        tmp_path_factory.mktemp("trace") / "agent.csv", "model-a", "model-b", workflows=6
    )


def _nodes(workload, w: int) -> range:  # type: ignore[no-untyped-def]
    first = int(workload.first_node[w])
    return range(first, first + int(workload.node_count[w]))


def test_prompts_have_the_recorded_length_and_share_what_the_trace_shared(trace: Path) -> None:
    calls = read_calls(trace)
    workload = compile_workload(calls)
    prefixes = plan_prefixes(calls, workload)
    frame = calls.frame
    for node in range(workload.nodes):
        if workload.node_model[node] < 0:
            continue
        tokens = prompt_tokens(prefixes, workload, node, instance=0)
        assert len(tokens) == workload.node_input_tokens[node]
        assert min(tokens) >= PROMPT_TOKEN_LOW and max(tokens) < PROMPT_TOKEN_HIGH
    # Workers carry a prefix hash: they share the group's shortest prompt, across workflows.
    workers = [n for n in range(workload.nodes) if prefixes.scope[n] == SCOPE_GLOBAL]
    shortest = int(frame.loc[frame["agent"] == "worker", "input_tokens"].min())
    assert len(workers) == int((frame["agent"] == "worker").sum())
    assert all(prefixes.shared_tokens[n] == shortest for n in workers)
    a = prompt_tokens(prefixes, workload, workers[0], instance=0)
    b = prompt_tokens(prefixes, workload, workers[-1], instance=5)
    assert a[:shortest] == b[:shortest] and a[shortest:] != b[shortest : len(a)]
    # The planner's second call extends its first (one session), only inside one instance.
    first, *_, last = _nodes(workload, 0)
    p1 = prompt_tokens(prefixes, workload, first, instance=0)
    p2 = prompt_tokens(prefixes, workload, last, instance=0)
    assert len(p2) > len(p1) and p2[: len(p1)] == p1
    other = prompt_tokens(prefixes, workload, first, instance=1)
    assert other[:16] != p1[:16]
    assert 0 < prefixes.shared_fraction(workload) <= 1


def test_recorded_cached_tokens_set_the_shared_length(trace: Path, tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(trace)
    frame["cached_input_tokens"] = np.where(frame["agent"] == "worker", 64, np.nan)
    path = tmp_path / "cached.csv"
    frame.to_csv(path, index=False)
    calls = read_calls(path)
    workload = compile_workload(calls)
    prefixes = plan_prefixes(calls, workload)
    shared = {int(prefixes.shared_tokens[n]) for n, s in enumerate(prefixes.scope) if s == "global"}
    assert shared == {64}


def _log() -> ReplayLog:
    calls = (
        # sent, first token, done, output tokens
        CallRecord(0, "m", "u1", 1.0, 1.1, 1.5, 100, 11, CALL_OK),
        CallRecord(1, "m", "u2", 2.0, 2.3, 2.8, 100, 5, CALL_OK),
        CallRecord(2, "m", "u1", 3.0, math.nan, 3.2, 100, 0, CALL_ERROR, "HTTP 500 from u1: x"),
        CallRecord(3, "m", "u1", 0.5, 0.6, 0.9, 100, 3, CALL_OK),  # before the warm-up
    )
    workflows = (
        WorkflowRecord(0, "a", 1.0, 1.5, WORKFLOW_OK),
        WorkflowRecord(1, "b", 2.0, 12.0, WORKFLOW_OK),  # finishes in the drain
        WorkflowRecord(2, "a", 3.0, math.nan, WORKFLOW_FAILED),
        WorkflowRecord(3, "a", 0.5, 0.9, WORKFLOW_OK),  # before the warm-up
        WorkflowRecord(4, "a", 9.0, math.nan, WORKFLOW_INCOMPLETE),
    )
    return ReplayLog(2.0, 1.0, 11.0, 12.5, calls, workflows)


def test_summary_counts_the_window() -> None:
    m = summarise_replay(_log())
    assert m.window_s == 10.0
    t = m.total
    assert (t.offered, t.completed, t.failed, t.incomplete) == (4, 2, 1, 1)
    assert t.throughput_per_s == pytest.approx(0.1)  # only workflow 0 finished inside
    assert t.latency_s.mean == pytest.approx((0.5 + 10.0) / 2)
    assert not m.sustainable
    [model] = m.models
    assert (model.calls, model.ok, model.errors, model.endpoints) == (3, 2, 1, 2)
    assert model.first_error.startswith("HTTP 500")
    assert model.timings.ttft_ms.mean == pytest.approx((100 + 300) / 2)
    # TPOT = (e2e - TTFT) / (output tokens - 1), per call.
    assert model.timings.tpot_ms.mean == pytest.approx((400 / 10 + 500 / 4) / 2)
    assert model.timings.e2e_ms.p50 == pytest.approx(650)
    assert {w.workflow_type for w in m.workflows} == {"a", "b"}


def test_metrics_of_a_real_vllm_page() -> None:
    text = (DATA / "vllm_metrics_0.32.0.txt").read_text()
    values = parse_metrics(text, "page")
    assert values["vllm:prompt_tokens_total"] > 0
    assert values["vllm:prefix_cache_queries_total"] >= values["vllm:prefix_cache_hits_total"]
    assert "vllm:kv_cache_usage_perc" in values and "vllm:num_requests_running" in values
    queries, hits = "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total"
    later = {
        **values,
        queries: values[queries] + 1000,
        hits: values[hits] + 250,
        "vllm:num_requests_running": 3.0,
    }
    samples = [
        ServerSample("u", 0.0, values),
        ServerSample("u", 1.0, later),
        ServerSample("u", 2.0, later),
    ]
    s = summarise_server("m", "u", samples)
    assert s.prefix_cache_queries == 1000 and s.prefix_cache_hit_rate == 0.25
    assert s.mean_running == 3.0 and s.scrapes == 3


def test_server_timings_from_the_histograms_of_a_real_vllm_page() -> None:
    # A page of vLLM 0.32.0 after one streamed request (4 output tokens) of a tiny model.
    text = (DATA / "vllm_metrics_0.32.0.txt").read_text()
    after = parse_metrics(text, "page")
    assert after["vllm:time_to_first_token_seconds_count"] == 1.0
    assert after["vllm:inter_token_latency_seconds_count"] == 3.0
    # The page a fresh server exports: every histogram's sum and count at zero.
    before = {k: 0.0 if k.endswith(("_sum", "_count")) else v for k, v in after.items()}
    s = summarise_server(
        "tiny-a", "u", [ServerSample("u", 0.0, before), ServerSample("u", 9, after)]
    )
    t = server_timings([s])
    assert t.requests == 1.0
    assert t.ttft_ms == pytest.approx(41.86749458312988)
    assert t.tpot_ms == pytest.approx(5.451221999995444)
    assert t.itl_ms == pytest.approx(16.353665999986333 / 3)  # per token gap
    assert t.e2e_ms == pytest.approx(55.77659606933594)
    assert 0 < t.queue_ms < t.ttft_ms < t.e2e_ms
    # A second replica of the model: the means pool sums and counts (twice the calls at
    # the same mean here).
    pooled = server_timings([s, summarise_server("tiny-a", "v", [
        ServerSample("v", 0.0, before), ServerSample("v", 9, after)])])  # fmt: skip
    assert pooled.requests == 2.0 and pooled.e2e_ms == pytest.approx(t.e2e_ms)

    # Servers before vLLM 0.11 export the inter-token histogram under its old name.
    def renamed(page: dict[str, float]) -> dict[str, float]:
        new, old = "vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"
        return {k.replace(new, old): v for k, v in page.items()}

    old = summarise_server(
        "m", "w", [ServerSample("w", 0, renamed(before)), ServerSample("w", 1, renamed(after))]
    )
    assert old.histograms["itl"] == (pytest.approx(0.016353665999986333), 3.0)
    # No histograms at all (another server, or one scrape): NaN, never a made-up figure.
    assert math.isnan(server_timings([]).e2e_ms)
    one = summarise_server("m", "u", [ServerSample("u", 0, after)])
    assert not one.histograms and math.isnan(server_timings([one]).ttft_ms)


def test_a_page_that_is_not_prometheus_is_named() -> None:
    with pytest.raises(Exception, match="not a Prometheus metrics page"):
        parse_metrics("vllm:x{ 1 2 3", "http://h/metrics")


def _plan(rate: float) -> Plan:
    return Plan(
        objective="min-latency",
        allocations=(Allocation("m", "cpu", 1, 8, 2),),
        workflows=(
            WorkflowPrediction("a", rate / 2, 4.0, 0.6),
            WorkflowPrediction("b", rate / 2, 4.0, 8.0),
        ),
        models=(ModelPrediction("m", 2 * rate, 8.0, rate / 4, 0.5),),
        solver=SolverFacts("OPTIMAL", 1.0, 1.0, 0.0, 0.1),
        gpus_total=2,
    )


def test_compare_reports_errors_only_where_comparable() -> None:
    # Two calls to m per workflow; m completed 2 calls in the 10 s window: 0.1 workflows/s.
    m = summarise_replay(_log(), {"m": 2.0})
    assert (m.bottleneck_model, m.max_rate_per_s) == ("m", pytest.approx(0.1))
    # Offered 2/s = the plan's target, but overloaded: max rate compared, latency not.
    rows = {r.quantity: r for r in compare_with_plan(m, _plan(2.0))}
    rate = rows["max workflow rate /s"]
    assert rate.predicted == pytest.approx(2.0 * 8.0 / 4.0)  # targets x capacity / demand
    assert rate.error == pytest.approx((4.0 - 0.1) / 0.1)
    assert math.isnan(rows["mean workflow latency s"].error)
    assert rows["call latency s [m]"].measured == pytest.approx(0.65)
    doc = replay_document(m, [], {"traces": "t"}, _plan(2.0))
    assert doc["criterion"] == "measured" and doc["baselines"] == {}
    assert doc["plan"]["max_rate_per_s"] == pytest.approx(0.1)
    assert doc["prediction_error"]["max_rate_per_s"] == pytest.approx(39.0)
    assert doc["plan"]["allocations"][0]["replicas"] == 2
    assert doc["plan"]["per_workflow_type"]["a"]["mean_latency_s"] == pytest.approx(0.5)


def test_compare_at_a_sustained_target_rate() -> None:
    # One workflow every 2 s, each 0.5 s long: the backlog never grows.
    workflows = tuple(
        WorkflowRecord(i, "a" if i % 2 else "b", 1.0 + 2 * i, 1.5 + 2 * i, WORKFLOW_OK)
        for i in range(5)
    )
    sustained = ReplayLog(0.5, 1.0, 11.0, 12.5, _log().calls[:2], workflows)
    m = summarise_replay(sustained)
    assert m.sustainable and m.total.backlog_growth == 0
    rows = {r.quantity: r for r in compare_with_plan(m, _plan(0.5))}
    assert math.isnan(rows["max workflow rate /s"].error)  # only a lower bound measured
    lat = rows["mean workflow latency s"]
    assert lat.predicted == pytest.approx((0.6 + 8.0) / 2)
    assert lat.error == pytest.approx((4.3 - 0.5) / 0.5)


def test_overload_shows_as_a_growing_backlog() -> None:
    # Two arrivals a second, one finish a second: half of what arrives stays behind.
    workflows = tuple(
        WorkflowRecord(i, "a", 0.5 * i, 1.0 + i if 1.0 + i < 25 else math.nan,
                       WORKFLOW_OK if 1.0 + i < 25 else WORKFLOW_INCOMPLETE)
        for i in range(40)
    )  # fmt: skip
    m = summarise_replay(ReplayLog(2.0, 0.0, 20.0, 25.0, (), workflows))
    assert not m.sustainable
    assert m.total.backlog_growth == pytest.approx(0.5, abs=0.05)
    assert m.total.throughput_per_s == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"schema_version": 1, "endpoint": {}}, 'did you mean "endpoints"'),
        ({"schema_version": 2, "endpoints": {"m": "http://h"}}, "'schema_version' must be 1"),
        ({"schema_version": 1, "endpoints": {"m": "h:8000"}}, "not an http"),
        ({"schema_version": 1, "endpoints": {"m": {"url": "http://h"}}}, 'did you mean "urls"'),
        ({"schema_version": 1, "endpoints": {"m": []}}, "expected a base URL"),
    ],
)
def test_endpoint_file_errors_name_the_key(doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_endpoints(doc, "e.yaml")


def test_endpoint_urls_are_normalised() -> None:
    doc = {
        "schema_version": 1,
        "endpoints": {
            "b": ["http://h:1/v1/", "http://h:2"],
            "a": {"urls": ["http://x"], "served_name": "s"},
        },
    }
    a, b = parse_endpoints(doc, "e.yaml")
    assert (a.model, a.urls, a.served_name) == ("a", ("http://x",), "s")
    assert b.urls == ("http://h:1", "http://h:2")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_down_endpoint_is_a_clear_error(trace: Path, tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text(
        f"schema_version: 1\nendpoints:\n  model-a: http://127.0.0.1:{port}\n"
        f"  model-b: http://127.0.0.1:{port}\n"
    )
    args = ["replay", str(trace), "--endpoints", str(endpoints), "--rate", "1", "--duration", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert f"Error: endpoint http://127.0.0.1:{port} of model 'model-a' does not answer" in (
        result.output
    )


def test_a_traced_model_without_endpoint_is_named(trace: Path, tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text("schema_version: 1\nendpoints:\n  model-a: http://127.0.0.1:9\n")
    args = ["replay", str(trace), "--endpoints", str(endpoints), "--rate", "1", "--duration", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "the traces call model-b but the endpoints file has no URL for it" in result.output


def test_render_replay_job_targets_the_plans_services(tmp_path: Path, repo: Path) -> None:
    import yaml
    from deploy_helpers import make_plan, validate_k8s

    from planner.io.manifests import read_manifests
    from planner.io.plan_file import write_plan

    h100 = "H100-SXM-80GB"
    plan = write_plan(
        make_plan(
            Allocation("Llama-3.1-8B-Instruct", h100, 1, 8, 2),
            Allocation("Qwen3-Reranker-0.6B", h100, 1, 4, 1),
        ),
        tmp_path,
    )
    args = ["render", str(plan), "--gpus", "8", "-o", str(tmp_path / "out"), "--replay-job",
            "--replay-rate", "2.5", "--replay-duration", "600",
            "--replan-traces-claim", "traces-pvc"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    objects = read_manifests(tmp_path / "out")
    for obj in objects:
        validate_k8s(obj)
    [job] = [o for o in objects if o["kind"] == "Job"]
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    name = job["metadata"]["name"]
    assert name.startswith("planner-replay-")
    container = job["spec"]["template"]["spec"]["containers"][0]
    argv = container["args"]
    assert argv[:2] == ["replay", "/traces"]
    assert argv[argv.index("--rate") + 1] == "2.5" and argv[argv.index("--duration") + 1] == "600"
    assert argv[argv.index("--compare") + 1] == "/plan/plan.yaml"
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["traces"]["persistentVolumeClaim"]["claimName"] == "traces-pvc"
    assert volumes["plan"]["configMap"]["name"] == "planner-plan"
    [config] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name]
    endpoints = parse_endpoints(yaml.safe_load(config["data"]["endpoints.yaml"]), "cm")
    assert {e.model for e in endpoints} == {"Llama-3.1-8B-Instruct", "Qwen3-Reranker-0.6B"}
    for e in endpoints:
        [url] = e.urls
        host = url.removeprefix("http://").split(".")[0]
        assert host in services and url.endswith(".llm-serving.svc:80")
        assert e.served_name
