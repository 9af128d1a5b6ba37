"""Seeded generator of the example agentic-workflow traces shipped in ``traces/``.

It writes three multi-model workflow types in planner's canonical call schema (one row per
LLM or tool call, see ``traces/README.md``), each in a different file format so that the
directory also shows mixed inputs:

=================  ===========================  ============================================
workflow_type      file                         models (Hugging Face ids)
=================  ===========================  ============================================
``rag``            ``rag.parquet``              Qwen/Qwen3-Reranker-0.6B (reranker),
                                                meta-llama/Llama-3.1-8B-Instruct (generator)
``beam_search``    ``beam_search.csv.gz``       Qwen/Qwen3-32B (generator),
                                                Qwen/Qwen3-Reranker-0.6B (verifier)
``coding_agent``   ``coding_agent.jsonl.gz``    meta-llama/Llama-3.1-70B-Instruct (planner,
                                                reviewer), meta-llama/Llama-3.1-8B-Instruct
                                                (explorer, verifier), Qwen/Qwen3-32B
                                                (engineer)
=================  ===========================  ============================================

Llama-3.1-8B serves two workflow types and Qwen3-Reranker two roles on purpose: a shared
model adds the demands of several workflows (the planner must see that).

The committed sample was made with (numpy 2.4, pandas 3.0, pyarrow 26)::

    python traces/generate.py --out traces/ --seed 7

i.e. each type arrives as a Poisson process at its default rate (rag 0.5, beam_search
0.05, coding_agent 0.15 workflows/s) for 30 minutes: 900, 90 and 270 workflows.
``--rate [TYPE=]R``, ``--minutes`` and ``--workflows`` (exactly N per type) change that.
The same seed, arguments and library versions give byte-identical files (Parquet with
fixed writer settings and no pandas metadata; gzip with mtime 0 and no file name).
Workflow ``i`` of a type has calls that depend only on (seed, type, i) and an arrival time
that depends on (seed, type, rate), so a shorter window gives a prefix of a longer one.

``--format otlp`` writes the same calls as OpenTelemetry GenAI spans instead
(``<type>.otlp.jsonl.gz``, one OTLP/JSON export per workflow: an ``invoke_workflow`` span
with ``gen_ai.workflow.name`` and ``gen_ai.conversation.id``, ``chat`` spans with the
``gen_ai.usage.*`` tokens and ``gen_ai.agent.name``, ``execute_tool`` spans, failed calls
with status ERROR, re-sent ones with ``gen_ai.request.retry``, dependencies as span links);
planner reads both into the same pipeline (a test checks it). Write them outside traces/.

Columns: ``workflow_id, workflow_type, kind, agent, model, call_id, parent_call_id,
start_time, end_time, input_tokens, output_tokens, cached_input_tokens, status,
prefix_hashes, prefix_block_tokens``. Times are
epoch seconds (the window starts 2026-01-01T00:00:00Z) rounded to milliseconds. Tool rows
have ``kind = tool``, no model, zero tokens, and the tool's name as ``agent`` (retrieve,
read_file, grep, run_tests). ``parent_call_id`` names the call whose end the call waited
for; when a call waited for several (a barrier after a fan-out), it names the last of them
to end. Every call starts after its parent ends (plus 5-30 ms of orchestration).

Workflows
---------
``rag``: ``retrieve`` tool (50-300 ms) -> k = 8-16 reranker calls in parallel, one per
retrieved chunk (output 1 token) -> generator. With probability 0.3 the first generator
call asks a follow-up query and a second round (retrieve, rerank, generate) follows, the
generator re-sending its first prompt (cached). LLM calls per workflow: 9-17 with one
round, 18-34 with two; 1-2 tool rows.

``beam_search``: beam width B = 8-16, depth D = 3-6. At each depth B generator calls run in
parallel, each extending one of the kept beams by a reasoning step; each candidate is
scored by a verifier call as soon as it ends; after all verifiers of a depth end (barrier)
the K = max(2, B // 4) best candidates are kept (chosen at random here: the scores are not
modelled). A final generator call writes the answer. LLM calls per workflow: 2·B·D + 1,
i.e. 49-193.

``coding_agent``: planner -> explorer loop of 3-8 calls, each but the last followed by 1-3
parallel tools (read_file, grep, run_tests) whose results grow its context -> engineer ->
``run_tests`` -> reviewer; the reviewer rejects with probability 0.5, 0.35, 0.2 in rounds
1-3 (round 4 always approves), and a rejection sends the engineer round again -> full
``run_tests`` -> verifier. Every LLM attempt fails with probability 0.04 (status
``error``, output cut part-way); it is re-sent after an exponential backoff (status
``retry``, parent = the failed attempt) at most twice, the third attempt always succeeds.
LLM calls per workflow excluding failed attempts: 7-18.

Distributions and timing
------------------------
Token counts are log-normal (median, sigma), rounded and clipped to a range, anchored on
real traces in ../shared/data (fits of log tokens: Azure LLM inference trace 2023 conv
output mu 5.02 sigma 0.86, i.e. median 151; TraceLab coding-agent rounds: output median 321
sigma 1.13, appended context per round median 1359 sigma 1.03, cached prefix share median
0.94; Mooncake conversation input median 6909 sigma 1.2). ``cached_input_tokens`` counts a
prefix the same model saw before, in 16-token blocks as vLLM reports it: shared system
prompts, an agent's own previous context (hit with probability 0.9: the rest models
eviction), a beam's prompt and path, a retried prompt.

``prefix_hashes`` are the prompt's chained 64-token block ids (``PREFIX_BLOCK_TOKENS``),
counted up in order of first appearance per workflow type, like Mooncake's ``hash_ids``.
A prompt is a sequence of named segments (``Prompt``): equal names are equal text, so
prompts share block ids as far as their segments agree. Every agent's system prompt and
tool definitions are shared by all workflows; an agent's later calls re-send its growing
context (explorer, engineer, reviewer); beam siblings share the problem and path; RAG
prompts put the retrieved documents, drawn Zipf-like (exponent 0.9) from one corpus of
20,000 chunks and ranked popular-first, before the question, so workflows whose top
document agrees share a prefix; the reranker's prompts share instruction and question.

A call's duration on an H100 is ``TTFT + output_tokens x TPOT``, with ``TTFT = base +
uncached_input_tokens x prefill time per token``; TTFT and TPOT each get a log-normal
jitter (sigma 0.25 and 0.12). The 70B and 32B constants (below, ``MODELS``) are read off
the measured vLLM H100 points in ../shared/data/calibration at moderate load (Llama-3.1-70B
FP8 TP2: TPOT 17-52 ms at 4-32 concurrent requests, TTFT 0.74-1.28 s at 8k input;
Qwen3-32B TP2: TPOT 16-26 ms at 8-64 requests of 1k/1k, TTFT 0.74 s at 4k input; we take
BF16 weights, hence the upper half). The 8B and the reranker, which the measurements lack,
are scaled down by weight bytes (decode is memory-bound: 16 GB of 8B weights take 4.8 ms
to stream at 3.35 TB/s, before overheads). Queueing is not modelled. Tool durations:
retrieval 50-300 ms, file reads and greps as in TraceLab's tool latencies (tens to hundreds
of ms), test runs seconds to minutes.

Sizing: the default mix is sized with planner's own analytic H100 profiles: at the
observed rates ``min-gpus`` needs 6.625 GPUs (Llama-3.1-70B TP4, Qwen3-32B TP2,
Llama-3.1-8B on half a GPU, the reranker on 1/8 of one, under the 0.85 utilisation cap),
and 8 GPUs sustain 1.32x the observed rates (6 GPUs: 0.73x) with prefix caching off;
with it (the default), 8 GPUs sustain 2.78x and 6 GPUs 0.78x. Demand over the ~32-minute
span (``--summary`` prints it): 70B 0.4 calls/s and 140 output tokens/s, 32B 3.0 calls/s
and 670 tokens/s, 8B 1.5 calls/s and 280 tokens/s, reranker 10.0 scoring calls/s;
uncached prompt tokens/s (as the provider-style ``cached_input_tokens`` count them)
1,000 / 1,400 / 3,400 / 3,300. Resulting structure (planner ingest, and an
independent computation in tests/test_generator.py): beam_search's 32B makes ~59 calls per
workflow with parallelism ~4.3 (stragglers keep it below the width); rag's reranker 15
calls per workflow with parallelism ~8; coding_agent's calls are serial, its LLMs busy
~60% of its ~2-minute wall time (the rest is tools).

Data sources (keep the attribution): Azure Public Dataset (CC-BY 4.0), Mooncake and
TraceLab (Apache-2.0); nothing from them is copied, only fitted distribution parameters.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

EPOCH_BASE_S = 1767225600.0  # 2026-01-01T00:00:00Z: the start of the traffic window
CACHE_BLOCK_TOKENS = 16  # vLLM's default KV block: prefix hits are whole blocks
# Prompts are hashed in 64-token blocks (4 vLLM blocks): fine enough for short shared
# prefixes, coarse enough to keep the files small. Ids are small integers given in order
# of first appearance (as in Mooncake's hash_ids), so the lists compress well.
PREFIX_BLOCK_TOKENS = 64
BLOCK_ID_BASE = 100_000_000

COLUMNS = (
    "workflow_id",
    "workflow_type",
    "kind",
    "agent",
    "model",
    "call_id",
    "parent_call_id",
    "start_time",
    "end_time",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "status",
    "prefix_hashes",
    "prefix_block_tokens",
)

# Arrow schema of every file: fixed so the bytes never depend on inferred types.
SCHEMA = pa.schema(
    [
        ("workflow_id", pa.string()),
        ("workflow_type", pa.string()),
        ("kind", pa.string()),
        ("agent", pa.string()),
        ("model", pa.string()),
        ("call_id", pa.string()),
        ("parent_call_id", pa.string()),
        ("start_time", pa.float64()),
        ("end_time", pa.float64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cached_input_tokens", pa.int64()),
        ("status", pa.string()),
        ("prefix_hashes", pa.list_(pa.int64())),
        ("prefix_block_tokens", pa.int64()),
    ]
)

# A prompt is a sequence of named segments (name, tokens): equal names are equal text, so
# two prompts share their block hashes as far as their segments agree.
Prompt = tuple[tuple[str, int], ...]


def prompt_tokens(prompt: Prompt) -> int:
    return sum(tokens for _, tokens in prompt)


class BlockIds:
    """Chained ids of full prompt blocks: a block's id names its text and every block before
    it (as vLLM's block hashes do). Ids count up from `first` in order of first appearance."""

    def __init__(self, first: int) -> None:
        self.next_id = first
        self.ids: dict[tuple[int, tuple[tuple[str, int, int], ...]], int] = {}

    def hashes(self, prompt: Prompt) -> list[int]:
        pieces: list[tuple[str, int, int]] = []  # (segment, from, to) inside the block
        out: list[int] = []
        parent, filled = -1, 0
        for name, tokens in prompt:
            at = 0
            while at < tokens:
                take = min(tokens - at, PREFIX_BLOCK_TOKENS - filled)
                pieces.append((name, at, at + take))
                at += take
                filled += take
                if filled == PREFIX_BLOCK_TOKENS:
                    key = (parent, tuple(pieces))
                    if key not in self.ids:
                        self.ids[key] = self.next_id
                        self.next_id += 1
                    parent = self.ids[key]
                    out.append(parent)
                    pieces, filled = [], 0
        return out  # a trailing partial block is never cached, so it has no id


@dataclass(frozen=True)
class ModelTiming:
    """How long a call to one model takes on one H100-class replica at moderate load."""

    hf_id: str
    ttft_base_s: float
    prefill_s_per_token: float
    tpot_s: float


LLAMA_70B = ModelTiming("meta-llama/Llama-3.1-70B-Instruct", 0.080, 0.00020, 0.035)
QWEN_32B = ModelTiming("Qwen/Qwen3-32B", 0.060, 0.00012, 0.025)
LLAMA_8B = ModelTiming("meta-llama/Llama-3.1-8B-Instruct", 0.025, 0.00003, 0.012)
# A 0.6B cross-encoder batches many short prompts: latency is mostly the batch's prefill.
RERANKER = ModelTiming("Qwen/Qwen3-Reranker-0.6B", 0.015, 0.00002, 0.006)
MODELS = (LLAMA_70B, QWEN_32B, LLAMA_8B, RERANKER)


@dataclass(frozen=True)
class LogNormal:
    """A log-normal quantity given by its median and log-space sigma, clipped to a range."""

    median: float
    sigma: float
    low: float
    high: float

    def tokens(self, rng: np.random.Generator) -> int:
        return round(self.draw(rng))

    def draw(self, rng: np.random.Generator) -> float:
        value = self.median * float(np.exp(self.sigma * rng.standard_normal()))
        return min(max(value, self.low), self.high)


# Orchestration delay between a call's end and the start of what waited for it.
GAP_S = (0.005, 0.030)
# Fan-out calls are dispatched within a few ms of each other (less than any call lasts).
STAGGER_S = 0.004

# --- rag -----------------------------------------------------------------------------------
RAG_SYSTEM_TOKENS = 300
RERANK_INSTRUCTION_TOKENS = 60
RAG_QUERY = LogNormal(40, 0.6, 8, 300)
RAG_CHUNK = LogNormal(350, 0.35, 96, 1024)  # 256-512-token chunking is the common default
RAG_ANSWER = LogNormal(151, 0.86, 8, 1500)  # Azure 2023 conv output fit
RAG_FOLLOWUP = LogNormal(40, 0.5, 8, 200)
RAG_RETRIEVE_S = LogNormal(0.12, 0.45, 0.05, 0.30)
RAG_SECOND_ROUND_P = 0.3
# Documents come from one shared corpus: popular ones are retrieved by many workflows.
RAG_CORPUS_DOCS = 20000
RAG_DOC_ZIPF = 0.9
CORPUS_SEED_KEY = 1 << 30  # keeps the corpus stream apart from every workflow's stream

# --- beam_search ---------------------------------------------------------------------------
BEAM_SYSTEM_TOKENS = 400
VERIFIER_INSTRUCTION_TOKENS = 80
BEAM_PROBLEM = LogNormal(600, 0.5, 100, 4000)
BEAM_STEP = LogNormal(151, 0.7, 16, 1024)  # Azure 2023 conv output median, narrower tail
BEAM_ANSWER = LogNormal(300, 0.6, 32, 2048)

# --- coding_agent --------------------------------------------------------------------------
PLANNER_SYSTEM_TOKENS = 1500
EXPLORER_SYSTEM_TOKENS = 1000
ENGINEER_SYSTEM_TOKENS = 1500
REVIEWER_SYSTEM_TOKENS = 1000
VERIFIER_SYSTEM_TOKENS = 600
CODE_TASK = LogNormal(500, 0.8, 50, 4000)
CODE_REPO_MAP = LogNormal(2500, 0.5, 500, 8000)
CODE_PLAN = LogNormal(450, 0.5, 100, 1500)
CODE_EXPLORE_STEP = LogNormal(120, 0.6, 16, 800)
CODE_EXPLORE_SUMMARY = LogNormal(500, 0.5, 100, 2000)
CODE_FILES = LogNormal(5000, 0.8, 500, 40000)  # the Mooncake input median is 6909
CODE_PATCH = LogNormal(321, 1.13, 32, 4096)  # TraceLab round output fit
CODE_REVIEW = LogNormal(250, 0.6, 20, 1500)
CODE_VERDICT = LogNormal(60, 0.5, 5, 400)
CODE_TEST_LOG = LogNormal(600, 0.8, 50, 6000)
# name -> (probability, result tokens appended to the context, duration in seconds)
CODE_TOOLS: dict[str, tuple[float, LogNormal, LogNormal]] = {
    # TraceLab appended-context fit; its exec_command latencies are 57-176 ms
    "read_file": (0.5, LogNormal(1359, 1.03, 50, 16000), LogNormal(0.06, 0.6, 0.005, 0.5)),
    # TraceLab Bash tool latencies: 145-860 ms
    "grep": (0.35, LogNormal(300, 0.8, 10, 4000), LogNormal(0.15, 0.7, 0.02, 2.0)),
    "run_tests": (0.15, LogNormal(600, 0.8, 50, 6000), LogNormal(8.0, 0.7, 1.5, 90.0)),
}
CODE_FULL_SUITE_S = LogNormal(20.0, 0.6, 5.0, 180.0)
CODE_EXPLORER_CALLS = (3, 8)
CODE_MAX_ROUNDS = 4
CODE_REJECT_P = (0.5, 0.35, 0.2, 0.0)  # the reviewer's rejection probability per round
CODE_ERROR_P = 0.04
CODE_MAX_ATTEMPTS = 3
CACHE_HIT_P = 0.9


@dataclass(frozen=True)
class Call:
    """A call already placed in time: what later calls need to know about it."""

    call_id: str
    end_s: float


def _blocks(tokens: int) -> int:
    return (tokens // CACHE_BLOCK_TOKENS) * CACHE_BLOCK_TOKENS


class Workflow:
    """Collects the rows of one workflow execution; times are seconds from window start."""

    def __init__(
        self,
        workflow_type: str,
        workflow_id: str,
        rng: np.random.Generator,
        blocks: BlockIds | None = None,
        corpus: np.ndarray | None = None,
    ) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        self.rng = rng
        self.blocks = blocks or BlockIds(0)
        self.corpus = corpus if corpus is not None else np.zeros(0, dtype=np.int64)
        self.rows: list[dict[str, object]] = []

    def own(self, name: str, tokens: int) -> tuple[str, int]:
        """A segment only this workflow sends (its task, its outputs, its tool results)."""
        return (f"{self.workflow_id}:{name}", tokens)

    def gap(self) -> float:
        return float(self.rng.uniform(*GAP_S))

    def stagger(self) -> float:
        return float(self.rng.uniform(0.0, STAGGER_S))

    def _row(self, **fields: object) -> str:
        call_id = f"{self.workflow_id}/{len(self.rows):03d}"
        self.rows.append({"call_id": call_id, **fields})
        return call_id

    def llm(
        self,
        agent: str,
        timing: ModelTiming,
        start_s: float,
        prompt: Prompt,
        output_tokens: int,
        cached_tokens: int,
        parent: Call | None,
        status: str = "ok",
    ) -> Call:
        """Places one LLM call; its duration follows from its tokens and the model."""
        input_tokens = prompt_tokens(prompt)
        cached = min(_blocks(cached_tokens), _blocks(max(input_tokens - 1, 0)))
        ttft = timing.ttft_base_s + (input_tokens - cached) * timing.prefill_s_per_token
        ttft *= float(np.exp(0.25 * self.rng.standard_normal()))
        tpot = timing.tpot_s * float(np.exp(0.12 * self.rng.standard_normal()))
        end_s = start_s + ttft + output_tokens * tpot
        call_id = self._row(
            kind="llm",
            agent=agent,
            model=timing.hf_id,
            parent_call_id=parent.call_id if parent else None,
            start_s=start_s,
            end_s=end_s,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached,
            status=status,
            prefix_hashes=self.blocks.hashes(prompt),
            prefix_block_tokens=PREFIX_BLOCK_TOKENS,
        )
        return Call(call_id, end_s)

    def llm_with_retries(
        self,
        agent: str,
        timing: ModelTiming,
        start_s: float,
        prompt: Prompt,
        output_tokens: int,
        cached_tokens: int,
        parent: Call | None,
    ) -> Call:
        """An LLM call that may fail part-way (status error) and be re-sent (status retry)."""
        status = "ok"
        for attempt in range(CODE_MAX_ATTEMPTS):
            if attempt < CODE_MAX_ATTEMPTS - 1 and self.rng.random() < CODE_ERROR_P:
                cut = int(output_tokens * self.rng.uniform(0.0, 1.0))
                failed = self.llm(
                    agent, timing, start_s, prompt, cut, cached_tokens, parent, "error"
                )
                # Clients back off exponentially (1 s, 2 s, ... with jitter) before re-sending.
                start_s = failed.end_s + (2.0**attempt) * float(self.rng.uniform(0.5, 1.5))
                # The failed attempt prefilled the prompt, so the re-sent one hits the cache.
                cached_tokens, parent, status = prompt_tokens(prompt), failed, "retry"
                continue
            break
        return self.llm(
            agent, timing, start_s, prompt, output_tokens, cached_tokens, parent, status
        )

    def tool(self, name: str, start_s: float, duration_s: float, parent: Call | None) -> Call:
        end_s = start_s + duration_s
        call_id = self._row(
            kind="tool",
            agent=name,
            model=None,
            parent_call_id=parent.call_id if parent else None,
            start_s=start_s,
            end_s=end_s,
            input_tokens=0,
            output_tokens=0,
            cached_input_tokens=0,
            status="ok",
            prefix_hashes=None,
            prefix_block_tokens=None,
        )
        return Call(call_id, end_s)

    def fan_out_barrier(self, calls: Sequence[Call]) -> Call:
        """The call a barrier after a fan-out waits for: the last one to end."""
        return max(calls, key=lambda c: c.end_s)


def rag_corpus(seed: int) -> np.ndarray:
    """Token length of each document chunk of the shared corpus, by document id."""
    rng = np.random.default_rng([seed, 0, CORPUS_SEED_KEY])
    draws = RAG_CHUNK.median * np.exp(RAG_CHUNK.sigma * rng.standard_normal(RAG_CORPUS_DOCS))
    return np.round(np.clip(draws, RAG_CHUNK.low, RAG_CHUNK.high)).astype(np.int64)


def _retrieve(wf: Workflow, k: int) -> list[int]:
    """k distinct document ids, popular documents more likely (Zipf-like), best first."""
    ranks = np.arange(1, len(wf.corpus) + 1, dtype=np.float64)
    weights = ranks**-RAG_DOC_ZIPF
    docs = wf.rng.choice(len(wf.corpus), size=k, replace=False, p=weights / weights.sum())
    return sorted(int(d) for d in docs)  # the retriever ranks popular documents first


def _doc(wf: Workflow, doc: int) -> tuple[str, int]:
    return (f"doc:{doc}", int(wf.corpus[doc]))


def rag(wf: Workflow, t0: float) -> None:
    """Retrieve -> rerank every chunk in parallel -> generate; sometimes a second round."""
    rng = wf.rng
    rounds = 2 if rng.random() < RAG_SECOND_ROUND_P else 1
    parent: Call | None = None
    start_s = t0
    query = wf.own("query", RAG_QUERY.tokens(rng))
    history: Prompt = ()  # the generator's earlier prompt and answer, re-sent in round 2
    for round_index in range(rounds):
        retrieved = wf.tool("retrieve", start_s, RAG_RETRIEVE_S.draw(rng), parent)
        docs = _retrieve(wf, int(rng.integers(8, 17)))
        fan_start = retrieved.end_s + wf.gap()
        prefix: Prompt = (("rerank-instruction", RERANK_INSTRUCTION_TOKENS), query)
        scores = [
            wf.llm(
                "reranker",
                RERANKER,
                fan_start + wf.stagger(),
                (*prefix, _doc(wf, d)),
                1,
                prompt_tokens(prefix) if i > 0 else 0,  # the first call warms the prefix
                retrieved,
            )
            for i, d in enumerate(docs)
        ]
        kept = sorted(rng.choice(docs, size=int(rng.integers(4, 7)), replace=False))
        context = tuple(_doc(wf, int(d)) for d in kept)
        last = round_index == rounds - 1
        output = RAG_ANSWER.tokens(rng) if last else RAG_FOLLOWUP.tokens(rng)
        if history:
            prompt: Prompt = (*history, *context)  # the follow-up question ends history
            hit = rng.random() < CACHE_HIT_P
            cached = RAG_SYSTEM_TOKENS + (prompt_tokens(history) if hit else 0)
        else:
            # Documents before the question: a popular first document is a prefix that
            # other workflows share.
            prompt = (("rag-system", RAG_SYSTEM_TOKENS), *context, query)
            cached = RAG_SYSTEM_TOKENS
        barrier = wf.fan_out_barrier(scores)
        answer = wf.llm(
            "generator", LLAMA_8B, barrier.end_s + wf.gap(), prompt, output, cached, barrier
        )
        query = wf.own(f"answer{round_index}", output)  # round 2 reranks for the follow-up
        history = (*prompt, query)
        parent, start_s = answer, answer.end_s + wf.gap()


def beam_search(wf: Workflow, t0: float) -> None:
    """Width-B beam search over reasoning steps, every candidate scored by a verifier."""
    rng = wf.rng
    width = int(rng.integers(8, 17))
    depth = int(rng.integers(3, 7))
    keep = max(2, width // 4)
    problem = wf.own("problem", BEAM_PROBLEM.tokens(rng))
    beams: list[tuple[Prompt, Call | None]] = [((), None)]  # (path steps, verifier call)
    start_s = t0
    for level in range(depth):
        candidates: list[tuple[Prompt, Call]] = []
        for j in range(width):
            path, parent = beams[j % len(beams)]
            step = wf.own(f"step{level}.{j}", BEAM_STEP.tokens(rng))
            prompt: Prompt = (("beam-system", BEAM_SYSTEM_TOKENS), problem, *path)
            # Siblings share the prompt and path; only the very first call sees it cold.
            cached = BEAM_SYSTEM_TOKENS if level == 0 and j == 0 else prompt_tokens(prompt)
            gen = wf.llm(
                "generator", QWEN_32B, start_s + wf.stagger(), prompt, step[1], cached, parent
            )
            scored: Prompt = (("verifier-instruction", VERIFIER_INSTRUCTION_TOKENS), problem, *path)
            verify = wf.llm(
                "verifier",
                RERANKER,
                gen.end_s + wf.gap(),
                (*scored, step),
                1,
                prompt_tokens(scored) if level > 0 or j > 0 else 0,
                gen,
            )
            candidates.append(((*path, step), verify))
        barrier = wf.fan_out_barrier([v for _, v in candidates])
        start_s = barrier.end_s + wf.gap()
        order = rng.permutation(len(candidates))[:keep]
        beams = [candidates[i] for i in sorted(order)]
    best_path, best = beams[0]
    prompt = (("beam-system", BEAM_SYSTEM_TOKENS), problem, *best_path)
    wf.llm(
        "generator",
        QWEN_32B,
        start_s,
        prompt,
        BEAM_ANSWER.tokens(rng),
        prompt_tokens(prompt),
        best,
    )


def _pick_tool(rng: np.random.Generator) -> str:
    names = list(CODE_TOOLS)
    weights = np.array([CODE_TOOLS[n][0] for n in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def coding_agent(wf: Workflow, t0: float) -> None:
    """Planner -> explorer with tools -> engineer/reviewer rounds -> tests -> verifier.

    Every agent's prompt starts with its system prompt and tool definitions (shared by all
    workflows), then the task; an agent's later calls re-send its earlier context.
    """
    rng = wf.rng
    task = wf.own("task", CODE_TASK.tokens(rng))

    plan_out = CODE_PLAN.tokens(rng)
    planner_prompt: Prompt = (
        ("planner-system", PLANNER_SYSTEM_TOKENS),
        task,
        wf.own("repo-map", CODE_REPO_MAP.tokens(rng)),
    )
    plan = wf.llm_with_retries(
        "planner", LLAMA_70B, t0, planner_prompt, plan_out, PLANNER_SYSTEM_TOKENS, None
    )
    plan_text = wf.own("plan", plan_out)

    # Explorer: a tool loop whose context grows by each round's output and tool results.
    calls = int(rng.integers(CODE_EXPLORER_CALLS[0], CODE_EXPLORER_CALLS[1] + 1))
    context: Prompt = (("explorer-system", EXPLORER_SYSTEM_TOKENS), task, plan_text)
    cached = EXPLORER_SYSTEM_TOKENS
    parent, start_s = plan, plan.end_s + wf.gap()
    summary = 0
    for i in range(calls):
        last = i == calls - 1
        output = CODE_EXPLORE_SUMMARY.tokens(rng) if last else CODE_EXPLORE_STEP.tokens(rng)
        step = wf.llm_with_retries("explorer", LLAMA_8B, start_s, context, output, cached, parent)
        if last:
            summary = output
            parent = step
            break
        tools = []
        results = 0
        fan_start = step.end_s + wf.gap()
        for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3]))):
            name = _pick_tool(rng)
            _, result_tokens, duration = CODE_TOOLS[name]
            results += result_tokens.tokens(rng)
            tools.append(wf.tool(name, fan_start + wf.stagger(), duration.draw(rng), step))
        hit = rng.random() < CACHE_HIT_P
        cached = prompt_tokens(context) + output if hit else EXPLORER_SYSTEM_TOKENS
        context = (*context, wf.own(f"explore{i}", output), wf.own(f"tools{i}", results))
        parent = wf.fan_out_barrier(tools)
        start_s = parent.end_s + wf.gap()

    # Engineer/reviewer rounds until the reviewer approves.
    engineer_prompt: Prompt = (
        ("engineer-system", ENGINEER_SYSTEM_TOKENS),
        task,
        plan_text,
        wf.own("summary", summary),
        wf.own("files", CODE_FILES.tokens(rng)),
    )
    engineer_cached = ENGINEER_SYSTEM_TOKENS
    reviewer_prompt: Prompt = (("reviewer-system", REVIEWER_SYSTEM_TOKENS), task, plan_text)
    reviewer_cached = REVIEWER_SYSTEM_TOKENS
    start_s = parent.end_s + wf.gap()
    patch = wf.own("patch", 0)
    for round_index in range(CODE_MAX_ROUNDS):
        patch = wf.own(f"patch{round_index}", CODE_PATCH.tokens(rng))
        engineer = wf.llm_with_retries(
            "engineer", QWEN_32B, start_s, engineer_prompt, patch[1], engineer_cached, parent
        )
        tests = wf.tool(
            "run_tests",
            engineer.end_s + wf.gap(),
            CODE_TOOLS["run_tests"][2].draw(rng),
            engineer,
        )
        test_log = wf.own(f"test-log{round_index}", CODE_TEST_LOG.tokens(rng))
        review_out = wf.own(f"review{round_index}", CODE_REVIEW.tokens(rng))
        review_in: Prompt = (*reviewer_prompt, patch, test_log)
        review = wf.llm_with_retries(
            "reviewer",
            LLAMA_70B,
            tests.end_s + wf.gap(),
            review_in,
            review_out[1],
            reviewer_cached,
            tests,
        )
        if rng.random() >= CODE_REJECT_P[round_index]:
            parent = review
            break
        hit = rng.random() < CACHE_HIT_P
        engineer_cached = (
            prompt_tokens(engineer_prompt) + patch[1] if hit else ENGINEER_SYSTEM_TOKENS
        )
        engineer_prompt = (*engineer_prompt, patch, test_log, review_out)
        reviewer_cached = (
            prompt_tokens(review_in) + review_out[1] if hit else REVIEWER_SYSTEM_TOKENS
        )
        reviewer_prompt = (*review_in, review_out)
        parent, start_s = review, review.end_s + wf.gap()

    suite = wf.tool("run_tests", parent.end_s + wf.gap(), CODE_FULL_SUITE_S.draw(rng), parent)
    verifier_prompt: Prompt = (
        ("verifier-system", VERIFIER_SYSTEM_TOKENS),
        task,
        patch,
        wf.own("suite-log", CODE_TEST_LOG.tokens(rng)),
    )
    wf.llm_with_retries(
        "verifier",
        LLAMA_8B,
        suite.end_s + wf.gap(),
        verifier_prompt,
        CODE_VERDICT.tokens(rng),
        VERIFIER_SYSTEM_TOKENS,
        suite,
    )


@dataclass(frozen=True)
class WorkflowKind:
    name: str
    file_name: str
    build: Callable[[Workflow, float], None]
    rate_per_s: float  # default Poisson arrival rate


# Default mix: cheap RAG queries are frequent, wide beam searches rare (see "Sizing").
WORKFLOW_KINDS = (
    WorkflowKind("rag", "rag.parquet", rag, 0.5),
    WorkflowKind("beam_search", "beam_search.csv.gz", beam_search, 0.05),
    WorkflowKind("coding_agent", "coding_agent.jsonl.gz", coding_agent, 0.15),
)
DEFAULT_MINUTES = 30.0


def generate(kind: WorkflowKind, seed: int, workflows: int, rate_per_s: float) -> pd.DataFrame:
    """All calls of `workflows` executions of one type, sorted by start time.

    Arrivals are a Poisson process of rate `rate_per_s` from the window start. Workflow i
    draws from its own generator seeded by (seed, type, i).
    """
    type_index = [k.name for k in WORKFLOW_KINDS].index(kind.name)
    arrivals_rng = np.random.default_rng([seed, type_index])
    arrivals = np.cumsum(arrivals_rng.exponential(1.0 / rate_per_s, size=workflows))
    rows: list[dict[str, object]] = []
    # Block ids of different types never meet: each type counts from its own base.
    blocks = BlockIds(type_index * BLOCK_ID_BASE)
    corpus = rag_corpus(seed)
    for i, t0 in enumerate(arrivals):
        wf = Workflow(
            kind.name,
            f"{kind.name}-{i:05d}",
            np.random.default_rng([seed, type_index, i]),
            blocks,
            corpus,
        )
        kind.build(wf, float(t0))
        for row in wf.rows:
            row["workflow_id"] = wf.workflow_id
            row["workflow_type"] = kind.name
        rows.extend(wf.rows)
    frame = pd.DataFrame(rows)
    # Rounding each time to the millisecond keeps order: a child never starts before its parent.
    frame["start_time"] = (EPOCH_BASE_S + frame.pop("start_s").round(3)).round(3)
    frame["end_time"] = (EPOCH_BASE_S + frame.pop("end_s").round(3)).round(3)
    frame = frame.sort_values(["start_time", "call_id"], kind="stable", ignore_index=True)
    frame["prefix_block_tokens"] = frame["prefix_block_tokens"].astype("Int64")  # null on tools
    return frame[list(COLUMNS)]


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    # from_pandas: a missing model or parent (NaN in pandas) becomes an Arrow null.
    arrays = [pa.array(frame[f.name], type=f.type, from_pandas=True) for f in SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def encode(frame: pd.DataFrame, file_name: str) -> bytes:
    """The file's bytes: deterministic for given rows and library versions."""
    if file_name.endswith(".parquet"):
        buffer = pa.BufferOutputStream()
        pq.write_table(
            _arrow_table(frame),
            buffer,
            compression="zstd",
            compression_level=9,
            use_dictionary=True,
            write_statistics=True,
            row_group_size=1 << 20,
            version="2.6",
            data_page_version="1.0",
            store_schema=False,
        )
        return bytes(buffer.getvalue().to_pybytes())
    if file_name.endswith(".csv.gz"):
        # A CSV cell holds the block hashes as integers separated by spaces.
        hashes = frame["prefix_hashes"].map(lambda h: None if h is None else " ".join(map(str, h)))
        text = frame.assign(prefix_hashes=hashes).to_csv(index=False, lineterminator="\n")
    elif file_name.endswith(".jsonl.gz"):
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    else:
        raise ValueError(f"unknown trace format for {file_name}")
    # mtime=0 and no file name in the header: the same rows always give the same bytes.
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def _span_id(name: str, size: int) -> str:
    return hashlib.blake2b(name.encode(), digest_size=size).hexdigest()


def _attribute(key: str, value: object) -> dict[str, object]:
    # OTLP/JSON carries 64-bit integers as strings.
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _unix_nano(seconds: float) -> str:
    return str(round(seconds * 1000) * 1_000_000)  # times are whole milliseconds


def otlp_exports(frame: pd.DataFrame) -> list[dict[str, object]]:
    """The same calls as OpenTelemetry GenAI spans: one OTLP/JSON export per workflow.

    Each workflow is one trace under an ``invoke_workflow`` span (``gen_ai.workflow.name``,
    ``gen_ai.conversation.id``); LLM calls are ``chat`` client spans, tools
    ``execute_tool`` spans; the dependency on ``parent_call_id`` becomes a span link, as
    instrumentations record causality across sibling spans.
    """
    exports = []
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    by_workflow: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_workflow.setdefault(row["workflow_id"], []).append(row)
    for workflow_id, calls in by_workflow.items():
        trace_id = _span_id(workflow_id, 16)
        root_id = _span_id(workflow_id + "/workflow", 8)
        workflow_type = calls[0]["workflow_type"]
        spans: list[dict[str, object]] = [
            {
                "traceId": trace_id,
                "spanId": root_id,
                "name": f"invoke_workflow {workflow_type}",
                "kind": 1,
                "startTimeUnixNano": _unix_nano(min(c["start_time"] for c in calls)),
                "endTimeUnixNano": _unix_nano(max(c["end_time"] for c in calls)),
                "attributes": [
                    _attribute("gen_ai.operation.name", "invoke_workflow"),
                    _attribute("gen_ai.workflow.name", workflow_type),
                    _attribute("gen_ai.conversation.id", workflow_id),
                ],
            }
        ]
        for call in calls:
            if call["kind"] == "llm":
                name = f"chat {call['model']}"
                attributes = [
                    _attribute("gen_ai.operation.name", "chat"),
                    _attribute("gen_ai.request.model", call["model"]),
                    _attribute("gen_ai.agent.name", call["agent"]),
                    _attribute("gen_ai.usage.input_tokens", call["input_tokens"]),
                    _attribute("gen_ai.usage.output_tokens", call["output_tokens"]),
                    _attribute("gen_ai.usage.cache_read.input_tokens", call["cached_input_tokens"]),
                ]
                if call["status"] == "retry":
                    attributes.append(_attribute("gen_ai.request.retry", True))
            else:
                name = f"execute_tool {call['agent']}"
                attributes = [
                    _attribute("gen_ai.operation.name", "execute_tool"),
                    _attribute("gen_ai.tool.name", call["agent"]),
                ]
            span: dict[str, object] = {
                "traceId": trace_id,
                "spanId": _span_id(call["call_id"], 8),
                "parentSpanId": root_id,
                "name": name,
                "kind": 3 if call["kind"] == "llm" else 1,
                "startTimeUnixNano": _unix_nano(call["start_time"]),
                "endTimeUnixNano": _unix_nano(call["end_time"]),
                "attributes": attributes,
            }
            if call["parent_call_id"] is not None:
                link = _span_id(call["parent_call_id"], 8)
                span["links"] = [{"traceId": trace_id, "spanId": link}]
            if call["status"] == "error":
                span["status"] = {"code": 2, "message": "call failed"}
            spans.append(span)
        scope = {"scope": {"name": "planner-trace-generator"}, "spans": spans}
        resource = {"attributes": [_attribute("service.name", workflow_type)]}
        exports.append({"resourceSpans": [{"resource": resource, "scopeSpans": [scope]}]})
    return exports


def encode_otlp(frame: pd.DataFrame) -> bytes:
    """OTLP/JSON, one export object per line, gzipped like the canonical files."""
    lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in otlp_exports(frame))
    return gzip.compress(lines.encode(), compresslevel=9, mtime=0)


def summarise(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Per model: calls/s, output and uncached input tokens/s over the traffic window."""
    calls = pd.concat(frames, ignore_index=True)
    window_s = calls["end_time"].max() - calls["start_time"].min()
    llm = calls[calls["kind"] == "llm"]
    per_model = llm.groupby("model").agg(
        calls=("call_id", "size"),
        output_tokens=("output_tokens", "sum"),
        uncached_input_tokens=("input_tokens", "sum"),
        cached=("cached_input_tokens", "sum"),
        workflow_types=("workflow_type", lambda s: ",".join(sorted(set(s)))),
    )
    per_model["uncached_input_tokens"] -= per_model.pop("cached")
    for column in ("calls", "output_tokens", "uncached_input_tokens"):
        per_model[f"{column}_per_s"] = (per_model.pop(column) / window_s).round(1)
    return per_model


def _rates(specs: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, float]:
    """Per-type rates from the defaults and `--rate [TYPE=]R` overrides (bare R: all)."""
    rates = {k.name: k.rate_per_s for k in WORKFLOW_KINDS}
    for spec in specs:
        name, _, value = spec.rpartition("=")
        try:
            rate = float(value)
        except ValueError:
            parser.error(f"--rate {spec}: not a number of workflows/s")
        if not rate > 0:
            parser.error(f"--rate {spec}: the rate must be > 0")
        if name and name not in rates:
            parser.error(f"--rate {spec}: unknown workflow type (one of {', '.join(rates)})")
        for key in [name] if name else list(rates):
            rates[key] = rate
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Workloads, distributions and sizing: traces/GENERATOR.md and this file's "
        "docstring.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("traces"), help="output directory (default traces)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--minutes",
        type=float,
        default=DEFAULT_MINUTES,
        help="arrival window: each type gets rate x window workflows (default 30)",
    )
    parser.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="[TYPE=]R",
        help="Poisson arrival rate in workflows/s of one type (rag=0.8) or of all (0.2); "
        "defaults: " + ", ".join(f"{k.name}={k.rate_per_s}" for k in WORKFLOW_KINDS),
    )
    parser.add_argument(
        "--workflows",
        type=int,
        help="exactly N workflows per type instead of rate x window (quick samples)",
    )
    parser.add_argument(
        "--format",
        choices=("canonical", "otlp"),
        default="canonical",
        help="canonical: the three files of the committed sample; otlp: the same calls as "
        "OpenTelemetry GenAI spans, <type>.otlp.jsonl.gz (write them elsewhere than "
        "traces/, or the workflows are read twice)",
    )
    parser.add_argument(
        "--summary", action="store_true", help="print per-model demand over the window"
    )
    args = parser.parse_args(argv)
    rates = _rates(args.rate, parser)
    if args.workflows is not None and args.workflows < 1:
        parser.error("--workflows must be >= 1")
    if not args.minutes > 0:
        parser.error("--minutes must be > 0")
    args.out.mkdir(parents=True, exist_ok=True)
    frames = []
    for kind in WORKFLOW_KINDS:
        rate = rates[kind.name]
        count = args.workflows or max(1, round(rate * args.minutes * 60))
        frame = generate(kind, args.seed, count, rate)
        if args.format == "otlp":
            path = args.out / f"{kind.name}.otlp.jsonl.gz"
            data = encode_otlp(frame)
        else:
            path = args.out / kind.file_name
            data = encode(frame, kind.file_name)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # never leave a half-written trace behind
        frames.append(frame)
        print(f"wrote {path}: {count} workflows at {rate}/s, {len(frame)} rows")
    if args.summary:
        print(summarise(frames).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
