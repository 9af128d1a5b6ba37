"""The example-trace generator (traces/generate.py) and the sample committed beside it."""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]
TRACES = REPO / "traces"


def _load_generator() -> ModuleType:
    # traces/ is a data folder, not a package: load the script by path.
    spec = importlib.util.spec_from_file_location("trace_generator", TRACES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
# The committed sample: each type at its default rate for the default window.
EXPECTED = {k.name: round(k.rate_per_s * gen.DEFAULT_MINUTES * 60) for k in gen.WORKFLOW_KINDS}
RATE = {k.name: k.rate_per_s for k in gen.WORKFLOW_KINDS}
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
QWEN_32B = "Qwen/Qwen3-32B"
RERANKER = "Qwen/Qwen3-Reranker-0.6B"


def read_trace(path: Path) -> pd.DataFrame:
    """Reads one sample file back with plain pandas/pyarrow (independently of planner)."""
    if path.name.endswith(".parquet"):
        frame = pq.read_table(path).to_pandas()
    elif path.name.endswith(".csv.gz"):
        frame = pd.read_csv(path)
        # CSV cells hold the block hashes as integers separated by spaces.
        frame["prefix_hashes"] = frame["prefix_hashes"].map(
            lambda h: [int(x) for x in h.split()] if isinstance(h, str) else None
        )
    else:
        # pyarrow with the declared schema: pandas' read_json would guess *_time as dates.
        with gzip.open(path, "rb") as stream:
            options = pa_json.ParseOptions(explicit_schema=gen.SCHEMA)
            frame = pa_json.read_json(stream, parse_options=options).to_pandas()
    return _with_hash_tuples(frame)


def _with_hash_tuples(frame: pd.DataFrame) -> pd.DataFrame:
    """Block hashes as tuples of ints, whatever the reader made of the list column."""
    hashes = frame["prefix_hashes"].map(lambda h: None if h is None else tuple(int(x) for x in h))
    return frame.assign(prefix_hashes=hashes)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    frames = [read_trace(TRACES / kind.file_name) for kind in gen.WORKFLOW_KINDS]
    calls = pd.concat(frames, ignore_index=True)
    calls["duration_s"] = calls["end_time"] - calls["start_time"]
    return calls


def _run(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TRACES / "generate.py"), "--out", str(out), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_two_runs_are_byte_identical(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert _run(tmp_path / name, "--seed", "3", "--workflows", "15").returncode == 0
    for kind in gen.WORKFLOW_KINDS:
        a = (tmp_path / "a" / kind.file_name).read_bytes()
        b = (tmp_path / "b" / kind.file_name).read_bytes()
        assert a == b, kind.file_name
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_seed_changes_the_sample() -> None:
    kind = gen.WORKFLOW_KINDS[0]
    a = gen.generate(kind, seed=1, workflows=5, rate_per_s=0.2)
    b = gen.generate(kind, seed=2, workflows=5, rate_per_s=0.2)
    assert not a.equals(b)


def test_smaller_sample_is_a_prefix_of_a_larger_one() -> None:
    kind = gen.WORKFLOW_KINDS[2]
    small = gen.generate(kind, seed=7, workflows=4, rate_per_s=0.2)
    large = gen.generate(kind, seed=7, workflows=12, rate_per_s=0.2)
    head = large[large["workflow_id"].isin(set(small["workflow_id"]))]
    pd.testing.assert_frame_equal(small, head.reset_index(drop=True))


def test_committed_sample_is_what_the_documented_command_makes() -> None:
    # The docstring's command: --seed 7 with the default rates and window.
    for kind in gen.WORKFLOW_KINDS:
        expected = _with_hash_tuples(gen.generate(kind, 7, EXPECTED[kind.name], kind.rate_per_s))
        committed = read_trace(TRACES / kind.file_name)
        for column in ("model", "parent_call_id"):
            committed[column] = committed[column].astype(object).where(committed[column].notna())
            expected[column] = expected[column].astype(object).where(expected[column].notna())
        pd.testing.assert_frame_equal(
            committed.astype({c: object for c in committed.select_dtypes("string")}),
            expected.astype({c: object for c in expected.select_dtypes("string")}),
            check_dtype=False,
        )


def test_committed_sample_is_small() -> None:
    total = sum((TRACES / kind.file_name).stat().st_size for kind in gen.WORKFLOW_KINDS)
    assert total < 3_000_000


def test_rows_follow_the_schema(sample: pd.DataFrame) -> None:
    assert list(sample.columns[:-1]) == list(gen.COLUMNS)
    assert sample["call_id"].is_unique
    assert (sample["end_time"] > sample["start_time"]).all()
    assert set(sample["status"]) == {"ok", "error", "retry"}
    tools = sample[sample["kind"] == "tool"]
    assert tools["model"].isna().all()
    assert (tools[["input_tokens", "output_tokens", "cached_input_tokens"]] == 0).all().all()
    llm = sample[sample["kind"] == "llm"]
    assert set(llm["model"]) == {LLAMA_8B, LLAMA_70B, QWEN_32B, RERANKER}
    assert (llm["input_tokens"] > 0).all()
    assert (llm.loc[llm["status"] != "error", "output_tokens"] >= 1).all()
    cached = llm["cached_input_tokens"]
    assert ((cached >= 0) & (cached < llm["input_tokens"]) & (cached % 16 == 0)).all()


def test_children_start_after_their_parent_ends(sample: pd.DataFrame) -> None:
    parents = sample.set_index("call_id")
    children = sample[sample["parent_call_id"].notna()]
    parent = parents.loc[children["parent_call_id"]]
    assert (children["start_time"].to_numpy() >= parent["end_time"].to_numpy()).all()
    assert (children["workflow_id"].to_numpy() == parent["workflow_id"].to_numpy()).all()
    # Every workflow has exactly one root: the DAG is connected.
    roots = sample[sample["parent_call_id"].isna() & (sample["workflow_type"] != "beam_search")]
    assert roots.groupby("workflow_id").size().eq(1).all()


def _overlapping(group: pd.DataFrame) -> bool:
    return bool(group["start_time"].max() < group["end_time"].min())


def test_fan_out_calls_overlap_in_time(sample: pd.DataFrame) -> None:
    rerank = sample[sample["agent"] == "reranker"]
    groups = rerank.groupby("parent_call_id")
    assert groups.size().between(8, 16).all()
    assert groups.apply(_overlapping).all()
    # Beam search: the candidates expanding one kept beam (same parent) run together.
    beam = sample[(sample["workflow_type"] == "beam_search") & (sample["agent"] == "generator")]
    beam = beam.assign(parent=beam["parent_call_id"].fillna(beam["workflow_id"] + "/root"))
    siblings = beam.groupby("parent").filter(lambda g: len(g) > 1).groupby("parent")
    assert len(siblings) > 300
    assert siblings.apply(_overlapping).all()


def test_calls_per_workflow_are_in_the_documented_ranges(sample: pd.DataFrame) -> None:
    llm = sample[sample["kind"] == "llm"]
    per_type = {t: g for t, g in llm.groupby("workflow_type")}
    rag = per_type["rag"].groupby("workflow_id").size()
    assert rag.between(9, 34).all()
    assert (rag >= 18).any() and (rag <= 17).any()  # one and two retrieval rounds
    retrievals = sample[sample["agent"] == "retrieve"].groupby("workflow_id").size()
    assert retrievals.between(1, 2).all() and len(retrievals) == EXPECTED["rag"]

    beam = per_type["beam_search"]
    generators = beam[beam["agent"] == "generator"].groupby("workflow_id").size()
    verifiers = beam[beam["agent"] == "verifier"].groupby("workflow_id").size()
    assert (generators == verifiers + 1).all()
    assert beam.groupby("workflow_id").size().between(49, 193).all()

    coding = per_type["coding_agent"]
    completed = coding[coding["status"] != "error"].groupby("workflow_id").size()
    assert completed.between(7, 18).all()
    agents = coding[coding["status"] != "error"].groupby(["workflow_id", "agent"]).size()
    per_agent = agents.unstack(fill_value=0)
    assert (per_agent["planner"] == 1).all() and (per_agent["verifier"] == 1).all()
    assert per_agent["explorer"].between(3, 8).all()
    assert (per_agent["engineer"] == per_agent["reviewer"]).all()
    assert per_agent["engineer"].between(1, 4).all() and (per_agent["engineer"] > 1).any()


def test_failed_calls_are_retried_with_the_same_prompt(sample: pd.DataFrame) -> None:
    errors = sample[sample["status"] == "error"]
    assert set(errors["workflow_type"]) == {"coding_agent"} and len(errors) >= 10
    retries = sample[sample["status"].isin(["error", "retry"])]
    retries = retries[retries["parent_call_id"].isin(set(errors["call_id"]))]
    assert len(retries) == len(errors)  # each failed attempt is re-sent exactly once
    failed = errors.set_index("call_id").loc[retries["parent_call_id"]]
    assert (retries["agent"].to_numpy() == failed["agent"].to_numpy()).all()
    assert (retries["input_tokens"].to_numpy() == failed["input_tokens"].to_numpy()).all()


def test_shared_models_serve_two_workflow_types(sample: pd.DataFrame) -> None:
    types = sample.groupby("model")["workflow_type"].agg(lambda s: set(s))
    assert types[LLAMA_8B] == {"rag", "coding_agent"}
    assert types[RERANKER] == {"rag", "beam_search"}


def test_durations_follow_tokens_and_model_size(sample: pd.DataFrame) -> None:
    llm = sample[(sample["kind"] == "llm") & (sample["output_tokens"] >= 100)]
    per_token = (llm["duration_s"] / llm["output_tokens"]).groupby(llm["model"]).median()
    assert per_token[LLAMA_8B] < per_token[QWEN_32B] < per_token[LLAMA_70B]
    assert per_token[LLAMA_8B] > 0.010 and per_token[LLAMA_70B] < 0.060
    # Longer answers take longer on the same model.
    qwen = llm[llm["model"] == QWEN_32B]
    assert np.corrcoef(qwen["output_tokens"], qwen["duration_s"])[0, 1] > 0.9
    tools = sample[sample["kind"] == "tool"].groupby("agent")["duration_s"]
    assert tools.max()["retrieve"] <= 0.301 and tools.min()["retrieve"] >= 0.049
    assert tools.median()["run_tests"] > 5 and tools.median()["read_file"] < 0.2


def test_growing_contexts_are_served_from_the_prefix_cache(sample: pd.DataFrame) -> None:
    explorer = sample[(sample["agent"] == "explorer") & (sample["status"] == "ok")]
    later = explorer[explorer.duplicated("workflow_id")]  # all but each workflow's first
    share = later["cached_input_tokens"].sum() / later["input_tokens"].sum()
    assert share > 0.6  # TraceLab's (longer) coding sessions: median cached share 0.94


def test_token_lengths_follow_the_fitted_distributions(sample: pd.DataFrame) -> None:
    rag = sample[(sample["workflow_type"] == "rag") & (sample["agent"] == "generator")]
    answers = rag.groupby("workflow_id").tail(1)["output_tokens"]
    assert 120 < answers.median() < 190  # Azure 2023 conv output median: 151
    # log(p90 / median) = 1.2816 sigma for a log-normal; the fit's sigma is 0.86.
    assert 0.75 < np.log(answers.quantile(0.9) / answers.median()) / 1.2816 < 1.0
    rerank = sample[sample["model"] == RERANKER]
    assert (rerank["output_tokens"] == 1).all()


def test_arrivals_match_the_documented_rate(sample: pd.DataFrame) -> None:
    starts = sample.groupby(["workflow_type", "workflow_id"])["start_time"].min()
    for workflow_type, times in starts.groupby(level=0):
        assert len(times) == EXPECTED[workflow_type]
        rate = (len(times) - 1) / (times.max() - times.min())
        assert rate == pytest.approx(RATE[workflow_type], rel=0.25)  # 90-900 arrivals
        gaps = np.diff(np.sort(times.to_numpy()))
        assert 0.7 < gaps.std() / gaps.mean() < 1.3  # exponential gaps: CV 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workflows", "0"], "--workflows"),
        (["--rate", "search=1"], "unknown workflow type"),
        (["--rate", "rag=fast"], "not a number"),
        (["--rate", "-1"], "must be > 0"),
        (["--minutes", "0"], "--minutes"),
    ],
)
def test_bad_arguments_exit_with_usage_error(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gen.main(["--out", str(tmp_path), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_rates_and_window_set_the_workflow_counts(tmp_path: Path) -> None:
    # A bare rate sets every type, TYPE=R then overrides one: 2 min x 0.1/s, rag 1/s.
    assert (
        gen.main(["--out", str(tmp_path), "--minutes", "2", "--rate", "0.1", "--rate", "rag=1"])
        == 0
    )
    counts = {
        kind.name: read_trace(tmp_path / kind.file_name)["workflow_id"].nunique()
        for kind in gen.WORKFLOW_KINDS
    }
    assert counts == {"rag": 120, "beam_search": 12, "coding_agent": 12}


def _union_length_s(calls: pd.DataFrame) -> pd.Series:
    """Per workflow, the length of the union of the calls' [start, end] intervals."""
    calls = calls.sort_values(["workflow_id", "start_time"])
    # A call opens a new busy block when it starts after every earlier call of its workflow ended.
    reach = calls.groupby("workflow_id")["end_time"].cummax()
    earlier = reach.groupby(calls["workflow_id"]).shift()
    block = (earlier.isna() | (calls["start_time"] > earlier)).cumsum()
    spans = calls.groupby(block).agg(
        workflow_id=("workflow_id", "first"), start=("start_time", "min"), end=("end_time", "max")
    )
    return (spans["end"] - spans["start"]).groupby(spans["workflow_id"]).sum()


def _parallelism(calls: pd.DataFrame) -> float:
    busy = calls.groupby("workflow_id")["duration_s"].sum()
    return float((busy / _union_length_s(calls)).mean())


def test_union_length_on_a_hand_computed_case() -> None:
    calls = pd.DataFrame(
        {
            "workflow_id": ["a", "a", "a", "b"],
            "start_time": [0.0, 1.0, 5.0, 2.0],
            "end_time": [2.0, 3.0, 6.0, 2.5],
        }
    )
    assert _union_length_s(calls).to_dict() == {"a": 4.0, "b": 0.5}


def test_sample_has_the_intended_pipeline_structure(sample: pd.DataFrame) -> None:
    llm = sample[sample["kind"] == "llm"]

    def of(workflow_type: str, model: str) -> pd.DataFrame:
        return llm[(llm["workflow_type"] == workflow_type) & (llm["model"] == model)]

    beam_generator = of("beam_search", QWEN_32B)
    assert 3.0 < _parallelism(beam_generator) < 8.0  # width 8-16, limited by stragglers
    assert (
        49 < len(beam_generator) / EXPECTED["beam_search"] < 65
    )  # B*D + 1 with B ~ U{8..16}, D ~ U{3..6}
    assert 6.0 < _parallelism(of("rag", RERANKER)) < 16.0
    for model in (LLAMA_70B, QWEN_32B, LLAMA_8B):
        assert _parallelism(of("coding_agent", model)) == pytest.approx(1.0)
    # The 32B dominates beam search's LLM time; the verifier is a sliver of it.
    beam = llm[llm["workflow_type"] == "beam_search"]
    assert beam_generator["duration_s"].sum() / beam["duration_s"].sum() > 0.95


def _log_fit(values: pd.Series) -> tuple[float, float]:
    """(median, sigma) of a log-normal fitted to positive values by their log moments."""
    logs = np.log(values[values > 0].astype(float))
    return float(np.exp(logs.mean())), float(logs.std(ddof=0))


def test_distribution_anchors_are_fits_of_the_real_traces(shared_data: Path) -> None:
    traces = shared_data / "traces"
    conv = pd.read_csv(traces / "azure_llm_2023_conv.csv")
    median, sigma = _log_fit(conv["GeneratedTokens"])
    assert gen.RAG_ANSWER.median == pytest.approx(median, rel=0.02)
    assert gen.RAG_ANSWER.sigma == pytest.approx(sigma, abs=0.01)
    assert gen.BEAM_STEP.median == pytest.approx(median, rel=0.02)
    rounds = pd.read_json(traces / "tracelab_round_trace.jsonl", lines=True, dtype=False)
    median, sigma = _log_fit(rounds["output_tokens"])
    assert gen.CODE_PATCH.median == pytest.approx(median, rel=0.02)
    assert gen.CODE_PATCH.sigma == pytest.approx(sigma, abs=0.01)
    median, sigma = _log_fit(rounds["newly_append_tokens"])
    read_file_tokens = gen.CODE_TOOLS["read_file"][1]
    assert read_file_tokens.median == pytest.approx(median, rel=0.02)
    assert read_file_tokens.sigma == pytest.approx(sigma, abs=0.01)


def test_decode_speed_lies_within_measured_h100_points(
    sample: pd.DataFrame, shared_data: Path
) -> None:
    measured = pd.read_csv(shared_data / "calibration" / "vllm_measured_ttft_tpot.csv")
    # TP2 on H100: the smallest deployment both models fit (70B in FP8) at useful batch.
    h100 = measured[(measured["system"] == "h100_sxm") & (measured["tp_size"] == 2)]
    long = sample[(sample["kind"] == "llm") & (sample["output_tokens"] >= 200)]
    per_token_s = (long["duration_s"] / long["output_tokens"]).groupby(long["model"]).median()
    for model, measured_name in ((LLAMA_70B, "meta-llama/Llama-3.1-70B"), (QWEN_32B, QWEN_32B)):
        tpot_ms = h100.loc[h100["model_path"] == measured_name, "silicon_tpot_ms"]
        assert tpot_ms.min() < per_token_s[model] * 1000 < tpot_ms.max(), model


def test_committed_sample_ingests_into_the_intended_pipeline(sample: pd.DataFrame) -> None:
    from planner.aggregate import aggregate_pipeline
    from planner.io.traces import read_calls

    calls = read_calls(TRACES)
    assert len(calls) == len(sample)
    assert not calls.skipped_rows and not calls.notes and calls.has_end_times
    assert sorted(Path(s).name for s in calls.sources) == sorted(
        k.file_name for k in gen.WORKFLOW_KINDS
    )
    apl = {w.workflow_type: w for w in aggregate_pipeline(calls).workflows}
    assert set(apl) == {"rag", "beam_search", "coding_agent"}
    llm = sample[sample["kind"] == "llm"]
    for workflow_type, stats in apl.items():
        assert stats.workflow_count == EXPECTED[workflow_type]
        assert stats.arrival_rate_per_s == pytest.approx(RATE[workflow_type], rel=0.25)
        calls_of_type = llm[llm["workflow_type"] == workflow_type]
        for model in stats.models:
            mine = calls_of_type[calls_of_type["model"] == model.model]
            # planner's APL agrees with this file's independent computation.
            expected = len(mine) / EXPECTED[workflow_type]
            assert model.calls_per_workflow == pytest.approx(expected, rel=1e-9)
            assert model.parallelism == pytest.approx(_parallelism(mine), rel=0.01)
    beam = apl["beam_search"].model(QWEN_32B)
    assert beam is not None and beam.parallelism > 3.0 and beam.execution_share > 0.95
    reranker = apl["rag"].model(RERANKER)
    assert reranker is not None and reranker.parallelism > 6.0
    coding = apl["coding_agent"]
    assert {m.model for m in coding.models} == {LLAMA_70B, QWEN_32B, LLAMA_8B}
    assert all(m.parallelism == pytest.approx(1.0) for m in coding.models)
    assert sum(m.error_count for m in coding.models) == (sample["status"] == "error").sum()
    assert coding.llm_time_fraction is not None and 0.4 < coding.llm_time_fraction < 0.8
    assert apl["rag"].model(LLAMA_8B) is not None and coding.model(LLAMA_8B) is not None


def test_summary_divides_totals_by_the_window() -> None:
    calls = pd.DataFrame(
        {
            "workflow_type": ["rag", "rag", "rag", "coding_agent"],
            "kind": ["tool", "llm", "llm", "llm"],
            "model": [None, "m", "m", "m"],
            "call_id": ["a", "b", "c", "d"],
            "start_time": [0.0, 1.0, 2.0, 4.0],
            "end_time": [1.0, 3.0, 5.0, 10.0],
            "input_tokens": [0, 100, 300, 600],
            "output_tokens": [0, 10, 20, 30],
            "cached_input_tokens": [0, 0, 100, 400],
        }
    )
    row = gen.summarise([calls]).loc["m"]  # window: 0 s to 10 s
    assert row["workflow_types"] == "coding_agent,rag"
    assert row["calls_per_s"] == 0.3
    assert row["output_tokens_per_s"] == 6.0
    assert row["uncached_input_tokens_per_s"] == 50.0


def test_otlp_spans_give_the_same_pipeline_as_the_canonical_files(tmp_path: Path) -> None:
    from planner.aggregate import aggregate_pipeline
    from planner.io.apl_json import pipeline_to_dict
    from planner.io.traces import read_calls

    for fmt in ("canonical", "otlp"):
        assert gen.main(["--out", str(tmp_path / fmt), "--workflows", "12", "--format", fmt]) == 0
    otlp_files = sorted(p.name for p in (tmp_path / "otlp").iterdir())
    assert otlp_files == sorted(f"{k.name}.otlp.jsonl.gz" for k in gen.WORKFLOW_KINDS)
    canonical = pipeline_to_dict(aggregate_pipeline(read_calls(tmp_path / "canonical")))
    spans = pipeline_to_dict(aggregate_pipeline(read_calls(tmp_path / "otlp")))
    reuse: dict[str, list[str]] = {}
    for name, document in (("canonical", canonical), ("otlp", spans)):
        document.pop("sources", None)
        # Span parents are the workflow span (dependencies are links), so OTLP has no
        # LLM-to-LLM call graph; and GenAI spans have no attribute for prefix block
        # hashes, so their reuse evidence is the session structure: the statistics that
        # legitimately differ.
        for workflow in document["workflows"]:
            workflow["characterisation"].pop("call_graph_depth")
            for model in workflow["models"]:
                reuse.setdefault(name, []).append(model.pop("prefix_reuse")["source"])
    _assert_close(spans, canonical, "apl")
    assert set(reuse["canonical"]) == {"hashes"}
    assert set(reuse["otlp"]) <= {"session", "provider"} and "session" in reuse["otlp"]


def _assert_close(got: object, want: object, where: str) -> None:
    """Equal structure, numbers equal to 1e-5 (planner keeps relative times in float32)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            _assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6), where
    else:
        assert got == want, where
