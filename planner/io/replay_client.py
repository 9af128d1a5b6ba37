"""The HTTP side of `planner replay`: an asyncio client driving OpenAI-compatible servers.

One `httpx.AsyncClient` per endpoint URL, each with its own connection limit (calls
piling up at a saturated model never hold back another model's calls or the metric
scrapes, which have a client of their own), sends every call as a streamed
`/v1/completions` request whose prompt is a list of token ids (exactly the recorded
input length) and which asks for exactly the recorded output length (`max_tokens`, and
vLLM's `min_tokens` and `ignore_eos`). TTFT is the first streamed chunk that carries a
choice; the output token count is the server's reported usage. A model served by several
URLs (replicas run as separate processes) gets each call on the URL with the fewest calls
in flight. Every server's `/metrics` is read before, every `scrape_interval_s` during,
and after the run.

Stopping: arrivals end at `duration_s` (or after `workflows` arrivals); running
workflows then get `drain_s` to finish. Ctrl-C (SIGINT), or an endpoint that refuses
connections, stops at once: running workflows are cancelled and recorded as incomplete,
and everything measured so far is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx
import numpy as np

from planner.errors import EndpointError, PlannerError
from planner.replay import ModelEndpoints, ReplaySettings
from planner.replay.measure import (
    CALL_ERROR,
    CALL_OK,
    CALL_TIMEOUT,
    WORKFLOW_FAILED,
    WORKFLOW_INCOMPLETE,
    WORKFLOW_OK,
    CallRecord,
    ReplayLog,
    WorkflowRecord,
)
from planner.replay.metrics import ServerSample, parse_metrics
from planner.replay.script import PrefixPlan, prompt_tokens
from planner.simulate.arrivals import ArrivalSpec, arrival_schedule
from planner.simulate.workload import TOOL, Workload
from planner.types.names import ModelName

_PROBE_TIMEOUT_S = 10.0
#: The API key the servers expect, read from the same variable vLLM's server reads.
API_KEY_ENV = "VLLM_API_KEY"
_ERROR_CHARS = 300

#: Called about once a second: (seconds elapsed, workflows finished, workflows running).
Progress = Callable[[float, int, int], None]


@dataclass(frozen=True)
class ResolvedEndpoint:
    """A model's URLs and the `model` name its server expects."""

    model: ModelName
    urls: tuple[str, ...]
    served_name: str


@dataclass(frozen=True)
class ReplayRun:
    """What a replay recorded: calls and workflows, and every /metrics scrape."""

    log: ReplayLog
    samples: tuple[ServerSample, ...]
    endpoints: tuple[ResolvedEndpoint, ...]


def run_replay(
    workload: Workload,
    prefixes: PrefixPlan,
    endpoints: Mapping[ModelName, ModelEndpoints],
    settings: ReplaySettings,
    progress: Progress | None = None,
) -> ReplayRun:
    """Replay `workload` against `endpoints` (keyed by the workload's model names).

    Raises:
        EndpointError: before anything is sent, an endpoint does not answer or does not
            serve its model. Failures during the run are recorded, not raised.
    """
    return asyncio.run(_Replayer(workload, prefixes, endpoints, settings, progress).run())


class _Stop(Exception):
    """A workflow's call failed: cancel its other calls."""


