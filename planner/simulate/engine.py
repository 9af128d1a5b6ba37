"""The discrete-event loop: workflows through processor-sharing replicas.

Events live in one `heapq` ordered by (time, sequence number), so ties resolve in the
order events were created and a run is deterministic. Workflow arrivals come from a
sorted array merged with the heap. Each replica keeps a *virtual clock* `V` that advances
at `speed[n]` while `n` calls are in service; a call admitted at virtual time `V0` with
work `w` finishes when `V` reaches `V0 + w`, so the replica needs only a min-heap of
virtual finish times and one pending "next completion" event, re-issued (with a version
number; stale ones are skipped) whenever `n` changes. Every call costs O(log) work: the
loop is linear in the number of calls.

This is the engine's lower-level API: it takes explicit per-replica curves, which is
what the unit tests drive with hand-computable curves; `simulate()` builds the curves
from a ProfileTable.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.simulate.servers import ServerCurve
from planner.simulate.workload import Workload

_READY = 0  # a node's predecessors are done and its delay has elapsed
_TOOL_DONE = 1
_SERVER = 2  # a replica's next completion


@dataclass(frozen=True)
class Replica:
    """One replica: which model (index into Workload.models) on which curve."""

    model: int
    curve: ServerCurve


@dataclass(frozen=True)
class EngineOutput:
    """Raw outcome of one run.

    Attributes:
        arrival_s / end_s: per simulated workflow instance.
        replica_work_s: per replica, work (isolated seconds) completed in the window.
        replica_calls: per replica, calls completed in the window.
        replica_area: per replica, integral of calls in service over the window.
        replica_busy_s: per replica, time with at least one call in service in the window.
        replica_latency_s / replica_wait_s: per replica, summed call latency (ready to
            done) and queueing wait (ready to admitted) of the calls completed in the window.
        calls: LLM and tool nodes simulated.
        waiting_at_window: calls waiting for KV space (beyond every replica's max
            concurrency) when the window opens and when it closes.
    """

    arrival_s: np.ndarray
    end_s: np.ndarray
    replica_work_s: np.ndarray
    replica_calls: np.ndarray
    replica_area: np.ndarray
    replica_busy_s: np.ndarray
    replica_latency_s: np.ndarray
    replica_wait_s: np.ndarray
    calls: int
    waiting_at_window: tuple[int, int] = (0, 0)


def run_engine(
    workload: Workload,
    replicas: Sequence[Replica],
    arrival_s: np.ndarray,
    arrival_workflow: np.ndarray,
    window_start_s: float,
    window_end_s: float,
) -> EngineOutput:
    """Simulate workflow instances arriving at `arrival_s` (sorted) until all finish.

    Args:
        workload: the compiled workflows.
        replicas: every replica; each model called by an arriving workflow needs one.
        arrival_s: sorted arrival times of the instances.
        arrival_workflow: per instance, the workflow (template) index it replays.
        window_start_s / window_end_s: the measurement window for replica statistics.
    """
    node_model = workload.node_model.tolist()
    node_delay = workload.node_delay_s.tolist()
    node_tool = workload.node_tool_s.tolist()
    node_deps = workload.node_deps.tolist()
    succ_start = workload.succ_start.tolist()
    succ = workload.succ.tolist()
    first = workload.first_node.tolist()
    count = workload.node_count.tolist()
    in_tok = workload.node_input_tokens
    out_tok = workload.node_output_tokens

    n_rep = len(replicas)
    by_model: list[list[int]] = [[] for _ in workload.models]
    for r, rep in enumerate(replicas):
        by_model[rep.model].append(r)
    speed = [rep.curve.speed.tolist() for rep in replicas]
    cap = [rep.curve.max_concurrency for rep in replicas]
    # KV cache in tokens: a call holds its prompt and its output until it ends; a call
    # larger than the whole cache still runs alone (vLLM would reject it; the trace ran it).
    kv_free = [float(rep.curve.kv_tokens) for rep in replicas]
    footprint = (workload.node_input_tokens + workload.node_output_tokens).tolist()
    inv_capacity = [1.0 / max(rep.curve.capacity_per_s, 1e-12) for rep in replicas]
    # Per node and per curve the work is linear in tokens: precompute both coefficients.
    pre_ratio = (in_tok / np.maximum(workload.mean_input_tokens, 1.0)[workload.node_model]).tolist()
    dec_ratio = (
        out_tok / np.maximum(workload.mean_output_tokens, 1.0)[workload.node_model]
    ).tolist()
    pre_s = [
        _scaled(
            rep.curve.prefill_s, rep.curve.ref_input_tokens, workload.mean_input_tokens[rep.model]
        )
        for rep in replicas
    ]
    dec_s = [
        _scaled(
            rep.curve.decode_s, rep.curve.ref_output_tokens, workload.mean_output_tokens[rep.model]
        )
        for rep in replicas
    ]
    fixed_work = [
        -1.0 if rep.curve.token_scaled else rep.curve.prefill_s + rep.curve.decode_s
        for rep in replicas
    ]

    in_service = [0] * n_rep
    vclock = [0.0] * n_rep
    last_t = [0.0] * n_rep
    finishing: list[list[tuple[float, int, int, int, float, float, float, float]]] = [
        [] for _ in range(n_rep)
    ]
    waiting: list[deque[tuple[float, float, int, int, float]]] = [deque() for _ in range(n_rep)]
    version = [0] * n_rep
    work_done = [0.0] * n_rep
    calls_done = [0] * n_rep
    area = [0.0] * n_rep
    busy = [0.0] * n_rep
    lat_sum = [0.0] * n_rep
    wait_sum = [0.0] * n_rep

    n_inst = len(arrival_s)
    arrivals = arrival_s.tolist()
    templates = arrival_workflow.tolist()
    inst_base = [0] * n_inst
    inst_pending: list[list[int] | None] = [None] * n_inst
    inst_left = [0] * n_inst
    end_s = [float("nan")] * n_inst
    roots: dict[int, list[int]] = {}

    heap: list[tuple[float, int, int, int, int]] = []
    push = heapq.heappush
    pop = heapq.heappop
    seq = 0
    w0, w1 = window_start_s, window_end_s
    nodes = 0

    def advance(r: int, t: float) -> None:
        t0 = last_t[r]
        if t > t0:
            n = in_service[r]
            if n:
                vclock[r] += (t - t0) * speed[r][n]
                lo = t0 if t0 > w0 else w0
                hi = t if t < w1 else w1
                if hi > lo:
                    area[r] += n * (hi - lo)
                    busy[r] += hi - lo
            last_t[r] = t

    def reschedule(r: int, t: float) -> None:
        nonlocal seq
        version[r] += 1
        fin = finishing[r]
        if fin:
            gap = fin[0][0] - vclock[r]
            seq += 1
            push(
                heap,
                (
                    t + (gap if gap > 0 else 0.0) / speed[r][in_service[r]],
                    seq,
                    _SERVER,
                    r,
                    version[r],
                ),
            )

    def ready(inst: int, local: int, t: float) -> None:
        nonlocal seq
        g = inst_base[inst] + local
        m = node_model[g]
        if m < 0:
            seq += 1
            push(heap, (t + node_tool[g], seq, _TOOL_DONE, inst, local))
            return
        best = -1
        best_load = 0.0
        for r in by_model[m]:
            load = (in_service[r] + len(waiting[r]) + 1) * inv_capacity[r]
            if best < 0 or load < best_load:
                best, best_load = r, load
        work = fixed_work[best]
        if work < 0:
            work = pre_s[best] * pre_ratio[g] + dec_s[best] * dec_ratio[g]
        foot = footprint[g]
        if (
            not waiting[best]
            and in_service[best] < cap[best]
            and (foot <= kv_free[best] or in_service[best] == 0)
        ):
            admit(best, t, work, inst, local, t, foot)
        else:
            waiting[best].append((t, work, inst, local, foot))

    def admit(
        r: int, t: float, work: float, inst: int, local: int, t_ready: float, foot: float
    ) -> None:
        nonlocal seq
        advance(r, t)
        in_service[r] += 1
        seq += 1
        kv_free[r] -= foot
        heapq.heappush(finishing[r], (vclock[r] + work, seq, inst, local, t_ready, t, work, foot))
        reschedule(r, t)

    def complete(inst: int, local: int, t: float) -> None:
        nonlocal seq
        inst_left[inst] -= 1
        base = inst_base[inst]
        g = base + local
        pending = inst_pending[inst]
        assert pending is not None
        for k in range(succ_start[g], succ_start[g + 1]):
            s = succ[k]
            pending[s] -= 1
            if pending[s] == 0:
                d = node_delay[base + s]
                if d > 0:
                    seq += 1
                    push(heap, (t + d, seq, _READY, inst, s))
                else:
                    ready(inst, s, t)
        if inst_left[inst] == 0:
            end_s[inst] = t
            inst_pending[inst] = None

    next_arrival = 0
    inf = float("inf")
    # Calls waiting for KV space (all replicas) when the window opens and closes.
    snapshots: list[int] = []
    next_snapshot = w0
    while True:
        t_arr = arrivals[next_arrival] if next_arrival < n_inst else inf
        from_heap = bool(heap) and heap[0][0] < t_arr
        if next_snapshot < inf and (heap[0][0] if from_heap else t_arr) >= next_snapshot:
            snapshots.append(sum(len(q) for q in waiting))
            next_snapshot = w1 if len(snapshots) == 1 else inf
            continue
        if from_heap:
            t, _, kind, a, b = pop(heap)
            if kind == _SERVER:
                r = a
                if b != version[r]:
                    continue
                advance(r, t)
                fv, _, inst, local, t_ready, t_admit, work, foot = pop(finishing[r])
                if vclock[r] < fv:
                    vclock[r] = fv
                in_service[r] -= 1
                kv_free[r] += foot
                if w0 <= t <= w1:
                    work_done[r] += work
                    calls_done[r] += 1
                    lat_sum[r] += t - t_ready
                    wait_sum[r] += t_admit - t_ready
                queue = waiting[r]
                admitted = False
                # FCFS like vLLM's scheduler: admit from the head while it fits.
                while (
                    queue
                    and in_service[r] < cap[r]
                    and (queue[0][4] <= kv_free[r] or in_service[r] == 0)
                ):
                    q_ready, q_work, q_inst, q_local, q_foot = queue.popleft()
                    admit(r, t, q_work, q_inst, q_local, q_ready, q_foot)
                    admitted = True
                if not admitted:
                    reschedule(r, t)
                complete(inst, local, t)
            elif kind == _READY:
                ready(a, b, t)
            else:
                complete(a, b, t)
        elif next_arrival < n_inst:
            inst = next_arrival
            next_arrival += 1
            wf = templates[inst]
            base = first[wf]
            k = count[wf]
            nodes += k
            inst_base[inst] = base
            inst_pending[inst] = node_deps[base : base + k]
            inst_left[inst] = k
            rl = roots.get(wf)
            if rl is None:
                rl = [i for i in range(k) if node_deps[base + i] == 0]
                roots[wf] = rl
            for local in rl:
                d = node_delay[base + local]
                if d > 0:
                    seq += 1
                    push(heap, (t_arr + d, seq, _READY, inst, local))
                else:
                    ready(inst, local, t_arr)
        else:
            break

    return EngineOutput(
        arrival_s=np.asarray(arrival_s, dtype=np.float64),
        end_s=np.asarray(end_s, dtype=np.float64),
        replica_work_s=np.asarray(work_done),
        replica_calls=np.asarray(calls_done, dtype=np.int64),
        replica_area=np.asarray(area),
        replica_busy_s=np.asarray(busy),
        replica_latency_s=np.asarray(lat_sum),
        replica_wait_s=np.asarray(wait_sum),
        calls=nodes,
        waiting_at_window=(snapshots[0], snapshots[1]),
    )


def _scaled(isolated_s: float, curve_ref_tokens: float, workload_mean_tokens: float) -> float:
    """Isolated time of the workload's mean call, from the curve's reference call."""
    return isolated_s * max(workload_mean_tokens, 1.0) / max(curve_ref_tokens, 1.0)
