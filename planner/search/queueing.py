"""Per-call latency of one replica under open-loop load: the simulator's server, solved.

The replica is the server `planner.simulate` runs (`simulate/servers.py`): continuous
batching as processor sharing on the profile's closed-loop curve e(n) (end-to-end latency
of the mean call with n calls in service), calls admitted FIFO while their tokens
(prompt + output, held for the whole call) fit the KV cache, each call's work scaled by
its own tokens. For calls arriving at rate lam (Poisson), in bursts of 1 + k calls of one
workflow fanned out together (`ModelCandidates.burst_calls`):

    slots    S = min(N_max, fill(KV, f_t))  calls the KV cache admits at once; f_t is the
             time-weighted footprint E[f w] / E[w] (long calls hold their tokens longer):
             f_t = I + O + a I cv_I^2 + (1 - a) O cv_O^2, a = prefill share of the work,
             and fill counts how many such footprints fit (`kv_fill`)
    capacity X = S / e(S)
    running  T = e(min(1 + lam T + k, S))   a call sees, besides itself, the lam T calls
             in service on average (Poisson arrivals see time averages) and its k siblings
    wait     W = ErlangC(S servers, offered lam T, service T) x (c_a^2 + c_s^2) / 2
             (Allen-Cunneen: M/G/S with batch arrivals, c_a^2 = 1 + k, and the work's
             squared coefficient of variation c_s^2 = a^2 cv_I^2 + (1 - a)^2 cv_O^2)

`ladder` tabulates T + W at the ladder's utilisations u = lam / X twice: alone (k = 0)
and with the model's whole burst of b calls on this replica. A workflow waits for the
burst's *last* call (fan-out ends at the maximum of its calls), which runs beside its
shorter siblings only while they last: k = (b - 1) E[w] / E[max of b works]
(`sibling_overlap`). An option spreading a burst over several replicas interpolates
linearly in k (`problem.interpolate_latency_s`); the workflow composes these latencies
with n_m / p_m from the trace (p_m = summed call time / union: b E[w] / E[max w] for a
lone burst), so a burst costs it E[max w] times the last call's slowdown.
Token coefficients of variation come from the APL's p50 and p95 (log-normal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from planner.profiles.analytic import erlang_c_wait_ms

Z95 = 1.6448536269514722  # standard normal 95th percentile


@dataclass(frozen=True)
class TokenMoments:
    """A model's call tokens: means, squared coefficients of variation, burst size."""

    input_tokens: float
    output_tokens: float
    input_cv2: float = 0.0
    output_cv2: float = 0.0
    burst_calls: float = 1.0  # calls a call arrives with (itself included), call-weighted


def lognormal_cv2(p50: float, p95: float) -> float:
    """Squared CV of a log-normal with this median and 95th percentile (0 if degenerate)."""
    if not (p50 > 0 and p95 > p50):
        return 0.0
    sigma = math.log(p95 / p50) / Z95
    return math.expm1(sigma * sigma)


@dataclass(frozen=True)
class Server:
    """One replica's closed-loop curve and admission, as the simulator builds it."""

    concurrency: np.ndarray  # n grid, 1 .. top (increasing)
    latency_s: np.ndarray  # e(n), non-decreasing
    slots: float  # S: calls admitted at once
    prefill_share: float  # a: share of the isolated call's time spent in prefill
    work_cv2: float  # c_s^2

    @property
    def capacity_per_s(self) -> float:
        return self.slots / self.e(self.slots)

    def e(self, n: float) -> float:
        """e(n), with throughput held flat past the curve's top (as the simulator does)."""
        top = float(self.concurrency[-1])
        if n > top:
            return n * float(self.latency_s[-1]) / top
        return float(np.interp(n, self.concurrency, self.latency_s))

    def running_s(self, rate_per_s: float, siblings: float) -> float:
        """T = e(min(1 + lam T + k, S)): the fixed point, exact on the linear pieces."""
        lo = 1.0 + siblings
        if lo >= self.slots:
            return self.e(self.slots)
        # h(n) = 1 + k + lam e(n) - n falls through 0 once; e is linear between grid points.
        points = [lo, *(float(c) for c in self.concurrency if lo < c < self.slots), self.slots]
        prev_n, prev_h = points[0], lo + rate_per_s * self.e(points[0]) - points[0]
        for n in points[1:]:
            h = lo + rate_per_s * self.e(n) - n
            if h <= 0:
                t = prev_h / (prev_h - h) if prev_h > h else 1.0
                return self.e(prev_n + t * (n - prev_n))
            prev_n, prev_h = n, h
        return self.e(self.slots)

    def latency_s_at(self, utilisation: float, siblings: float) -> float:
        """Mean per-call latency at `utilisation` of capacity with `siblings` burst peers."""
        rate = utilisation * self.capacity_per_s
        running = self.running_s(rate, siblings)
        if rate <= 0:
            return running
        wait_ms = erlang_c_wait_ms(self.slots, rate * running, running * 1e3)
        return running + wait_ms / 1e3 * (1.0 + siblings + self.work_cv2) / 2.0


