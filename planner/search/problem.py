"""The search problem as plain data, and how it is built from APL + profiles + cluster.

A `SearchProblem` holds everything the solver, the validator, the baselines and the
predictor need, and nothing else: per workflow type its target rate, its per-model
calls (n_m, p_m) and tool time; per model its token shape and candidate shapes; per
candidate shape its GPUs per replica, memory fit, saturation capacity and per-call
latency at a ladder of per-replica loads; the cluster's node pools. Tests build tiny
problems by hand; `build_problem` builds real ones from the stages before search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from planner.catalog import ModelSpec
from planner.defaults import (
    DP_DEGREES,
    PP_DEGREES,
    SHARE_EIGHTHS,
    TP_DEGREES,
    UNITS_PER_GPU,
    UTILISATION_CAP,
)
from planner.errors import InputError, ProfileError
from planner.profiles import ProfileTable
from planner.search.queueing import (
    TokenMoments,
    concurrency_grid,
    lognormal_cv2,
    max_ratio,
    server,
)
from planner.search.queueing import ladder as queueing_ladder
from planner.types.apl import AggregatePipeline
from planner.types.cluster import Cluster, NodePool
from planner.types.names import GpuType, ModelName, WorkflowType
from planner.types.settings import SloKind, WorkloadTargets
from planner.types.shapes import ShapeKey

if TYPE_CHECKING:
    from planner.search.prefix import PrefixCandidates
    from planner.types.reuse import BlockReferences

# Per-replica loads at which latency is tabulated, as fractions of saturation capacity.
# Dense near the utilisation cap where the curve bends; 0.995 lets baselines that run
# hotter than the cap still get a (large, finite) prediction.
DEFAULT_LADDER: tuple[float, ...] = (
    0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.995,
)  # fmt: skip


@dataclass(frozen=True)
class ModelUse:
    """One model inside one workflow type (from the APL)."""

    model: ModelName
    calls_per_workflow: float  # n_m
    parallelism: float  # p_m >= 1
    # The type's mean call work over the model's mean call (prefill and decode time in
    # proportion to its tokens): under processor sharing a call's latency scales with it.
    work_ratio: float = 1.0
    # Mean calls' worth of the model's time on the workflow's path: per fan-out burst of
    # s calls the expected longest of s works, sum_s bursts_s E[max_s w] / E[w], at most
    # n_m / p_m (calls that overlapped without starting together). None: n_m / p_m.
    critical_calls: float | None = None

    @property
    def latency_weight(self) -> float:
        """Weight of the model's per-call latency in the type's latency: the calls on the
        workflow's path (fan-out counts its longest call) times the work ratio."""
        serial = self.calls_per_workflow / self.parallelism
        if self.critical_calls is not None:
            serial = min(serial, self.critical_calls)
        return serial * self.work_ratio


@dataclass(frozen=True)
class WorkflowDemand:
    """One workflow type: its target rate, its models and its latency SLO.

    `p95_over_mean` is the trace's p95 / mean end-to-end latency of the type; a p95 SLO
    is checked as `p95_over_mean x predicted mean <= slo_s` (the APL predicts means; the
    shape of the latency distribution is taken from the trace).
    """

    workflow_type: WorkflowType
    rate_per_s: float
    uses: tuple[ModelUse, ...]
    non_llm_time_s: float = 0.0
    slo_s: float | None = None
    slo_kind: SloKind = "mean"
    p95_over_mean: float = 1.0


@dataclass(frozen=True)
class ShapeCandidate:
    """One way to run one replica, with its profile facts."""

    key: ShapeKey
    fits_memory: bool
    capacity_per_s: float  # saturation calls/s of one replica at the model's token shape
    ladder_utilisation: tuple[float, ...]  # per-replica load / capacity, increasing
    ladder_latency_s: tuple[float, ...]  # mean per-call latency at those loads
    weights_gib: float = 0.0
    share_gib: float = 0.0
    kv_cache_tokens: int = 0  # KV-cache tokens one replica holds
    # Extra per-call latency at those loads when the model's whole fan-out burst lands on
    # this replica (`queueing.ladder`); empty: calls arrive one at a time.
    ladder_burst_s: tuple[float, ...] = ()

    @property
    def units(self) -> int:
        """Size of one replica in 1/8-GPU units."""
        return self.key.units


