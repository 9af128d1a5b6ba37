"""The profiler's pure planning (configurations, ladder, engine and bench arguments) and
the CLI's bad-input paths. The real-engine runs are in test_profile_measured_vllm.py."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from planner.errors import InputError
from planner.io.vllm_engine import read_kv_cache_tokens
from planner.profiles.measured import (
    EngineConfig,
    LoadPoint,
    SweepSpec,
    TokenShape,
    bench_args,
    configurations,
    failed_row,
    load_ladder,
    server_args,
    server_cpus,
    server_env,
    shapes_from_pipeline,
    warmup_point,
)
from planner.profiles.points import points_frame

SHAPE = TokenShape(512, 128)


def _spec(**changes: Any) -> SweepSpec:
    base: dict[str, Any] = {
        "model": "Llama-3.1-8B-Instruct",
        "model_path": "meta-llama/Llama-3.1-8B-Instruct",
        "gpu_type": "H100-SXM-80GB",
        "tps": (1, 2),
        "gpu_fractions": (1.0, 0.5),
        "shapes": (SHAPE,),
    }
    return SweepSpec(**{**base, **changes})


def test_fractions_only_at_tp1() -> None:
    assert configurations(_spec()) == (
        EngineConfig(1, 1.0),
        EngineConfig(1, 0.5),
        EngineConfig(2, 1.0),
    )


def test_ladder_closed_then_open() -> None:
    ladder = load_ladder(_spec(concurrencies=(4, 1), request_rates=(2.0,), prompts_per_client=5))
    assert ladder == (
        LoadPoint(8, concurrency=1),  # min_prompts 8
        LoadPoint(20, concurrency=4),
        LoadPoint(20, request_rate=2.0),  # 2/s for 10 s
    )
    assert [p.label for p in ladder] == ["c1", "c4", "r2"]
    assert warmup_point(_spec(concurrencies=(4, 1))) == LoadPoint(8, concurrency=4)


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_fraction_is_realised_as_memory_share() -> None:
    gpu = server_args(_spec(), EngineConfig(1, 0.5), "m", 8000)
    assert _value(gpu, "--gpu-memory-utilization") == "0.46"  # 0.92 x 0.5, as deployed
    assert _value(gpu, "--tensor-parallel-size") == "1" and "--kv-cache-memory-bytes" not in gpu
    cpu = server_args(_spec(gpu_type="cpu", kv_cache_gib=2.0), EngineConfig(1, 0.25), "m", 8000)
    assert _value(cpu, "--kv-cache-memory-bytes") == str(2**29)  # 2 GiB x 0.25
    assert "--gpu-memory-utilization" not in cpu


def test_cpu_ranks_get_their_own_cores() -> None:
    cpu = _spec(gpu_type="cpu")
    assert server_env(cpu, EngineConfig(2, 1.0), [0, 1]) == {"VLLM_CPU_OMP_THREADS_BIND": "0|1"}
    # One core per rank, the whole server confined to them (as a plan's replicas run).
    assert server_env(cpu, EngineConfig(1, 1.0), [2, 3]) == {"VLLM_CPU_OMP_THREADS_BIND": "2"}
    assert server_cpus(cpu, EngineConfig(1, 1.0), [2, 3]) == (2,)
    assert server_env(cpu, EngineConfig(2, 1.0), [0, 1, 2, 3]) == {
        "VLLM_CPU_OMP_THREADS_BIND": "0|1"
    }
    assert server_cpus(cpu, EngineConfig(2, 1.0), [0, 1, 2, 3]) == (0, 1)
    assert server_cpus(_spec(), EngineConfig(1, 1.0), [0, 1]) is None
    assert server_env(_spec(), EngineConfig(2, 1.0), [0, 1]) == {}
    assert server_env(_spec(), EngineConfig(1, 0.5), [0, 1]) == {}  # no MPS daemon: no limit
    assert server_env(_spec(), EngineConfig(1, 0.25), [0, 1], mps_running=True) == {
        "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "25"
    }


def test_bench_args_carry_shape_load_and_metadata() -> None:
    args = bench_args(
        _spec(),
        EngineConfig(2, 1.0),
        SHAPE,
        LoadPoint(16, concurrency=4),
        base_url="http://127.0.0.1:1",
        served_name="m",
        tokenizer="/tok",
        result_dir="/r",
        result_filename="x.json",
        kv_cache_tokens=1234.0,
        vllm_version="0.32.0",
    )
    assert _value(args, "--random-input-len") == "512" and "--ignore-eos" in args
    assert _value(args, "--max-concurrency") == "4" and "--request-rate" not in args
    meta = args[args.index("--metadata") + 1 :]
    assert meta[:4] == [
        "model=Llama-3.1-8B-Instruct",
        "gpu_type=H100-SXM-80GB",
        "tp=2",
        "gpu_fraction=1",
    ]
    assert "kv_cache_tokens=1234" in meta and "vllm_version=0.32.0" in meta
    assert "--percentile-metrics" in args and _value(args, "--metric-percentiles") == "50,90,99"


def test_failed_row_fits_the_schema() -> None:
    row = failed_row(
        _spec(), EngineConfig(4, 1.0), SHAPE, "TP 4 needs\n4", vllm_version="v", measured_at="t"
    )
    frame = points_frame([row])
    assert frame["status"].tolist() == ["failed"] and frame["error"].tolist() == ["TP 4 needs 4"]
    assert math.isnan(frame["requests_per_s"].iloc[0])


def test_kv_capacity_from_the_startup_log() -> None:
    log = (
        "INFO [kv_cache_utils.py:2327] CPU KV cache size: 1,048,576 tokens, "
        "Maximum concurrency for 1,024 tokens per request: 1024.00x\n"
    )
    assert read_kv_cache_tokens(log) == 1_048_576
    assert read_kv_cache_tokens("GPU KV cache size: 52,000 tokens") == 52_000
    assert math.isnan(read_kv_cache_tokens("nothing here"))


def _apl(model: str = "meta-llama/Llama-3.1-8B-Instruct") -> dict[str, Any]:
    def entry(name: str, calls: float, isl: float, osl: float) -> dict[str, Any]:
        return {
            "model": name,
            "calls_per_workflow": calls,
            "input_tokens": {"mean": isl, "p50": isl, "p95": isl},
            "output_tokens": {"mean": osl, "p50": osl, "p95": osl},
        }

    return {
        "schema_version": 1,
        "workflows": [
            {"workflow_count": 10, "models": [entry(model, 2, 1000, 100), entry("x", 1, 5, 5)]},
            {"workflow_count": 20, "models": [entry(model, 1, 400, 300)]},
        ],
    }


def test_shape_from_pipeline_weights_by_calls() -> None:
    resolve = {"meta-llama/Llama-3.1-8B-Instruct": "Llama-3.1-8B-Instruct"}.get
    shapes = shapes_from_pipeline(
        _apl(), "Llama-3.1-8B-Instruct", lambda n: resolve(n) or n, "apl.json"
    )
    # 20 calls of (1000, 100) and 20 calls of (400, 300).
    assert shapes == (TokenShape(700, 200),)
    with pytest.raises(InputError, match=r"apl\.json: no calls to model 'Qwen3-32B'"):
        shapes_from_pipeline(_apl(), "Qwen3-32B", lambda n: n, "apl.json")
    with pytest.raises(InputError, match="key 'workflows'"):
        shapes_from_pipeline({"x": 1}, "m", lambda n: n, "apl.json")
    broken = _apl()
    del broken["workflows"][0]["models"][0]["input_tokens"]
    with pytest.raises(InputError, match="malformed APL entry"):
        shapes_from_pipeline(broken, "Llama-3.1-8B-Instruct", lambda n: resolve(n) or n, "a")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "planner", "profile", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--model", "llama-3.1-8b"], "give --pipeline APL.json or both"),
        (["run", "--model", "no-such-model", "--input-tokens", "5"], "unknown model"),
        (["run", "--model", "llama-3.1-8b", "--tp", "1,x", "--input-tokens", "5",
          "--output-tokens", "5", "--gpu-type", "H100"], "--tp: expected comma-separated"),
        (["run", "--model", "llama-3.1-8b", "--input-tokens", "5", "--output-tokens", "5",
          "--gpu-type", "H100", "--python", "/nonexistent/python"], "cannot run it"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line(args: list[str], message: str) -> None:
    proc = _cli(*args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]


def test_cli_import_bad_file_writes_nothing(tmp_path: Path) -> None:
    good = json.loads(
        (Path(__file__).parent / "data/vllm_bench_serve_cpu_tiny_c4.json").read_text()
    )
    bad = {k: v for k, v in good.items() if k != "mean_tpot_ms"}
    (tmp_path / "good.json").write_text(json.dumps({**good, "model": "llama-3.1-8b"}))
    (tmp_path / "bad.json").write_text(json.dumps({**bad, "model": "llama-3.1-8b"}))
    out = tmp_path / "profiles"
    proc = _cli(
        "import", str(tmp_path / "good.json"), str(tmp_path / "bad.json"),
        "--gpu-type", "h100", "--profiles", str(out),
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"Error: {tmp_path / 'bad.json'}: key 'mean_tpot_ms' is missing; "
        "is this a `--save-result` file?"
    )
    assert not out.exists()
    proc = _cli("import", str(tmp_path / "good.json"), "--gpu-type", "h100", "--profiles", str(out))
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in out.iterdir()] == [
        "imported--Llama-3.1-8B-Instruct--H100-SXM-80GB.parquet"
    ]
    (tmp_path / "gpu.json").write_text(
        json.dumps({**good, "model": "llama-3.1-8b", "gpu_type": "H1OO"})
    )
    proc = _cli("import", str(tmp_path / "gpu.json"), "--profiles", str(out))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"Error: {tmp_path / 'gpu.json'}: key 'gpu_type': unknown GPU")
    shown = _cli("show", "--profiles", str(out))
    assert "Llama-3.1-8B-Instruct" in shown.stdout and "imported" in shown.stdout


def test_nvidia_smi_names_resolve_through_product_labels(repo: Path) -> None:
    from planner.io.configs import load_catalog
    from planner.jobs.profiling import gpu_for_run

    catalog = load_catalog(repo / "configs")
    assert gpu_for_run(catalog, "NVIDIA H100 80GB HBM3") == "H100-SXM-80GB"
    assert gpu_for_run(catalog, "cpu") == "cpu"


def test_prefix_hit_rate_from_the_server_metrics(tmp_path: Path) -> None:
    from planner.io.vllm_bench import _record_hit_rate, prefix_counters

    before = (
        "# TYPE vllm:prefix_cache_queries counter\n"
        'vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0\n'
        'vllm:prefix_cache_hits_total{engine="0",model_name="m"} 100.0\n'
        'vllm:prefix_cache_hits_created{engine="0",model_name="m"} 1.7e9\n'
    )
    after = before.replace("1000.0", "5000.0").replace(" 100.0", " 1100.0")
    assert prefix_counters(before) == (1000.0, 100.0)
    assert prefix_counters("vllm:num_requests_running 3\n") is None
    result = tmp_path / "point.json"
    result.write_text(json.dumps({"completed": 10}))
    argv = ["--result-dir", str(tmp_path), "--result-filename", "point.json"]
    _record_hit_rate(argv, prefix_counters(before), prefix_counters(after))
    assert json.loads(result.read_text())["prefix_hit_rate"] == pytest.approx(1000 / 4000)
    # The point's stored row records it (an imported file carries it the same way).
    from planner.profiles.imported import ImportOverrides, bench_result_to_point

    data = {
        "duration": 10.0, "completed": 10, "request_throughput": 1.0, "output_throughput": 10.0,
        "total_input_tokens": 100, "total_output_tokens": 100, "max_concurrency": 1,
        "request_rate": "inf", "prefix_hit_rate": 0.25,
        **{f"{s}_{m}_ms": 1.0 for s in ("mean", "median", "p50", "p90", "p99")
           for m in ("ttft", "tpot", "e2el")},
    }  # fmt: skip
    row = bench_result_to_point(data, "x.json", ImportOverrides("m", "G", 1, 1.0))
    assert row["prefix_hit_rate"] == 0.25