def server(
    concurrency: Sequence[float],
    latency_s: Sequence[float],
    kv_cache_tokens: float,
    max_concurrency: float,
    prefill_share: float,
    tokens: TokenMoments,
) -> Server:
    """The replica from its sampled curve (n, e(n)) and KV cache, for these tokens.

    `max_concurrency` is the profile's N_max (KV slots of the mean call or max-num-seqs).
    """
    a = min(max(prefill_share, 0.0), 1.0)
    i, o = max(tokens.input_tokens, 1.0), max(tokens.output_tokens, 1.0)
    footprint = i + o + a * i * tokens.input_cv2 + (1.0 - a) * o * tokens.output_cv2
    spread = math.sqrt(i * i * tokens.input_cv2 + o * o * tokens.output_cv2)
    slots = max_concurrency
    if kv_cache_tokens > 0:
        slots = min(slots, kv_fill(kv_cache_tokens, footprint, spread))
    slots = max(slots, 1.0)  # a call larger than the cache still runs alone
    cv2 = a * a * tokens.input_cv2 + (1.0 - a) ** 2 * tokens.output_cv2
    lat = np.maximum.accumulate(np.asarray(latency_s, dtype=np.float64))
    return Server(np.asarray(concurrency, dtype=np.float64), lat, slots, a, cv2)


def kv_fill(kv_cache_tokens: float, footprint: float, spread: float) -> float:
    """Calls a full KV cache holds at once, on average: the first always runs, then
    sum_k P(f_1 + ... + f_k <= KV) (the renewal count of footprints of mean `footprint`
    and standard deviation `spread` fitting the cache, normal sums). With many slots this
    is KV / f - (1 - cv^2) / 2: the cache is never filled to the last token; with few
    (a long-context model on one GPU) whether a third call fits is a matter of chance."""
    mean = kv_cache_tokens / footprint
    if spread <= 0.0 or mean > 4096.0:
        return mean
    k = np.arange(2.0, math.ceil(mean + 8.0 * math.sqrt(mean + 1.0) * spread / footprint) + 3.0)
    z = (kv_cache_tokens - k * footprint) / (spread * np.sqrt(k))
    return 1.0 + float(np.sum(0.5 * np.vectorize(math.erfc)(-z / math.sqrt(2.0))))


_Z = np.linspace(-8.0, 8.0, 641)  # quadrature grid for order statistics of normals
_PHI = np.exp(-0.5 * _Z**2) / math.sqrt(2.0 * math.pi)
_CDF = np.array([NormalDist().cdf(float(z)) for z in _Z])


def max_ratio(calls: float, work_cv2: float) -> float:
    """E[max of `calls` works] / E[work] for log-normal works with this squared CV.

    The expected maximum of n iid log-normals, by quadrature over the normal density of
    the maximum, n phi(z) Phi(z)^(n - 1) (n may be fractional: a mean burst size).
    """
    if calls <= 1.0 or work_cv2 <= 0.0:
        return 1.0
    sigma = math.sqrt(math.log1p(work_cv2))
    density = calls * _PHI * _CDF ** (calls - 1.0)
    values = np.exp(sigma * _Z - sigma * sigma / 2.0)
    return float(np.trapezoid(values * density, _Z))


def sibling_overlap(burst_calls: float, work_cv2: float) -> float:
    """Share of its b - 1 siblings the burst's last call runs beside, on average.

    A workflow waits for the last call of a fan-out burst; under processor sharing the
    shorter siblings leave before it ends, so over its life it sees on average
    E[w] / E[max of b works] of each sibling (`max_ratio`).
    """
    return 1.0 / max_ratio(burst_calls, work_cv2)


def ladder(
    srv: Server, utilisations: Sequence[float], burst_calls: float
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """(utilisations, latency alone, extra latency of a burst's last call with the whole
    burst on the replica)."""
    siblings = max(burst_calls - 1.0, 0.0) * sibling_overlap(burst_calls, srv.work_cv2)
    us: list[float] = []
    alone: list[float] = []
    extra: list[float] = []
    for u in utilisations:
        if u >= 1.0:
            break
        base = srv.latency_s_at(u, 0.0)
        burst = srv.latency_s_at(u, siblings) if siblings > 0 else base
        if not (math.isfinite(base) and math.isfinite(burst)):
            break
        us.append(float(u))
        alone.append(base)
        extra.append(max(burst - base, 0.0))
    for k in range(1, len(alone)):  # latency never falls with load
        alone[k] = max(alone[k], alone[k - 1])
        extra[k] = max(extra[k], extra[k - 1])
    return tuple(us), tuple(alone), tuple(extra)


def concurrency_grid(top: float) -> tuple[float, ...]:
    """1, 2, 3, 4, 6, 8, 12, 16, ... below `top`, and `top` (the simulator's grid)."""
    points = {1.0, 2.0, 3.0, 4.0}
    c = 4
    while c < top:
        points.update((float(c), float(int(c * 1.5))))
        c *= 2
    return tuple(sorted({p for p in points if p < top} | {max(top, 1.0)}))