def interpolate_latency_s(
    shape: ShapeCandidate, utilisation: float, burst_share: float = 0.0
) -> float:
    """Per-call latency of one replica of `shape` at `utilisation` of its capacity, with
    `burst_share` (0..1) of a fan-out burst's other calls landing on it too."""
    us, ls = shape.ladder_utilisation, shape.ladder_latency_s
    if not us or utilisation > us[-1] + 1e-12:
        return math.inf
    bs = shape.ladder_burst_s if burst_share > 0 else ()
    if utilisation <= us[0]:
        return ls[0] + (burst_share * bs[0] if bs else 0.0)
    for i in range(1, len(us)):
        if utilisation <= us[i]:
            t = (utilisation - us[i - 1]) / (us[i] - us[i - 1])
            extra = burst_share * (bs[i - 1] + t * (bs[i] - bs[i - 1])) if bs else 0.0
            return ls[i - 1] + t * (ls[i] - ls[i - 1]) + extra
    return ls[-1] + (burst_share * bs[-1] if bs else 0.0)


def burst_share(burst_calls: float, replica_share: float) -> float:
    """Share of a burst's other calls that join a call on its replica: a burst of b calls
    spread in proportion to capacity puts b x `replica_share` on each replica, i.e.
    max(0, b x share - 1) siblings of the b - 1 the ladder's burst latency assumes."""
    if burst_calls <= 1.0:
        return 0.0
    return min(max(burst_calls * replica_share - 1.0, 0.0) / (burst_calls - 1.0), 1.0)


def parts_latency_s(
    parts: Sequence[tuple[ShapeCandidate, int]], demand_per_s: float, burst_calls: float = 1.0
) -> float:
    """Per-call latency of replicas of several shapes sharing `demand_per_s` in proportion
    to their capacity (every replica at the same utilisation), each call's fan-out burst
    spread the same way: sum_k (c_k cap_k / C) l_k(u, burst on one replica of k)."""
    capacity = sum(c * s.capacity_per_s for s, c in parts if c > 0)
    if capacity <= 0:
        return math.inf if demand_per_s > 0 else 0.0
    u = demand_per_s / capacity
    return sum(
        c
        * s.capacity_per_s
        / capacity
        * interpolate_latency_s(s, u, burst_share(burst_calls, s.capacity_per_s / capacity))
        for s, c in parts
        if c > 0
    )


@dataclass(frozen=True)
class ModelCandidates:
    """One model's token shape and every shape it could run on."""

    model: ModelName
    attention_heads: int
    input_tokens: float
    output_tokens: float
    shapes: tuple[ShapeCandidate, ...]
    # Prefix-reuse evidence and the shapes profiled at cached prefixes (None: every
    # prompt is computed in full, as with --prefix-caching off).
    prefix: PrefixCandidates | None = None
    # Calls of one workflow a call arrives with (itself included), over the model's calls
    # (`ModelStats.burst_calls`, merged over types): fan-out lands on a replica at once.
    burst_calls: float = 1.0


