"""Exact packing of replicas onto GPUs: the conditions search counts, and the packer
placement and the validator run.

A replica is either whole GPUs (TP t >= 1 GPUs inside one NVLink domain, t a power of
two) or a share of one GPU of k/8 (k = 1..7, TP 1). Placement puts whole replicas first
(largest first), then packs the shares onto the GPUs left free; shares need no NVLink,
so any free GPU is a bin of 8 eighths. A multiset of replicas of one GPU type therefore
fits its pools if and only if

(a) whole replicas fit the NVLink domains: for every TP threshold t (2, 4, 8... GPUs)

        sum of GPUs of whole replicas of >= t GPUs  <=  C_t = sum over domains of
                                                        floor(domain / t) * t

    and W, the GPUs of all whole replicas, is at most G, the type's GPUs. TP sizes are
    powers of two, so each divides every larger one: placed largest first, every
    domain's used GPUs are a multiple of t when size t is placed, so domain d still has
    floor(d/t) - used_d/t free slots of size t whatever the earlier choices; summing
    gives (a), and any largest-first order meets it (pools whose node or domain size is
    not a power of two included).

(b) the shares pack into G - W bins of 8 eighths: bin packing with sizes 1..7. Every
    bin's content is a sub-multiset of a *pattern*, a partition of 8 into parts 1..7
    (`SHARE_PATTERNS`, 21 of them; a part left empty is free room). So (b) holds iff
    there are integers y_p >= 0 with sum_p y_p <= G - W and sum_p a_ps y_p >= n_s for
    every size s (a_ps parts of size s in pattern p, n_s shares of size s): the search
    states exactly this with integer variables (`cpsat.gpu_budget`), and
    `pack_shares` decides it (greedy first, the same integer program when greedy does
    not fit) and returns the bins for placement.

First-fit decreasing alone is not exact for shares of k/8: {4, 3, 3, 2, 2, 2} fits 2
GPUs ([4, 2, 2], [3, 3, 2]) but first-fit opens a third.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache

from planner.defaults import UNITS_PER_GPU
from planner.types.cluster import Cluster
from planner.types.names import GpuType


def _partitions(total: int, largest: int) -> Iterator[tuple[int, ...]]:
    if total == 0:
        yield ()
        return
    for part in range(min(total, largest), 0, -1):
        for rest in _partitions(total - part, part):
            yield (part, *rest)


#: Every way to fill one GPU with shares (partitions of 8 into parts of 1..7 eighths),
#: parts largest first.
SHARE_PATTERNS: tuple[tuple[int, ...], ...] = tuple(_partitions(UNITS_PER_GPU, UNITS_PER_GPU - 1))
#: Share sizes in eighths below a whole GPU.
SHARE_SIZES: tuple[int, ...] = tuple(range(1, UNITS_PER_GPU))


def domains_per_node(gpus_per_node: int, nvlink_domain_size: int) -> tuple[int, ...]:
    """NVLink domain sizes (GPUs) inside one node: full domains plus a remainder."""
    domain = max(1, min(nvlink_domain_size, gpus_per_node))
    full, rest = divmod(gpus_per_node, domain)
    return (domain,) * full + ((rest,) if rest else ())


def gpus_of_type(cluster: Cluster, gpu_type: GpuType) -> int:
    return sum(p.gpus for p in cluster.pools if p.gpu_type == gpu_type)


def tp_capacities(cluster: Cluster, gpu_type: GpuType) -> dict[int, int]:
    """C_t in units (eighths) for every whole-GPU threshold t: 8 (one GPU: every whole
    replica; C = all GPUs) and 16, 32... up to the largest NVLink domain of the type."""
    pools = [p for p in cluster.pools if p.gpu_type == gpu_type]
    caps = {UNITS_PER_GPU: gpus_of_type(cluster, gpu_type) * UNITS_PER_GPU}
    largest = max(
        (max(domains_per_node(p.gpus_per_node, p.nvlink_domain_size)) for p in pools), default=0
    )
    tp = 2
    while tp <= largest:
        cap = sum(
            p.nodes
            * sum((d // tp) * tp for d in domains_per_node(p.gpus_per_node, p.nvlink_domain_size))
            for p in pools
        )
        caps[tp * UNITS_PER_GPU] = cap * UNITS_PER_GPU
        tp *= 2
    return caps


def whole_fit(counts: Mapping[int, int], caps: Mapping[int, int]) -> bool:
    """Condition (a) for whole replicas, counts keyed by size in units (multiples of 8)."""
    for size, n in counts.items():
        if n and size > UNITS_PER_GPU and size not in caps:
            return False  # a TP group larger than any NVLink domain of the type
    return all(
        sum(size * n for size, n in counts.items() if size >= t) <= cap for t, cap in caps.items()
    )


def fits(counts: Mapping[int, int], cluster: Cluster, gpu_type: GpuType) -> bool:
    """Whether replicas (counts keyed by size in units, any mix of whole and shares)
    fit the GPU type's pools: conditions (a) and (b)."""
    whole = {s: n for s, n in counts.items() if s >= UNITS_PER_GPU and n}
    shares = {s: n for s, n in counts.items() if s < UNITS_PER_GPU and n}
    caps = tp_capacities(cluster, gpu_type)
    if not whole_fit(whole, caps):
        return False
    free = gpus_of_type(cluster, gpu_type) - sum(s * n for s, n in whole.items()) // UNITS_PER_GPU
    return pack_shares(shares, free) is not None


