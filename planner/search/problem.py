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

    @property
    def units(self) -> int:
        """Size of one replica in 1/8-GPU units."""
        return self.key.units


def interpolate_latency_s(shape: ShapeCandidate, utilisation: float) -> float:
    """Per-call latency of one replica of `shape` at `utilisation` of its capacity."""
    us, ls = shape.ladder_utilisation, shape.ladder_latency_s
    if not us or utilisation > us[-1] + 1e-12:
        return math.inf
    if utilisation <= us[0]:
        return ls[0]
    for i in range(1, len(us)):
        if utilisation <= us[i]:
            t = (utilisation - us[i - 1]) / (us[i] - us[i - 1])
            return ls[i - 1] + t * (ls[i] - ls[i - 1])
    return ls[-1]


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
                w.rate_per_s * u.calls_per_workflow / u.parallelism
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
        inp, out = _merged_token_shape(
            apl, [n for n in apl.models() if specs[n].name == catalog_name]
        )
        every_pool = Cluster((*cluster.pools, *growth))
        shapes = [
            _profile_shape(profiles, key, inp, out, ladder)
            # growth pools may allow wider TP: profile those shapes too (the solve on
            # `cluster` rejects them, the count of GPUs that would suffice uses them)
            for key in candidate_shapes(spec, every_pool)
        ]
        shapes += [
            _profile_shape(profiles, key, inp, out, ladder)
            for key in pipeline_shapes(spec, every_pool, lambda k: profiles.memory(k).fits)
        ]
        prefix = None
        refs = _references_of(reuse, [n for n in apl.models() if specs[n].name == catalog_name])
        if refs is not None:
            scale = _rate_scale(flows, apl, catalog_name, specs)
            prefix = prefix_candidates(profiles, refs, scale, shapes, inp, out, ladder)
        models.append(ModelCandidates(catalog_name, spec.heads, inp, out, tuple(shapes), prefix))
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
        cached = [_profile_shape(profiles, shape.key, inp, out, ladder, h * inp) for h in grid[1:]]
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
) -> ShapeCandidate:
    mem = profiles.memory(key)
    if not mem.fits:
        return ShapeCandidate(key, False, 0.0, (), (), mem.weights_gib, mem.share_gib)
    capacity = profiles.capacity_per_s(key, inp, out, cached)
    utils: list[float] = []
    lats: list[float] = []
    for u in ladder:
        # A zero rate may be outside a table's range; 1e-4 of capacity is "idle".
        point = profiles.at_rate(key, inp, out, max(u, 1e-4) * capacity, cached)
        if point.saturated:
            break
        utils.append(float(u))
        lats.append(point.e2e_ms / 1000.0)
    # Latency never falls with load; measured tables can be noisy, so enforce it.
    for i in range(1, len(lats)):
        lats[i] = max(lats[i], lats[i - 1])
    return ShapeCandidate(
        key,
        True,
        capacity,
        tuple(utils),
        tuple(lats),
        mem.weights_gib,
        mem.share_gib,
        mem.kv_cache_tokens,
    )
