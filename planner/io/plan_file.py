"""plan.yaml: the versioned, deterministic file form of a Plan.

Same Plan, same bytes: keys in a fixed order, floats rounded to 9 significant digits,
no timestamps and no wall time (the solver's wall time is printed, not stored). Other
stages may add top-level sections (e.g. `placement`) through `extra`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from planner.errors import ConfigError
from planner.io.atomic import write_text_atomic
from planner.types.plan import (
    Allocation,
    ModelPrediction,
    Plan,
    Routing,
    SolverFacts,
    StageFacts,
    WorkflowPrediction,
)
from planner.types.shapes import share_eighths

PLAN_SCHEMA_VERSION = 1
PLAN_FILE = "plan.yaml"


def _num(x: float) -> float | None:
    """Round for stable bytes; None for NaN (unknown), inf stays inf."""
    if math.isnan(x):
        return None
    if math.isinf(x):
        return x
    return float(f"{x:.9g}")


def _opt(x: float | None) -> float | None:
    return None if x is None else _num(x)


def plan_document(
    plan: Plan, extra: Mapping[str, Any] | None = None, with_wall: bool = False
) -> dict[str, Any]:
    """The plan as plain data (the YAML file's content; the CLI's --json builds on it)."""
    solver: dict[str, Any] = {
        "status": plan.solver.status,
        "objective": _num(plan.solver.objective),
        "bound": _num(plan.solver.bound),
        "gap": _num(plan.solver.gap),
    }
    if with_wall:
        solver["wall_s"] = _num(plan.solver.wall_s)
    solver["stages"] = [
        {
            "stage": st.stage,
            "status": st.status,
            "objective": _num(st.objective),
            "bound": _num(st.bound),
            "gap": _num(st.gap),
            **({"wall_s": _num(st.wall_s)} if with_wall else {}),
        }
        for st in plan.solver.stages
    ]
    doc: dict[str, Any] = {
        "schema_version": PLAN_SCHEMA_VERSION,
        "kind": "plan",
        "inputs_digest": plan.inputs_digest,
        "objective": plan.objective,
        "gpus_total": plan.gpus_total,
        "gpus_used": _num(plan.gpus_used),
        "gpus_free": _num(plan.gpus_free),
        "cost_per_hour": _opt(plan.cost_per_hour),
        "cost_per_1000_workflows": _opt(plan.cost_per_1000_workflows),
        "power_kw": _opt(plan.power_kw),
        "bottleneck_model": plan.bottleneck_model,
        "allocations": [
            {
                "model": a.model,
                "gpu_type": a.gpu_type,
                "tensor_parallel": a.tp,
                "gpu_fraction": a.gpu_fraction,
                # Written only for replicas that span pipeline stages (files stay as before).
                **({"pipeline_parallel": a.pp} if a.pp > 1 else {}),
                "replicas": a.replicas,
                "gpus": _num(a.gpus),
                # Written only when set, so dense plans keep their bytes.
                **({"expert_parallel": True} if a.expert_parallel else {}),
                # Data-parallel attention ranks, written only when > 1 (as above).
                **({"data_parallel": a.dp} if a.dp > 1 else {}),
                "kv_cache_tokens": a.kv_cache_tokens,
            }
            for a in plan.allocations
        ],
        "predicted": {
            "workflows": [
                {
                    "workflow_type": w.workflow_type,
                    "target_rate_per_s": _num(w.target_rate_per_s),
                    "throughput_per_s": _num(w.throughput_per_s),
                    "mean_latency_s": _num(w.mean_latency_s),
                    "p95_latency_s": _opt(w.p95_latency_s),
                    "slo_s": w.slo_s,
                }
                for w in plan.workflows
            ],
            "models": [
                {
                    "model": m.model,
                    "demand_per_s": _num(m.demand_per_s),
                    "capacity_per_s": _num(m.capacity_per_s),
                    "utilisation": _num(m.utilisation),
                    "call_latency_s": _num(m.call_latency_s),
                    "prefix_hit_rate": _num(m.prefix_hit_rate),
                    "routing": m.routing,
                }
                for m in plan.models
            ],
        },
        "solver": solver,
        "notes": list(plan.notes),
    }
    for key, value in (extra or {}).items():
        doc[key] = value
    return doc


def dump_plan(plan: Plan, extra: Mapping[str, Any] | None = None) -> str:
    return yaml.safe_dump(
        plan_document(plan, extra), sort_keys=False, allow_unicode=True, width=100
    )


def write_plan(plan: Plan, directory: Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write DIR/plan.yaml atomically; return its path."""
    path = directory / PLAN_FILE
    write_text_atomic(path, dump_plan(plan, extra))
    return path


