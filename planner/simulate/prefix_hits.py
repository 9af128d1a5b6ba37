"""A plan's predicted prefix-cache hit rates held against a block-level LRU replay.

For every model of the plan that has block references in the traces: its replicas (of
all its allocations), each with the KV capacity its allocation records, the plan's
routing, and the trace's calls at the plan's target rate (workflow starts compressed by
target / observed calls/s, as the prediction assumed) go through
`replay_prefix_cache`; the simulated hit rate sits beside the plan's prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from planner.simulate.prefix_replay import replay_prefix_cache
from planner.types.apl import AggregatePipeline
from planner.types.names import ModelName
from planner.types.plan import Plan, Routing
from planner.types.reuse import BlockReferences


@dataclass(frozen=True)
class PrefixHitCheck:
    """One model's predicted and replayed hit rate (shares of its input tokens)."""

    model: ModelName
    routing: Routing
    replicas: int
    source: str  # the reuse evidence: hashes or session
    predicted: float
    simulated: float

    @property
    def error_pp(self) -> float:
        """Predicted minus simulated, in percentage points."""
        return 100.0 * (self.predicted - self.simulated)


def observed_calls_per_s(apl: AggregatePipeline, name: Callable[[str], str]) -> dict[str, float]:
    """Catalog model name -> calls/s in the traces (sum over workflow types)."""
    out: dict[str, float] = {}
    for w in apl.workflows:
        for m in w.models:
            if w.arrival_rate_per_s:
                key = name(m.model)
                out[key] = out.get(key, 0.0) + w.arrival_rate_per_s * m.calls_per_workflow
    return out


def check_prefix_hits(
    plan: Plan,
    references: Mapping[str, BlockReferences],
    name: Callable[[str], str],
    observed_per_s: Mapping[str, float],
    seed: int = 0,
) -> tuple[PrefixHitCheck, ...]:
    """Replay each planned model's references on its replicas (see the module docstring).

    Args:
        references: block references by trace model name.
        name: trace model name -> the plan's (catalog) name.
        observed_per_s: catalog name -> observed calls/s (for the rate scale).
    """
    by_model: dict[str, BlockReferences] = {}
    for trace_name, refs in sorted(references.items()):
        key = name(trace_name)
        if len(refs) and (key not in by_model or refs.calls > by_model[key].calls):
            by_model[key] = refs
    out = []
    for m in plan.models:
        found = by_model.get(name(m.model))  # plans name models by catalog or trace name
        allocs = [a for a in plan.allocations if a.model == m.model]
        if found is None or not allocs:
            continue
        # A DP replica caches per rank (search/prefix.py): balanced calls spread over
        # every rank; session routing pins a session to the pod, counted with one rank's.
        ranks = {a: a.dp if m.routing == "balanced" else 1 for a in allocs}
        capacities = [
            float(a.kv_cache_tokens) / a.dp for a in allocs for _ in range(a.replicas * ranks[a])
        ]
        observed = observed_per_s.get(name(m.model), 0.0)
        scale = m.demand_per_s / observed if observed > 0 and m.demand_per_s > 0 else 1.0
        replay = replay_prefix_cache(
            found, capacities, len(capacities), m.routing, rate_scale=scale, seed=seed
        )
        out.append(
            PrefixHitCheck(
                m.model,
                m.routing,
                len(capacities),
                found.source,
                m.prefix_hit_rate,
                replay.hit_rate,
            )
        )
    return tuple(out)
