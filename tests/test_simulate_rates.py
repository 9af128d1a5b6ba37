"""The sustainable-rate search on servers whose capacity is known by hand."""

from __future__ import annotations

import pytest
from test_simulate_engine import calls_table, llm

from planner.simulate import Replica, compile_workload, constant_curve
from planner.simulate.rates import SimSettings, capacity_bound, max_sustainable_rate


def test_finds_the_capacity_of_a_single_fifo_server() -> None:
    # One call per workflow, 1 s each, one at a time: 1 workflow/s.
    w = compile_workload(calls_table([llm("a", 0.0, 1.0)]))
    servers = [Replica(0, constant_curve(1.0, 1))]
    assert capacity_bound(w, servers) == pytest.approx(1.0)
    found = max_sustainable_rate(w, servers, SimSettings(workflows=3000))
    assert found.max_rate_per_s == pytest.approx(1.0, rel=0.05)
    assert found.at_max is not None and found.at_max.sustainable
    assert all(ok == (rate <= found.max_nominal_rate_per_s) for rate, ok, _ in found.probes)


def test_bottleneck_model_sets_the_rate() -> None:
    # Each workflow: one call to m (0.5 s, 2 replicas) then two parallel calls to n (1 s,
    # one replica holding 4): m sustains 4/s, n sustains 4 calls/s = 2 workflows/s.
    rows = [
        llm("a", 0.0, 1.0, model="m"),
        llm("a", 1.0, 2.0, model="n"),
        llm("a", 1.0, 2.0, model="n"),
    ]
    w = compile_workload(calls_table(rows))
    m, n = w.models.index("m"), w.models.index("n")
    servers = [
        Replica(m, constant_curve(0.5, 1)),
        Replica(m, constant_curve(0.5, 1)),
        Replica(n, constant_curve(1.0, 4)),
    ]
    assert capacity_bound(w, servers) == pytest.approx(2.0)
    found = max_sustainable_rate(w, servers, SimSettings(workflows=3000))
    assert found.max_rate_per_s == pytest.approx(2.0, rel=0.06)


def test_concurrent_calls_in_one_replica_multiply_its_capacity() -> None:
    # A replica holding 8 calls whose latency does not grow with load: 8 workflows/s.
    w = compile_workload(calls_table([llm("a", 0.0, 1.0)]))
    servers = [Replica(0, constant_curve(1.0, 8))]
    found = max_sustainable_rate(w, servers, SimSettings(workflows=2000))
    assert found.max_rate_per_s == pytest.approx(8.0, rel=0.06)


def test_capacity_bound_follows_the_workflow_mix() -> None:
    rows = [
        llm("a", 0.0, 1.0, workflow_type="one"),
        llm("b", 0.0, 1.0, workflow_type="three"),
        llm("b", 1.0, 2.0, workflow_type="three"),
        llm("b", 2.0, 3.0, workflow_type="three"),
    ]
    w = compile_workload(calls_table(rows))
    servers = [Replica(0, constant_curve(1.0, 1))]  # one call per second
    assert capacity_bound(w, servers) == pytest.approx(0.5)  # the trace: 2 calls/workflow
    assert capacity_bound(w, servers, {"one": 1.0}) == pytest.approx(1.0)
    assert capacity_bound(w, servers, {"three": 1.0}) == pytest.approx(1 / 3)
    found = max_sustainable_rate(w, servers, SimSettings(workflows=3000, mix={"three": 1.0}))
    assert found.max_rate_per_s == pytest.approx(1 / 3, rel=0.05)
