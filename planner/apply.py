"""What `planner apply` will change: the object-set diff and the prune set, computed purely.

Inputs are plain object dicts (manifests as written, and live objects as the API server
returns them). An object is identified by apiVersion group, kind, namespace and name.
A live field the manifest does not set is the server's business (defaults, status), so
only fields the manifest sets are compared. Prune candidates are live objects that carry
planner's `managed-by` label and are absent from the new set; nothing else is ever pruned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from planner.errors import PlannerError
from planner.render.common import MANAGED_BY, MANAGER

Action = Literal["create", "update", "unchanged", "prune"]

# Apply order: what others reference first (config, identity, RBAC), then Services, then
# the workloads, then the CronJob that may re-plan them. Prunes run last, in reverse.
KIND_ORDER = (
    "Namespace",
    "ConfigMap",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "Service",
    "Deployment",
    "LeaderWorkerSet",
    "LLMInferenceService",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "ScaledObject",
    "InferencePool",
    "HTTPRoute",
    "CronJob",
)
# The Namespace is never pruned: deleting it would delete everything in it.
PRUNABLE_KINDS = frozenset(KIND_ORDER) - {"Namespace"}
WORKLOAD_KINDS = frozenset({"Deployment", "LeaderWorkerSet", "LLMInferenceService"})
# What `planner replan` applies and prunes (render's `Rendered.serving`).
SERVING_KINDS = frozenset(
    {
        "ConfigMap",
        "Service",
        "Deployment",
        "LeaderWorkerSet",
        "LLMInferenceService",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "InferencePool",
        "HTTPRoute",
    }
)


@dataclass(frozen=True, order=True)
class ObjectRef:
    group: str  # API group without version ('' for core), so v1beta1 -> v1 is one object
    kind: str
    namespace: str
    name: str

    @staticmethod
    def of(obj: Mapping[str, Any]) -> ObjectRef:
        api = str(obj.get("apiVersion", ""))
        meta = obj.get("metadata") or {}
        return ObjectRef(
            api.rpartition("/")[0],
            str(obj.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name", "")),
        )

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name}" + (
            f" -n {self.namespace}" if self.namespace else ""
        )


@dataclass(frozen=True)
class Change:
    ref: ObjectRef
    action: Action
    fields: tuple[str, ...] = ()  # changed field paths, for `update`
    replicas_delta: int = 0  # workload scale change (desired - live)

    def line(self) -> str:
        mark = {"create": "+", "update": "~", "unchanged": "=", "prune": "-"}[self.action]
        text = f"{mark} {self.ref}"
        if self.replicas_delta:
            text += f" (replicas {self.replicas_delta:+d})"
        if self.fields:
            shown = ", ".join(self.fields[:4])
            more = f" and {len(self.fields) - 4} more" if len(self.fields) > 4 else ""
            text += f": {shown}{more}"
        return text


@dataclass(frozen=True)
class ApplyPlan:
    """Ordered changes: scale-ups and creates first, scale-downs after, prunes last."""

    changes: tuple[Change, ...]

    def of(self, action: Action) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == action)

    def summary(self) -> str:
        counts = {a: len(self.of(a)) for a in ("create", "update", "unchanged", "prune")}
        return ", ".join(f"{n} {a}" for a, n in counts.items())


class PruneRefused(PlannerError):
    """`--prune` would leave a namespace with no serving workload."""


def plan_apply(
    desired: Sequence[Mapping[str, Any]],
    live: Iterable[Mapping[str, Any]],
    prune: bool = False,
    prune_kinds: frozenset[str] = PRUNABLE_KINDS,
    allow_empty: bool = False,
) -> ApplyPlan:
    """Compare the manifests with what runs and list what applying them changes.

    Args:
        desired: the manifests to apply.
        live: live objects: at least those named in `desired`, plus (for prune) every
            planner-labelled object of `prune_kinds` in the namespaces concerned.
        prune: also delete planner-labelled live objects missing from `desired`.
        prune_kinds: kinds eligible for pruning (`planner replan` passes SERVING_KINDS).
        allow_empty: let a prune delete every serving Deployment of a namespace.

    Raises:
        PruneRefused: pruning would leave a namespace that serves now with no Deployment
            of one replica or more, and `allow_empty` is not set.
    """
    live_by_ref = {ObjectRef.of(o): o for o in live}
    wanted = {ObjectRef.of(o) for o in desired}
    changes: list[Change] = []
    for obj in desired:
        ref = ObjectRef.of(obj)
        current = live_by_ref.get(ref)
        if current is None:
            changes.append(Change(ref, "create", replicas_delta=_replicas(obj)))
            continue
        paths = tuple(_diff(obj, current, ""))
        # An autoscaled workload leaves `replicas` unset: its count is the autoscaler's.
        scaled = "replicas" in (obj.get("spec") or {})
        delta = _replicas(obj) - _replicas(current) if scaled else 0
        changes.append(Change(ref, "update" if paths else "unchanged", paths, delta))
    if prune:
        for ref, obj in live_by_ref.items():
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if ref not in wanted and ref.kind in prune_kinds and labels.get(MANAGED_BY) == MANAGER:
                changes.append(Change(ref, "prune", replicas_delta=-_replicas(obj)))
    result = ApplyPlan(tuple(sorted(changes, key=_order)))
    if prune and not allow_empty:
        _refuse_emptying(desired, result)
    return result


def _refuse_emptying(desired: Sequence[Mapping[str, Any]], changes: ApplyPlan) -> None:
    """A hand-edited plan (replicas 0 or negative) or a manifests folder without its
    Deployments would otherwise, with --prune, silently delete all serving."""
    serving = {
        ObjectRef.of(o).namespace
        for o in desired
        if o.get("kind") == "Deployment" and _replicas(o) > 0
    }
    pruned: dict[str, int] = {}
    for c in changes.of("prune"):
        if c.ref.kind == "Deployment":
            pruned[c.ref.namespace] = pruned.get(c.ref.namespace, 0) + 1
    for namespace, count in sorted(pruned.items()):
        if namespace not in serving:
            raise PruneRefused(
                f"namespace {namespace or '(default)'}: --prune would delete all {count} "
                "serving Deployment(s) and the manifests serve nothing there; check the "
                "manifests directory, or pass --allow-empty to remove all serving on purpose"
            )


def _order(change: Change) -> tuple[int, int, int, ObjectRef]:
    kind = KIND_ORDER.index(change.ref.kind) if change.ref.kind in KIND_ORDER else len(KIND_ORDER)
    if change.action == "prune":
        return (2, -kind, 0, change.ref)
    # Scale up (and create) before scale down: capacity never dips during a re-plan.
    phase = 1 if change.replicas_delta < 0 else 0
    return (phase, kind, 0, change.ref)


def _replicas(obj: Mapping[str, Any]) -> int:
    if obj.get("kind") not in WORKLOAD_KINDS:
        return 0
    spec = obj.get("spec") or {}
    value = spec.get("replicas", 1)
    return int(value) if value is not None else 1


def _diff(want: Any, have: Any, path: str) -> Iterable[str]:
    """Paths where `want` sets a value that `have` lacks or holds differently."""
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            yield path or "."
            return
        for key in sorted(want):
            sub = f"{path}.{key}" if path else str(key)
            if key not in have:
                if want[key] not in (None, {}, []):
                    yield sub
                continue
            yield from _diff(want[key], have[key], sub)
        return
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            yield path
            return
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            yield from _diff(w, h, f"{path}[{i}]")
        return
    if want != have and str(want) != str(have):  # quantities: 1 vs "1"
        yield path