def read_plan(path: Path) -> Plan:
    """Read a plan.yaml written by `write_plan`.

    Raises:
        ConfigError: the file is missing, not a plan, or of another schema version.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such plan file; run `planner plan` first") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied reading the plan; check its mode") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; pass the plan.yaml inside it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; pass a plan.yaml") from None
    return parse_plan(text, str(path))


def parse_plan(text: str, where: str) -> Plan:
    """A plan document's text (a file's, or the plan ConfigMap's) as a Plan.

    Raises:
        ConfigError: not YAML, not a plan, another schema version, or malformed.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{where}: not valid YAML ({detail})") from None
    if not isinstance(data, dict) or data.get("kind") != "plan":
        raise ConfigError(f"{where}: not a plan file (expected `kind: plan`)")
    if data.get("schema_version") != PLAN_SCHEMA_VERSION:
        raise ConfigError(
            f"{where}: plan schema_version {data.get('schema_version')!r}, this planner reads "
            f"{PLAN_SCHEMA_VERSION}; re-run `planner plan`"
        )
    try:
        return _plan_from(data)
    except KeyError as exc:
        raise ConfigError(
            f"{where}: malformed plan (missing key {exc}); re-run `planner plan`"
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{where}: malformed plan ({exc}); re-run `planner plan`") from None


def _routing(value: Any) -> Routing:
    if value not in ("balanced", "session"):
        raise ValueError(f"routing {value!r} is not balanced or session")
    return "session" if value == "session" else "balanced"


def _data_parallel(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"data_parallel {value!r} is not a whole number >= 1 (data-parallel attention "
            "ranks per replica; omit it for 1)"
        )
    return value


def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


def _plan_from(data: dict[str, Any]) -> Plan:
    s = data["solver"]
    pred = data["predicted"]
    # Routing and hit rate are the model's; allocations carry them for prediction.
    cache = {
        m["model"]: (_routing(m.get("routing", "balanced")), _f(m.get("prefix_hit_rate", 0.0)))
        for m in pred["models"]
    }
    return Plan(
        objective=data["objective"],
        allocations=tuple(
            Allocation(
                a["model"],
                a["gpu_type"],
                int(a["tensor_parallel"]),
                share_eighths(float(a["gpu_fraction"])),
                int(a["replicas"]),
                int(a.get("pipeline_parallel", 1)),
                bool(a.get("expert_parallel", False)),
                _data_parallel(a.get("data_parallel", 1)),
                cache.get(a["model"], ("balanced", 0.0))[0],
                cache.get(a["model"], ("balanced", 0.0))[1],
                int(a.get("kv_cache_tokens", 0)),
            )
            for a in data["allocations"]
        ),
        workflows=tuple(
            WorkflowPrediction(
                w["workflow_type"],
                _f(w["target_rate_per_s"]),
                _f(w["throughput_per_s"]),
                _f(w["mean_latency_s"]),
                w.get("slo_s"),
                _optional(w.get("p95_latency_s")),
            )
            for w in pred["workflows"]
        ),
        models=tuple(
            ModelPrediction(
                m["model"],
                _f(m["demand_per_s"]),
                _f(m["capacity_per_s"]),
                _f(m["utilisation"]),
                _f(m["call_latency_s"]),
                cache[m["model"]][1],
                cache[m["model"]][0],
            )
            for m in pred["models"]
        ),
        solver=SolverFacts(
            s["status"],
            _f(s["objective"]),
            _f(s["bound"]),
            _f(s["gap"]),
            _f(s.get("wall_s", 0.0)),
            tuple(
                StageFacts(
                    st["stage"],
                    st["status"],
                    _f(st["objective"]),
                    _f(st["bound"]),
                    _f(st["gap"]),
                    _f(st.get("wall_s", 0.0)),
                )
                for st in s.get("stages", ())
            ),
        ),
        gpus_total=int(data["gpus_total"]),
        inputs_digest=str(data.get("inputs_digest", "")),
        bottleneck_model=data.get("bottleneck_model"),
        notes=tuple(data.get("notes", ())),
        cost_per_hour=_optional(data.get("cost_per_hour")),
        power_kw=_optional(data.get("power_kw")),
    )


def _optional(x: Any) -> float | None:
    return None if x is None else float(x)


def inputs_digest(files: Iterable[Path], options: Mapping[str, Any]) -> str:
    """sha256 over the input files' names and bytes (sorted) and the options as YAML."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in files):
        h.update(path.name.encode())
        h.update(b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    h.update(yaml.safe_dump(dict(options), sort_keys=True).encode())
    return "sha256:" + h.hexdigest()