class _Replayer:
    client: httpx.AsyncClient

    def __init__(
        self,
        workload: Workload,
        prefixes: PrefixPlan,
        endpoints: Mapping[ModelName, ModelEndpoints],
        settings: ReplaySettings,
        progress: Progress | None,
    ) -> None:
        self.w = workload
        self.prefixes = prefixes
        self.endpoints = endpoints
        self.s = settings
        self.progress = progress
        self.calls: list[CallRecord] = []
        self.workflows: dict[int, WorkflowRecord] = {}
        self.samples: list[ServerSample] = []
        self.in_flight: dict[str, int] = {}
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.t0 = 0.0
        self.resolved: dict[int, ResolvedEndpoint] = {}
        self.callers: dict[str, httpx.AsyncClient] = {}  # per endpoint URL, for calls

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def halt(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    async def run(self) -> ReplayRun:
        limits = httpx.Limits(
            max_connections=self.s.max_connections,
            max_keepalive_connections=self.s.max_connections,
        )
        # One budget for every phase of a call (an overloaded server accepts connections
        # late too); the probes and scrapes pass their own shorter timeout.
        timeout = httpx.Timeout(self.s.request_timeout_s)
        # Servers started with an API key (vLLM's VLLM_API_KEY) require it on /v1 routes.
        key = os.environ.get(API_KEY_ENV, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with contextlib.AsyncExitStack() as stack:
            self.client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=timeout, headers=headers)
            )
            resolved = await self._resolve()
            self.resolved = {self.w.models.index(r.model): r for r in resolved}
            self.in_flight = {u: 0 for r in resolved for u in r.urls}
            for url in self.in_flight:
                self.callers[url] = await stack.enter_async_context(
                    httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers)
                )
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGINT, self.halt, "interrupted (Ctrl-C)")
            try:
                self.t0 = time.perf_counter()
                await self._scrape_all()
                scraper = asyncio.create_task(self._scrape_loop())
                arrivals_end = await self._arrivals()
                elapsed = self.now()
                scraper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scraper
                await self._scrape_all()
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signal.SIGINT)
        log = ReplayLog(
            offered_rate_per_s=self.s.rate_per_s,
            warmup_s=min(self.s.warmup_s, arrivals_end),
            arrivals_end_s=arrivals_end,
            elapsed_s=elapsed,
            calls=tuple(sorted(self.calls, key=lambda c: (c.sent_s, c.instance))),
            workflows=tuple(self.workflows[i] for i in sorted(self.workflows)),
            interrupted=bool(self.stop_reason),
            stop_reason=self.stop_reason,
        )
        return ReplayRun(log, tuple(self.samples), tuple(resolved))

    # ---- before the run -------------------------------------------------------------

    async def _resolve(self) -> list[ResolvedEndpoint]:
        called = sorted({self.w.models[m] for m in set(self.w.node_model.tolist()) if m != TOOL})
        missing = [m for m in called if m not in self.endpoints]
        if missing:
            raise EndpointError(
                f"the traces call {', '.join(missing)} but the endpoints file has no URL for "
                f"{'it' if len(missing) == 1 else 'them'} (it names: "
                f"{', '.join(sorted(self.endpoints)) or 'nothing'}); add them to --endpoints"
            )
        checks = [
            self._served_name(self.endpoints[m], u) for m in called for u in self.endpoints[m].urls
        ]
        names = await asyncio.gather(*checks)
        out: list[ResolvedEndpoint] = []
        i = 0
        for m in called:
            urls = self.endpoints[m].urls
            served = set(names[i : i + len(urls)])
            i += len(urls)
            if len(served) > 1:
                raise EndpointError(
                    f"the URLs of model '{m}' serve different models "
                    f"({', '.join(sorted(served))}); give served_name in --endpoints"
                )
            out.append(ResolvedEndpoint(m, urls, served.pop()))
        return out

    async def _served_name(self, entry: ModelEndpoints, url: str) -> str:
        try:
            resp = await self.client.get(f"{url}/v1/models", timeout=_PROBE_TIMEOUT_S)
            resp.raise_for_status()
            ids = [str(d["id"]) for d in resp.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EndpointError(
                f"endpoint {url} of model '{entry.model}' does not answer GET /v1/models "
                f"({_describe(exc)}); start the server or fix its URL in --endpoints"
            ) from None
        if entry.served_name is not None:
            if entry.served_name not in ids:
                raise EndpointError(
                    f"endpoint {url} serves {', '.join(ids) or 'no model'}, not "
                    f"'{entry.served_name}' (served_name of '{entry.model}' in --endpoints)"
                )
            return str(entry.served_name)
        if len(ids) == 1:
            return ids[0]
        if entry.model in ids:
            return entry.model
        raise EndpointError(
            f"endpoint {url} serves {', '.join(ids) or 'no model'}; say which is '{entry.model}' "
            "with served_name in --endpoints"
        )

    # ---- arrivals and workflows -------------------------------------------------------

    async def _arrivals(self) -> float:
        """Start workflows at their arrival times; return when arrivals ended."""
        s = self.s
        bound = s.workflows or max(1, math.ceil(s.rate_per_s * s.duration_s * 1.5) + 20)
        times, order = arrival_schedule(
            self.w, ArrivalSpec(s.rate_per_s, workflows=bound, mix=dict(s.mix)), s.seed
        )
        tasks: set[asyncio.Task[None]] = set()
        end = s.duration_s
        last_report = 0.0
        for instance, (t, w) in enumerate(zip(times.tolist(), order.tolist(), strict=True)):
            if t >= s.duration_s:
                break
            if await self._sleep_until(t):
                end = self.now()
                break
            task = asyncio.create_task(self._workflow(instance, int(w), t))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if self.progress and self.now() - last_report >= 1.0:
                last_report = self.now()
                self._report(len(tasks))
        else:
            end = min(s.duration_s, self.now())
        if not self.stop.is_set() and tasks:
            await self._drain(tasks)
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return min(end, s.duration_s)

    async def _sleep_until(self, t: float) -> bool:
        """Wait until replay time `t`; True when stopped meanwhile."""
        delay = t - self.now()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
        return self.stop.is_set()

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        deadline = self.now() + self.s.drain_s
        while tasks and not self.stop.is_set() and self.now() < deadline:
            stopper = asyncio.create_task(self.stop.wait())
            await asyncio.wait([*tasks, stopper], timeout=min(1.0, deadline - self.now()),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            stopper.cancel()
            if self.progress:
                self._report(len(tasks))

    def _report(self, running: int) -> None:
        assert self.progress is not None
        done = sum(1 for r in self.workflows.values() if r.status == WORKFLOW_OK)
        self.progress(self.now(), done, running)

    async def _workflow(self, instance: int, w: int, arrival_s: float) -> None:
        kind = self.w.workflow_types[int(self.w.workflow_type[w])]
        record = WorkflowRecord(instance, kind, arrival_s, math.nan, WORKFLOW_INCOMPLETE)
        self.workflows[instance] = record
        first = int(self.w.first_node[w])
        remaining = self.w.node_deps[first : first + int(self.w.node_count[w])].copy()
        try:
            async with asyncio.TaskGroup() as group:

                async def node(local: int) -> None:
                    g = first + local
                    await asyncio.sleep(float(self.w.node_delay_s[g]))
                    if self.w.node_model[g] == TOOL:
                        await asyncio.sleep(float(self.w.node_tool_s[g]))
                    elif not await self._call(instance, g):
                        raise _Stop
                    lo, hi = int(self.w.succ_start[g]), int(self.w.succ_start[g + 1])
                    for nxt in self.w.succ[lo:hi].tolist():
                        remaining[nxt] -= 1
                        if remaining[nxt] == 0:
                            group.create_task(node(nxt))

                for local in np.flatnonzero(remaining == 0).tolist():
                    group.create_task(node(local))
        except* _Stop:
            failed = True
        else:
            failed = False
        done = self.now()
        status = WORKFLOW_FAILED if failed else WORKFLOW_OK
        self.workflows[instance] = WorkflowRecord(instance, kind, arrival_s, done, status)

    # ---- one call ------------------------------------------------------------------

    async def _call(self, instance: int, node: int) -> bool:
        """Send one call, record it; False when it failed or timed out."""
        target = self.resolved[int(self.w.node_model[node])]
        url = min(target.urls, key=lambda u: self.in_flight[u])
        prompt = prompt_tokens(self.prefixes, self.w, node, instance)
        output = max(1, int(self.w.node_output_tokens[node]))
        body = {
            "model": target.served_name,
            "prompt": prompt,
            "max_tokens": output,
            "min_tokens": output,
            "ignore_eos": True,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        self.in_flight[url] += 1
        sent = self.now()
        first = math.nan
        received = 0
        status, error = CALL_OK, ""
        try:
            async with asyncio.timeout(self.s.request_timeout_s):
                post = self.callers[url].stream("POST", f"{url}/v1/completions", json=body)
                async with post as resp:
                    if resp.status_code >= 400:
                        text = (await resp.aread()).decode(errors="replace")
                        status = CALL_ERROR
                        error = f"HTTP {resp.status_code} from {url}: {' '.join(text.split())}"
                    else:
                        async for line in resp.aiter_lines():
                            if not line.startswith("data:"):
                                continue
                            data = line[5:].strip()
                            if data == "[DONE]":
                                break
                            chunk = json.loads(data)
                            if chunk.get("choices") and math.isnan(first):
                                first = self.now()
                            usage = chunk.get("usage")
                            if usage:
                                received = int(usage.get("completion_tokens") or 0)
        except TimeoutError:
            status, error = (
                CALL_TIMEOUT,
                f"no answer from {url} within {self.s.request_timeout_s:g} s",
            )
        except httpx.ConnectError as exc:
            status, error = CALL_ERROR, f"{url} refused the connection ({_describe(exc)})"
            self.halt(f"endpoint {url} of model '{target.model}' went down ({_describe(exc)})")
        except (httpx.HTTPError, ValueError) as exc:
            status, error = CALL_ERROR, f"{url}: {_describe(exc)}"
        finally:
            self.in_flight[url] -= 1
        self.calls.append(
            CallRecord(
                instance=instance,
                model=target.model,
                endpoint=url,
                sent_s=sent,
                first_token_s=first,
                done_s=self.now(),
                input_tokens=len(prompt),
                output_tokens=received,
                status=status,
                error=error[:_ERROR_CHARS],
            )
        )
        return status == CALL_OK

    # ---- metrics -------------------------------------------------------------------

    async def _scrape_loop(self) -> None:
        while True:
            await asyncio.sleep(self.s.scrape_interval_s)
            await self._scrape_all()

    async def _scrape_all(self) -> None:
        urls = sorted(self.in_flight)
        pages = await asyncio.gather(*(self._scrape(u) for u in urls))
        t = self.now()
        self.samples += [ServerSample(u, t, p) for u, p in zip(urls, pages, strict=True) if p]

    async def _scrape(self, url: str) -> dict[str, float]:
        try:
            resp = await self.client.get(f"{url}/metrics", timeout=_PROBE_TIMEOUT_S)
            resp.raise_for_status()
            return parse_metrics(resp.text, f"{url}/metrics")
        except (httpx.HTTPError, PlannerError):
            return {}  # metrics are optional: a server without /metrics still replays


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:_ERROR_CHARS]


def served_urls(run: ReplayRun) -> Sequence[tuple[ModelName, str]]:
    """(model, URL) of every endpoint the replay drove, in order."""
    return [(e.model, u) for e in run.endpoints for u in e.urls]
