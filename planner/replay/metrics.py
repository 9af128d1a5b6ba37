"""vLLM's Prometheus metrics, read before, during and after a replay (pure parsing).

Names as vLLM's V1 engine exports them (REFERENCE.md section 12): gauges
`vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`
(a fraction 0-1); counters, scraped with the `_total` suffix, `vllm:prompt_tokens`,
`vllm:generation_tokens`, `vllm:num_preemptions`, `vllm:prefix_cache_queries` and
`vllm:prefix_cache_hits` (both in tokens). A server with several engines or models
exports one sample per label set; they are summed.

The server's own view of the calls' latency comes from its histograms' `_sum` and
`_count` (vLLM 0.32, vllm/v1/metrics/loggers.py): `vllm:time_to_first_token_seconds`,
`vllm:request_time_per_output_token_seconds` (per request: decode time over output
tokens - 1, as the client computes TPOT), `vllm:inter_token_latency_seconds` (per token
gap; `vllm:time_per_output_token_seconds` before vLLM 0.11),
`vllm:e2e_request_latency_seconds` and `vllm:request_queue_time_seconds`. Their
increments between the scrapes before and after a replay give the mean over every
request the server finished in between. The server times a request from its arrival
at the API server, so the client's figures exceed them by the HTTP and streaming time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from planner.errors import InputError
from planner.types.names import ModelName

GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc")
COUNTERS = (
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:num_preemptions_total",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
)

#: Server-side latency histograms by quantity: the names vLLM exports, newest first.
HISTOGRAMS: Mapping[str, tuple[str, ...]] = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "tpot": ("vllm:request_time_per_output_token_seconds",),
    "itl": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    "e2e": ("vllm:e2e_request_latency_seconds",),
    "queue": ("vllm:request_queue_time_seconds",),
}
_HISTOGRAM_SAMPLES = tuple(
    f"{name}{suffix}" for names in HISTOGRAMS.values() for name in names
    for suffix in ("_sum", "_count")
)  # fmt: skip


def parse_metrics(text: str, where: str) -> dict[str, float]:
    """The gauges, counters and histogram sums and counts above from a /metrics page
    (absent ones are left out).

    Raises:
        InputError: the page is not Prometheus text exposition.
    """
    wanted = set(GAUGES) | set(COUNTERS) | set(_HISTOGRAM_SAMPLES)
    values: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in wanted:
                    values[sample.name] = values.get(sample.name, 0.0) + float(sample.value)
    except ValueError as exc:
        raise InputError(f"{where}: not a Prometheus metrics page ({exc})") from None
    return values


@dataclass(frozen=True)
class ServerSample:
    """One scrape of one endpoint at `t_s` seconds since the replay started."""

    endpoint: str
    t_s: float
    values: Mapping[str, float]


@dataclass(frozen=True)
class ServerMeasure:
    """What one server's metrics say about the replay.

    Counter fields are increments between the first and the last scrape (NaN when the
    server does not export the counter); gauges are the mean and maximum over the scrapes
    taken while the replay ran.
    """

    model: ModelName
    endpoint: str
    scrapes: int
    prompt_tokens: float
    generation_tokens: float
    preemptions: float
    prefix_cache_queries: float
    prefix_cache_hits: float
    mean_running: float
    max_running: float
    mean_waiting: float
    max_waiting: float
    mean_kv_usage: float
    max_kv_usage: float
    # Per quantity of HISTOGRAMS the server exports: (increment of the sum in seconds,
    # increment of the count) between the first and the last scrape.
    histograms: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def prefix_cache_hit_rate(self) -> float:
        q = self.prefix_cache_queries
        return self.prefix_cache_hits / q if q > 0 else math.nan


def summarise_server(
    model: ModelName, endpoint: str, samples: Sequence[ServerSample]
) -> ServerMeasure:
    """Counter increments and gauge statistics of one endpoint's scrapes (in time order)."""
    mine = sorted((s for s in samples if s.endpoint == endpoint), key=lambda s: s.t_s)

    def delta(name: str) -> float:
        have = [s.values[name] for s in mine if name in s.values]
        return have[-1] - have[0] if len(have) >= 2 else math.nan

    def gauge(name: str) -> tuple[float, float]:
        # The first and last scrapes bracket the replay (idle); the ones between ran during it.
        inner = mine[1:-1] if len(mine) > 2 else mine
        have = [s.values[name] for s in inner if name in s.values]
        return (sum(have) / len(have), max(have)) if have else (math.nan, math.nan)

    running, waiting, kv = (gauge(g) for g in GAUGES)
    histograms: dict[str, tuple[float, float]] = {}
    for quantity, names in HISTOGRAMS.items():
        for name in names:
            total, count = delta(f"{name}_sum"), delta(f"{name}_count")
            if math.isfinite(total) and math.isfinite(count):
                histograms[quantity] = (total, count)
                break
    return ServerMeasure(
        model=model,
        endpoint=endpoint,
        scrapes=len(mine),
        prompt_tokens=delta("vllm:prompt_tokens_total"),
        generation_tokens=delta("vllm:generation_tokens_total"),
        preemptions=delta("vllm:num_preemptions_total"),
        prefix_cache_queries=delta("vllm:prefix_cache_queries_total"),
        prefix_cache_hits=delta("vllm:prefix_cache_hits_total"),
        mean_running=running[0],
        max_running=running[1],
        mean_waiting=waiting[0],
        max_waiting=waiting[1],
        mean_kv_usage=kv[0],
        max_kv_usage=kv[1],
        histograms=histograms,
    )


@dataclass(frozen=True)
class ServerTimings:
    """One model's calls as its servers timed them (vLLM's histograms over all its
    endpoints), in ms; NaN where no server exports the histogram or none counted."""

    requests: float
    ttft_ms: float
    tpot_ms: float
    itl_ms: float
    e2e_ms: float
    queue_ms: float


def server_timings(servers: Sequence[ServerMeasure]) -> ServerTimings:
    """Means of the histogram increments of `servers` (one model's endpoints) pooled:
    summed seconds over summed counts."""

    def mean_ms(quantity: str) -> float:
        have = [s.histograms[quantity] for s in servers if quantity in s.histograms]
        count = sum(c for _, c in have)
        return 1000 * sum(t for t, _ in have) / count if count > 0 else math.nan

    counted = [s.histograms["e2e"][1] for s in servers if "e2e" in s.histograms]
    return ServerTimings(
        requests=sum(counted) if counted else math.nan,
        ttft_ms=mean_ms("ttft"),
        tpot_ms=mean_ms("tpot"),
        itl_ms=mean_ms("itl"),
        e2e_ms=mean_ms("e2e"),
        queue_ms=mean_ms("queue"),
    )
