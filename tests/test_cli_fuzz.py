"""Fuzzing the CLI in-process: whatever the input, an exit code of 0, 2 or 3, one error
line and no traceback, and nothing written when the command fails.

Inputs: random bytes under a trace extension; CSV, JSONL and Parquet tables with
mangled columns and values; random YAML as --cluster and --mapping files.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner.cli import app

COLUMNS = [
    "workflow_id",
    "workflow_type",
    "kind",
    "model",
    "call_id",
    "start_time",
    "end_time",
    "latency_s",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "status",
]
MODELS = ["Qwen3-32B", "Llama-3.1-8B-Instruct", "gpt-x", ""]


def mangle(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.upper(), name + " ", name.replace("_", ""), "x" + name])


VALUES = st.one_of(
    st.integers(-5, 3000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["", "abc", "1e12", "9223372036854775808", "2025-01-01T00:00:00+02:00", "ok", "llm"]
    ),
    st.sampled_from(MODELS),
    st.none(),
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[Any]]]:
    names = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=len(COLUMNS)))
    header = [draw(mangle(n)) if draw(st.booleans()) else n for n in dict.fromkeys(names)]
    rows = draw(st.lists(st.lists(VALUES, min_size=len(header), max_size=len(header)), max_size=12))
    return header, rows


def write_table(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    suffix = path.suffix
    if suffix == ".csv":
        lines = [",".join(header)] + [
            ",".join("" if v is None else str(v) for v in r) for r in rows
        ]
        path.write_text("\n".join(lines) + "\n")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, r, strict=True))) + "\n" for r in rows))
    else:
        columns = {
            h: [None if v is None else str(v) for v in col]
            for h, col in zip(
                header, zip(*rows, strict=True) if rows else [[] for _ in header], strict=True
            )
        }
        sink = io.BytesIO()
        pq.write_table(pa.table({h: pa.array(v, pa.string()) for h, v in columns.items()}), sink)
        path.write_bytes(sink.getvalue())


YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 100), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
CLUSTER_KEYS = st.fixed_dictionaries(
    {"schema_version": st.sampled_from([1, 2, "1"])},
    optional={
        "pools": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["a", "A", "a_b", "a-b", ""]),
                    "gpu_type": st.sampled_from(["H100-SXM-80GB", "h100", "TPU"]),
                },
                optional={
                    "nodes": st.integers(-1, 3),
                    "gpus_per_node": st.integers(0, 16),
                    "nvlink_domain_size": st.integers(0, 16),
                },
            ),
            max_size=3,
        )
    },
)

MODEL_KEYS = st.fixed_dictionaries(
    {"schema_version": st.just(1), "name": st.sampled_from(["Qwen3-32B", "x"])},
    optional={
        "heads": st.integers(-2, 70),
        "kv_heads": st.integers(0, 9),
        "layers": st.integers(-1, 80),
        "max_model_len": st.integers(-1, 100_000),
        "params_b": st.one_of(st.floats(-1, 100), st.just(float("nan"))),
    },
)
SHIPPED_PLAN = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "manifests" / "h100x8" / "plan.yaml").read_text()
)
PLAN_EDITS = st.fixed_dictionaries(
    {},
    optional={
        "replicas": st.integers(-3, 40),
        "tensor_parallel": st.sampled_from([0, 1, 2, 3, 8, 16, "x"]),
        "gpu_fraction": st.sampled_from([0.0, 0.125, 0.3, 0.5, 1.0, 2.0, None]),
        "model": st.sampled_from(["Qwen3-32B", "nope", ""]),
        "gpu_type": st.sampled_from(["H100-SXM-80GB", "TPU"]),
    },
)

CASES = st.one_of(
    st.tuples(
        st.just("bytes"),
        st.sampled_from([".csv", ".jsonl", ".parquet", ".json", ".csv.gz"]),
        st.binary(max_size=300),
    ),
    st.tuples(st.just("table"), st.sampled_from([".csv", ".jsonl", ".parquet"]), tables()),
    st.tuples(st.just("cluster"), st.just(".yaml"), st.one_of(CLUSTER_KEYS, YAML_VALUES)),
    st.tuples(st.just("mapping"), st.just(".yaml"), YAML_VALUES),
    st.tuples(st.just("catalog"), st.just(".yaml"), st.one_of(YAML_VALUES, MODEL_KEYS)),
    st.tuples(st.just("plan"), st.just(".yaml"), st.one_of(YAML_VALUES, PLAN_EDITS)),
)

REPO = Path(__file__).resolve().parents[1]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(CASES)
def test_cli_fails_cleanly_on_any_input(case: tuple[str, str, Any]) -> None:
    kind, suffix, payload = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        args = ["plan", "--time-limit", "5", "-o", str(root / "out")]
        given_file = root / f"input{suffix}"
        if kind == "bytes":
            given_file.write_bytes(payload)
            args.insert(1, str(given_file))
        elif kind == "table":
            write_table(given_file, *payload)
            args.insert(1, str(given_file))
        elif kind == "catalog":
            configs = root / "configs"
            shutil.copytree(REPO / "configs", configs)
            (configs / "models" / "Qwen3-32B.yaml").write_text(yaml.safe_dump(payload))
            given_file = configs
            args += ["--configs", str(configs)]
            args.insert(1, str(REPO / "traces"))
        elif kind == "plan":
            doc = yaml.safe_load(yaml.safe_dump(SHIPPED_PLAN))
            if isinstance(payload, dict) and set(payload) <= set(doc["allocations"][0]):
                doc["allocations"][1].update(payload)
            else:
                doc = payload
            given_file.write_text(yaml.safe_dump(doc))
            args = ["render", str(given_file), "--gpus", "8", "-o", str(root / "out")]
        else:
            given_file.write_text(yaml.safe_dump(payload))
            flag = "--cluster" if kind == "cluster" else "--mapping"
            args += [flag, str(given_file)]
            args.insert(1, str(REPO / "traces"))
        result = CliRunner().invoke(app, args)
        output = result.output
        assert result.exit_code in (0, 2, 3), (args, output, result.exception)
        assert "Traceback" not in output
        if result.exit_code != 0:
            lines = [line for line in output.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("Error: "), output
            assert sorted(p.name for p in root.iterdir()) == [given_file.name]


def test_infeasible_message_states_one_gpu_count() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = CliRunner().invoke(
            app, ["plan", str(REPO / "traces"), "--gpus", "2", "-o", str(Path(tmp) / "out")]
        )
    assert result.exit_code == 3, result.output
    line = result.output.strip()
    assert line.count("\n") == 0 and line.startswith("Error: infeasible")
    import re

    counts = set(re.findall(r"needs (\d+(?:\.\d+)?) GPUs", line))
    assert len(counts) <= 1, line