@dataclass(frozen=True)
class SearchProblem:
    """Everything search needs. Rates are the targets (already times any headroom)."""

    workflows: tuple[WorkflowDemand, ...]
    models: tuple[ModelCandidates, ...]
    cluster: Cluster
    utilisation_cap: float = UTILISATION_CAP
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Node shapes added when counting the GPUs that would suffice (e.g. full 8-GPU nodes
    # for `--gpus N`); empty: grow the cluster's own pools.
    growth: tuple[NodePool, ...] = ()

    def model(self, name: ModelName) -> ModelCandidates:
        for m in self.models:
            if m.model == name:
                return m
        raise KeyError(name)

    def demand_per_s(self, name: ModelName) -> float:
        """D_m: calls/s the model must serve, summed over workflow types."""
        return sum(
            w.rate_per_s * u.calls_per_workflow
            for w in self.workflows
            for u in w.uses
            if u.model == name
        )

    def latency_weight(self, name: ModelName) -> float:
        """Weight of the model's per-call latency in the rate-weighted mean workflow latency:
        sum_w R_w n_wm / p_wm / sum_w R_w."""
        total = sum(w.rate_per_s for w in self.workflows)
        if total <= 0:
            return 0.0
        return (
            sum(
                w.rate_per_s * u.latency_weight
                for w in self.workflows
                for u in w.uses
                if u.model == name
            )
            / total
        )

    def scaled(self, factor: float) -> SearchProblem:
        """The same problem with every workflow rate multiplied by `factor`."""
        flows = tuple(replace(w, rate_per_s=w.rate_per_s * factor) for w in self.workflows)
        return replace(self, workflows=flows)

    def gpu_types(self) -> tuple[GpuType, ...]:
        return tuple(sorted({p.gpu_type for p in self.cluster.pools}))

    def without_shape(
        self, model: ModelName, gpu_type: GpuType, tp: int, reason: str
    ) -> SearchProblem:
        """The problem minus `model`'s shapes on `gpu_type` at TP `tp` (0: every TP), with
        a note saying why (placement could not honour them)."""
        models = tuple(
            replace(
                m,
                shapes=tuple(
                    s
                    for s in m.shapes
                    if not (
                        s.key.model == model and s.key.gpu_type == gpu_type and tp in (0, s.key.tp)
                    )
                ),
            )
            for m in self.models
        )
        note = f"placement: excluded {model} TP {tp or 'any'} on {gpu_type} ({reason})"
        return replace(self, models=models, notes=(*self.notes, note))

    def only_workflows(self, kept: Sequence[WorkflowType]) -> SearchProblem:
        """The problem restricted to the workflow types `kept`, without the models only
        the others call."""
        flows = tuple(w for w in self.workflows if w.workflow_type in kept)
        used = {u.model for w in flows for u in w.uses}
        return replace(
            self, workflows=flows, models=tuple(m for m in self.models if m.model in used)
        )


def workflow_demands(
    apl: AggregatePipeline, targets: WorkloadTargets
) -> tuple[WorkflowDemand, ...]:
    """Turn the APL's workflow types into demands with target rates and SLOs.

    A total `target_rate_per_s` is split across types in proportion to their observed
    rates. Raises InputError when a rate is unknown or an SLO names an unknown type.
    """
    types = {w.workflow_type for w in apl.workflows}
    for name in targets.slo_s:
        if name not in types:
            raise InputError(
                f'--slo names workflow type "{name}", not found in the traces; '
                f"known types: {', '.join(sorted(types))}"
            )
    observed = {w.workflow_type: w.arrival_rate_per_s for w in apl.workflows}
    given = targets.target_rate_per_s
    if isinstance(given, Mapping):
        for name in given:
            if name not in types:
                raise InputError(
                    f'--target-rate names workflow type "{name}", not in the traces; '
                    f"known types: {', '.join(sorted(types))}"
                )
    out = []
    total_observed = sum(r for r in observed.values() if r)
    for w in apl.workflows:
        rate = observed[w.workflow_type]
        if isinstance(given, Mapping):
            target = given.get(w.workflow_type, (rate or 0.0) * targets.headroom)
        elif given is not None:
            if not total_observed:
                raise InputError(
                    "--target-rate as a total needs observed arrival rates to split it; "
                    "give one rate per type: --target-rate TYPE=RATE"
                )
            target = given * (rate or 0.0) / total_observed
        else:
            if rate is None:
                raise InputError(
                    f'workflow type "{w.workflow_type}" has fewer than 2 workflows, so its '
                    "arrival rate is unknown; give --target-rate"
                )
            target = rate * targets.headroom
        p95_ratio = 1.0
        if w.latency_s is not None and w.latency_s.mean > 0:
            p95_ratio = max(1.0, w.latency_s.p95 / w.latency_s.mean)
        slo = targets.slo_s.get(w.workflow_type)
        out.append(
            WorkflowDemand(
                workflow_type=w.workflow_type,
                rate_per_s=float(target),
                uses=tuple(
                    ModelUse(m.model, m.calls_per_workflow, max(1.0, m.parallelism))
                    for m in w.models
                ),
                non_llm_time_s=w.non_llm_time_s or 0.0,
                slo_s=slo[0] if slo else None,
                slo_kind=slo[1] if slo else "mean",
                p95_over_mean=p95_ratio,
            )
        )
    return tuple(out)


def token_shape(apl: AggregatePipeline, model: ModelName) -> tuple[float, float]:
    """Mean input and output tokens of the model's calls, weighted by calls over types."""
    weight = inp = out = 0.0
    for w in apl.workflows:
        stats = w.model(model)
        if stats is None:
            continue
        calls = stats.calls_per_workflow * max(1, w.workflow_count)
        weight += calls
        inp += calls * stats.input_tokens.mean
        out += calls * stats.output_tokens.mean
    if weight <= 0:
        return 0.0, 0.0
    return inp / weight, out / weight


def candidate_shapes(spec: ModelSpec, cluster: Cluster) -> tuple[ShapeKey, ...]:
    """Every structurally valid shape: TP divides the heads, TP fits an NVLink domain (in
    a node, or whole nodes of a multi-node domain such as GB200 NVL72), TP > 1 takes whole
    GPUs, fractions on the 1/8 grid; MoE models also get each
    TP > 1 shape with expert parallelism (EP = TP), and data-parallel attention shapes
    (`data_parallel_shapes`)."""
    keys: set[ShapeKey] = set()
    for pool in cluster.pools:
        for tp in TP_DEGREES:
            if tp > pool.tp_limit or spec.heads % tp:
                continue
            shares = SHARE_EIGHTHS if tp == 1 and pool.share_gpus else (UNITS_PER_GPU,)
            keys.update(ShapeKey(spec.name, pool.gpu_type, tp, s) for s in shares)
            if spec.is_moe and tp > 1:
                # Expert parallelism: the same GPUs with the experts split across them.
                keys.add(
                    ShapeKey(spec.name, pool.gpu_type, tp, UNITS_PER_GPU, expert_parallel=True)
                )
        keys.update(data_parallel_shapes(spec, pool))
    return tuple(sorted(keys))


def data_parallel_shapes(spec: ModelSpec, pool: NodePool) -> tuple[ShapeKey, ...]:
    """Data-parallel attention shapes of an MoE model on one pool: for each EP group of
    G = tp x dp GPUs in one node and NVLink domain (dp in DP_DEGREES), where TP G alone
    would copy the KV cache onto several GPUs (MLA's latent KV is on every TP GPU; GQA
    with fewer KV heads than G repeats them), the widest TP per rank that copies none
    (MLA: 1; GQA: the largest power of two <= the KV heads). Each rank then holds KV of
    its own sequences only, the cache grows by the copies saved and the experts stay
    split over all G GPUs; where no KV is copied, ranks only add lockstep and
    collectives, so no shape is offered."""
    if not spec.is_moe:
        return ()
    widest = min(pool.tp_limit, pool.gpus_per_node)
    rank_tp = 1 if spec.is_mla else max(t for t in TP_DEGREES if t <= max(1, spec.kv_heads))
    out = []
    for group in (g for g in TP_DEGREES if 1 < g <= widest):
        tp = min(rank_tp, group // 2)  # at least two ranks
        dp = group // tp
        copies_kv = spec.is_mla or spec.kv_heads < group
        if not copies_kv or dp not in DP_DEGREES or spec.heads % tp:
            continue
        out.append(ShapeKey(spec.name, pool.gpu_type, tp, UNITS_PER_GPU, 1, True, dp))
    return tuple(out)


def pipeline_shapes(
    spec: ModelSpec, cluster: Cluster, fits: Callable[[ShapeKey], bool]
) -> tuple[ShapeKey, ...]:
    """Replicas spanning nodes, for GPU types on which no single-domain shape fits.

    Per pool of such a type: TP = the widest degree inside one node and its NVLink domain
    that divides the heads, and the fewest pipeline stages (PP_DEGREES) whose memory fits
    and whose GPUs the pool holds (MoE models: also with expert parallelism inside each
    stage). Fewest stages: each stage adds a hop between nodes, and more stages of one
    replica buy KV cache that more replicas would buy with higher throughput.
    """
    keys: set[ShapeKey] = set()
    for pool in cluster.pools:
        # A stage is a TP group inside one node (placement puts each stage on its node).
        widest = min(pool.tp_limit, pool.gpus_per_node)
        tps = [t for t in TP_DEGREES if t <= widest and not spec.heads % t]
        if not tps:
            continue
        single = (
            ShapeKey(spec.name, pool.gpu_type, t)
            for t in TP_DEGREES
            if t <= pool.tp_limit and not spec.heads % t
        )
        if any(fits(k) for k in single):
            continue
        for pp in PP_DEGREES:
            key = ShapeKey(spec.name, pool.gpu_type, tps[-1], UNITS_PER_GPU, pp)
            if tps[-1] * pp <= pool.gpus and fits(key):
                keys.add(key)
                if spec.is_moe and tps[-1] > 1:
                    # Expert parallelism inside each stage (EP = TP), as for one node.
                    keys.add(replace(key, expert_parallel=True))
                break
    return tuple(sorted(keys))


def build_problem(
    apl: AggregatePipeline,
    profiles: ProfileTable,
    cluster: Cluster,
    specs: Mapping[ModelName, ModelSpec],
    targets: WorkloadTargets | None = None,
    ladder: Sequence[float] = DEFAULT_LADDER,
    growth: Sequence[NodePool] = (),
    reuse: Mapping[ModelName, BlockReferences] | None = None,
) -> SearchProblem:
    """Candidate generation: the SearchProblem for an APL on a cluster.

    Args:
        specs: the catalog entry of every model the APL names (keyed by the APL's name).
        targets: target rates, SLOs and the utilisation cap (default: observed rates).
        growth: node shapes to count "GPUs that would suffice" in (default: the pools').
        reuse: prefix-block references per trace model name (prefix caching on); models
            with references get their shapes profiled on the hit grid and each option
            its own hit rate (`planner.search.prefix`). None: no prefix caching.
    Raises:
        ProfileError: a model of the APL has no catalog entry.
        InputError: a target rate cannot be derived.
    """
    targets = targets or WorkloadTargets()
    for name in apl.models():
        if name not in specs:
            raise ProfileError(f'model "{name}" from the traces has no catalog entry')
    # Plans and manifests use catalog names; traces may use any alias.
    flows = _rename(workflow_demands(apl, targets), {n: specs[n].name for n in apl.models()})
    models = []
    for catalog_name in sorted({specs[n].name for n in apl.models()}):
        spec = next(specs[n] for n in apl.models() if specs[n].name == catalog_name)
        aliases = [n for n in apl.models() if specs[n].name == catalog_name]
        inp, out = _merged_token_shape(apl, aliases)
        tokens = token_moments(apl, aliases)
        every_pool = Cluster((*cluster.pools, *growth))
        shapes = [
            _profile_shape(profiles, key, inp, out, ladder, tokens=tokens)
            # growth pools may allow wider TP: profile those shapes too (the solve on
            # `cluster` rejects them, the count of GPUs that would suffice uses them)
            for key in candidate_shapes(spec, every_pool)
        ]
        shapes += [
            _profile_shape(profiles, key, inp, out, ladder, tokens=tokens)
            for key in pipeline_shapes(spec, every_pool, lambda k: profiles.memory(k).fits)
        ]
        prefix = None
        refs = _references_of(reuse, aliases)
        if refs is not None:
            scale = _rate_scale(flows, apl, catalog_name, specs)
            prefix = prefix_candidates(profiles, refs, scale, shapes, inp, out, ladder, tokens)
        models.append(
            ModelCandidates(
                catalog_name, spec.heads, inp, out, tuple(shapes), prefix, tokens.burst_calls
            )
        )
        prefill = _prefill_share(profiles, shapes, inp, out)
        flows = _with_latency_weights(flows, apl, aliases, catalog_name, prefill, inp, out)
    return SearchProblem(
        flows, tuple(models), cluster, targets.utilisation_cap, growth=tuple(growth)
    )


def _references_of(
    reuse: Mapping[ModelName, BlockReferences] | None, names: Sequence[ModelName]
) -> BlockReferences | None:
    """The model's block references (of its busiest trace alias when it has several:
    block ids of different aliases are not comparable)."""
    if reuse is None:
        return None
    found = [reuse[n] for n in names if n in reuse and len(reuse[n])]
    return max(found, key=lambda r: (r.calls, r.model)) if found else None


def _rate_scale(
    flows: Sequence[WorkflowDemand],
    apl: AggregatePipeline,
    catalog_name: ModelName,
    specs: Mapping[ModelName, ModelSpec],
) -> float:
    """Target over observed calls/s of the model (1 when the observed rate is unknown)."""
    target = sum(
        w.rate_per_s * u.calls_per_workflow
        for w in flows
        for u in w.uses
        if u.model == catalog_name
    )
    observed = 0.0
    for w in apl.workflows:
        for m in w.models:
            if specs[m.model].name == catalog_name and w.arrival_rate_per_s:
                observed += w.arrival_rate_per_s * m.calls_per_workflow
    return target / observed if observed > 0 and target > 0 else 1.0


def prefix_candidates(
    profiles: ProfileTable,
    refs: BlockReferences,
    rate_scale: float,
    shapes: Sequence[ShapeCandidate],
    inp: float,
    out: float,
    ladder: Sequence[float] = DEFAULT_LADDER,
    tokens: TokenMoments | None = None,
) -> PrefixCandidates:
    """Tabulate the model's references and profile each fitting shape on the hit grid
    (up to the first grid point at or above the model's reuse potential)."""
    from planner.profiles.prefix_cache import reference_curves
    from planner.search.prefix import HIT_GRID, PrefixCandidates

    curves = reference_curves(refs, rate_scale)
    potential = refs.potential()
    top = next((i for i, h in enumerate(HIT_GRID) if h >= potential), len(HIT_GRID) - 1)
    grid = HIT_GRID[: top + 1]
    variants: dict[ShapeKey, tuple[ShapeCandidate, ...]] = {}
    for shape in shapes:
        if not shape.fits_memory:
            continue
        cached = [
            _profile_shape(profiles, shape.key, inp, out, ladder, h * inp, tokens) for h in grid[1:]
        ]
        variants[shape.key] = (shape, *cached)
    return PrefixCandidates(curves, grid, variants)


def _rename(
    flows: tuple[WorkflowDemand, ...], names: Mapping[ModelName, ModelName]
) -> tuple[WorkflowDemand, ...]:
    """Use catalog names; trace aliases of one model are merged (calls add up)."""
    out = []
    for w in flows:
        merged: dict[ModelName, tuple[float, float]] = {}
        for u in w.uses:
            name = names[u.model]
            calls, busy = merged.get(name, (0.0, 0.0))
            # p = calls / (calls / p): merge parallelisms through their busy-time ratio
            merged[name] = (
                calls + u.calls_per_workflow,
                busy + u.calls_per_workflow / u.parallelism,
            )
        uses = tuple(
            ModelUse(n, c, c / b if b > 0 else 1.0) for n, (c, b) in sorted(merged.items())
        )
        out.append(replace(w, uses=uses))
    return tuple(out)


def _prefill_share(
    profiles: ProfileTable, shapes: Sequence[ShapeCandidate], inp: float, out: float
) -> float:
    """Prefill's share of an isolated mean call on the model's first fitting shape."""
    for shape in shapes:
        if shape.fits_memory:
            alone = profiles.at_concurrency(shape.key, inp, out, 1.0)
            if alone.e2e_ms > 0:
                return min(alone.ttft_ms, alone.e2e_ms) / alone.e2e_ms
    return 0.5


def _with_latency_weights(
    flows: tuple[WorkflowDemand, ...],
    apl: AggregatePipeline,
    aliases: Sequence[ModelName],
    model: ModelName,
    prefill: float,
    inp: float,
    out: float,
) -> tuple[WorkflowDemand, ...]:
    """Each type's use of `model` with its work ratio a (I_w / I) + (1 - a) (O_w / O) and
    its critical calls (the longest call of each fan-out burst, works log-normal with the
    type's token spread: `queueing.max_ratio`)."""
    stats = {w.workflow_type: w for w in apl.workflows}
    result = []
    for w in flows:
        calls = i_sum = o_sum = 0.0
        critical: float | None = 0.0
        for name in aliases:
            m = stats[w.workflow_type].model(name)
            if m is None:
                continue
            calls += m.calls_per_workflow
            i_sum += m.calls_per_workflow * m.input_tokens.mean
            o_sum += m.calls_per_workflow * m.output_tokens.mean
            if not m.burst_sizes or critical is None:
                critical = None
                continue
            cv2 = prefill**2 * lognormal_cv2(m.input_tokens.p50, m.input_tokens.p95) + (
                1.0 - prefill
            ) ** 2 * lognormal_cv2(m.output_tokens.p50, m.output_tokens.p95)
            critical += sum(count * max_ratio(size, cv2) for size, count in m.burst_sizes)
        if calls <= 0 or inp <= 0 or out <= 0:
            result.append(w)
            continue
        ratio = prefill * i_sum / calls / inp + (1.0 - prefill) * o_sum / calls / out
        uses = tuple(
            replace(u, work_ratio=ratio, critical_calls=critical) if u.model == model else u
            for u in w.uses
        )
        result.append(replace(w, uses=uses))
    return tuple(result)


def token_moments(apl: AggregatePipeline, names: Sequence[ModelName]) -> TokenMoments:
    """Mean tokens, their squared CVs (log-normal from each type's p50 and p95, mixed over
    types and aliases by calls) and the call-weighted burst size of a model's calls."""
    weight = i1 = i2 = o1 = o2 = burst = 0.0
    for w in apl.workflows:
        for name in names:
            m = w.model(name)
            if m is None:
                continue
            calls = m.calls_per_workflow * max(1, w.workflow_count)
            it, ot = m.input_tokens, m.output_tokens
            weight += calls
            i1 += calls * it.mean
            i2 += calls * it.mean**2 * (1.0 + lognormal_cv2(it.p50, it.p95))
            o1 += calls * ot.mean
            o2 += calls * ot.mean**2 * (1.0 + lognormal_cv2(ot.p50, ot.p95))
            burst += calls * max(m.burst_calls, 1.0)
    if weight <= 0:
        return TokenMoments(0.0, 0.0)
    i1, i2, o1, o2 = i1 / weight, i2 / weight, o1 / weight, o2 / weight
    return TokenMoments(
        i1,
        o1,
        max(i2 / i1**2 - 1.0, 0.0) if i1 > 0 else 0.0,
        max(o2 / o1**2 - 1.0, 0.0) if o1 > 0 else 0.0,
        burst / weight,
    )


def _merged_token_shape(apl: AggregatePipeline, names: Sequence[ModelName]) -> tuple[float, float]:
    weight = inp = out = 0.0
    for name in names:
        i, o = token_shape(apl, name)
        calls = 0.0
        for w in apl.workflows:
            stats = w.model(name)
            if stats is not None:
                calls += stats.calls_per_workflow * max(1, w.workflow_count)
        weight += calls
        inp += calls * i
        out += calls * o
    return (inp / weight, out / weight) if weight > 0 else (0.0, 0.0)


def _profile_shape(
    profiles: ProfileTable,
    key: ShapeKey,
    inp: float,
    out: float,
    ladder: Sequence[float],
    cached: float = 0.0,
    tokens: TokenMoments | None = None,
) -> ShapeCandidate:
    """The shape's capacity and latency ladder from the profile's closed-loop curve, with
    the queueing of `queueing` (the simulator's server; `tokens` carries the token
    variance and fan-out; None: every call of the mean shape, arriving alone)."""
    mem = profiles.memory(key)
    if not mem.fits:
        return ShapeCandidate(key, False, 0.0, (), (), mem.weights_gib, mem.share_gib)
    tokens = tokens or TokenMoments(inp, out)
    alone = profiles.at_concurrency(key, inp, out, 1.0, cached)
    top = float(alone.max_concurrency)
    if top < 1.0 or alone.e2e_ms <= 0:
        return ShapeCandidate(key, False, 0.0, (), (), mem.weights_gib, mem.share_gib)
    grid = concurrency_grid(top)
    # Latency never falls with load; measured tables can be noisy, so enforce it.
    curve = [
        max(profiles.at_concurrency(key, inp, out, c, cached).e2e_ms, alone.e2e_ms) for c in grid
    ]
    srv = server(
        grid,
        [c / 1000.0 for c in curve],
        float(mem.kv_cache_tokens),
        top,
        min(alone.ttft_ms, alone.e2e_ms) / alone.e2e_ms,
        tokens,
    )
    utils, lats, burst = queueing_ladder(srv, ladder, tokens.burst_calls)
    return ShapeCandidate(
        key,
        True,
        srv.capacity_per_s,
        utils,
        lats,
        mem.weights_gib,
        mem.share_gib,
        mem.kv_cache_tokens,
        burst if tokens.burst_calls > 1.0 else (),
    )
