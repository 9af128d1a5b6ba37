"""vLLM's Prometheus metrics, read before, during and after a replay (pure parsing).

Names as vLLM's V1 engine exports them (REFERENCE.md section 12): gauges
`vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`
(a fraction 0-1); counters, scraped with the `_total` suffix, `vllm:prompt_tokens`,
`vllm:generation_tokens`, `vllm:num_preemptions`, `vllm:prefix_cache_queries` and
`vllm:prefix_cache_hits` (both in tokens). A server with several engines or models
exports one sample per label set; they are summed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


def parse_metrics(text: str, where: str) -> dict[str, float]:
    """The gauges and counters above from a /metrics page (absent ones are left out).

    Raises:
        InputError: the page is not Prometheus text exposition.
    """
    wanted = set(GAUGES) | set(COUNTERS)
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
    )