def pack_shares(shares: Mapping[int, int], bins: int) -> tuple[tuple[int, ...], ...] | None:
    """Shares (count per size in eighths, 1..7) packed into at most `bins` GPUs: the
    content of each GPU used, largest first, deterministic; None when they do not fit.

    Best-fit decreasing answers almost every case; when it needs more than `bins` GPUs
    but the volume does not rule `bins` out, the pattern program decides exactly.
    """
    items = {s: n for s, n in sorted(shares.items()) if n > 0}
    if not items:
        return ()
    if any(not 1 <= s < UNITS_PER_GPU for s in items):
        raise ValueError(f"share sizes must be 1..{UNITS_PER_GPU - 1} eighths, got {items}")
    volume = sum(s * n for s, n in items.items())
    if -(-volume // UNITS_PER_GPU) > bins:
        return None
    greedy = _best_fit_decreasing(items)
    if len(greedy) <= bins:
        return greedy
    counts = _pattern_counts(tuple(items.get(s, 0) for s in SHARE_SIZES), bins)
    if counts is None:
        return None
    return _fill_patterns(items, counts)


def pattern_counts(gpus: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    """How many of the packed GPUs follow each of `SHARE_PATTERNS` (room left on a GPU
    counted as parts of one eighth): the pattern variables of a packing."""
    counts = [0] * len(SHARE_PATTERNS)
    index = {p: i for i, p in enumerate(SHARE_PATTERNS)}
    for content in gpus:
        full = tuple(sorted(content, reverse=True)) + (1,) * (UNITS_PER_GPU - sum(content))
        counts[index[full]] += 1
    return tuple(counts)


def _best_fit_decreasing(items: Mapping[int, int]) -> tuple[tuple[int, ...], ...]:
    gpus: list[list[int]] = []
    for size in sorted(items, reverse=True):
        for _ in range(items[size]):
            room = [(UNITS_PER_GPU - sum(g) - size, i) for i, g in enumerate(gpus)]
            fitting = [r for r in room if r[0] >= 0]
            if fitting:
                gpus[min(fitting)[1]].append(size)
            else:
                gpus.append([size])
    return tuple(tuple(g) for g in gpus)


def _fill_patterns(
    items: Mapping[int, int], counts: tuple[int, ...]
) -> tuple[tuple[int, ...], ...]:
    """Put the shares into the chosen patterns (a pattern's part of size s holds a share
    of size s; parts left over stay free)."""
    left = dict(items)
    out: list[tuple[int, ...]] = []
    for pattern, n in zip(SHARE_PATTERNS, counts, strict=True):
        for _ in range(n):
            content = []
            for part in pattern:
                if left.get(part, 0) > 0:
                    left[part] -= 1
                    content.append(part)
            if content:
                out.append(tuple(content))
    if any(left.values()):
        raise RuntimeError(f"share patterns do not cover the shares: {left} left")
    return tuple(sorted(out, key=lambda g: (-sum(g), tuple(-s for s in g))))


@cache
def _pattern_counts(need: tuple[int, ...], bins: int) -> tuple[int, ...] | None:
    """y_p >= 0 integer with sum_p y_p <= bins and sum_p a_ps y_p >= n_s: the fewest
    GPUs, by CP-SAT (21 variables; one worker, fixed seed: deterministic)."""
    from ortools.sat.python import cp_model

    cp = cp_model.CpModel()
    upper = sum(need)
    y = [cp.new_int_var(0, upper, f"y{i}") for i in range(len(SHARE_PATTERNS))]
    for s, n in zip(SHARE_SIZES, need, strict=True):
        cp.add(sum(p.count(s) * v for p, v in zip(SHARE_PATTERNS, y, strict=True)) >= n)
    cp.add(sum(y) <= bins)
    cp.minimize(sum(y))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    status = solver.solve(cp)
    if status == cp_model.INFEASIBLE:
        return None
    if status != cp_model.OPTIMAL:
        raise RuntimeError(f"share packing not decided: {solver.status_name(status)}")
    return tuple(int(solver.value(v)) for v in y)


def first_fit_decreasing(counts: Mapping[int, int], cluster: Cluster, gpu_type: GpuType) -> int:
    """Place replicas on the GPU type's pools; return how many do not fit.

    Whole replicas, largest first, take whole free GPUs inside one NVLink domain (first
    fit); the shares are then packed onto the GPUs left free by `pack_shares`.
    Independent of the threshold algebra above: the validator uses it to confirm every
    plan is placeable.
    """
    domains: list[list[bool]] = []  # free flag per GPU, per domain
    for pool in cluster.pools:
        if pool.gpu_type != gpu_type:
            continue
        for _ in range(pool.nodes):
            for size in domains_per_node(pool.gpus_per_node, pool.nvlink_domain_size):
                domains.append([True] * size)
    unplaced = 0
    for size in sorted((s for s in counts if s >= UNITS_PER_GPU), reverse=True):
        for _ in range(counts[size]):
            unplaced += not _place_group(domains, size // UNITS_PER_GPU)
    free = sum(f for d in domains for f in d)
    shares = {s: n for s, n in counts.items() if s < UNITS_PER_GPU and n}
    if pack_shares(shares, free) is None:
        # count the shares that do not fit: drop the smallest until the rest pack
        items = sorted((s for s, n in shares.items() for _ in range(n)), reverse=True)
        while items and pack_shares(_count(items), free) is None:
            items.pop()
            unplaced += 1
    return unplaced


def _count(items: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for s in items:
        out[s] = out.get(s, 0) + 1
    return out


def _place_group(domains: list[list[bool]], need: int) -> bool:
    for gpus in domains:
        free = [i for i, f in enumerate(gpus) if f]
        if len(free) >= need:
            for i in free[:need]:
                gpus[i] = False
            return True
    return False
