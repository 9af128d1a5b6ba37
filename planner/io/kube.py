"""The live Kubernetes path, kept thin: connect, read, server-side apply, delete, list nodes.

Everything that decides (diff, prune set, order, discovery) is pure and lives elsewhere;
this module only moves objects through the `kubernetes` client's documented calls
(`DynamicClient.get`, `.server_side_apply` with a field manager, `.delete`,
`CoreV1Api.list_node`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from planner.apply import ApplyPlan, ObjectRef
from planner.errors import PlannerError
from planner.io.signals import note_change
from planner.render.common import MANAGED_BY, MANAGER

FIELD_MANAGER = "planner"


class ClusterAccessError(PlannerError):
    """The cluster could not be reached or refused a request."""


def _api_client() -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]  # inside the replan CronJob
    except config.ConfigException:
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as exc:
            raise ClusterAccessError(
                f"no cluster credentials: not in a pod and no usable kubeconfig ({exc}); "
                "set KUBECONFIG or run inside the cluster"
            ) from None
    return client.ApiClient()


def connect() -> Any:
    """A `DynamicClient` for the current kubeconfig context or the pod's service account."""
    from kubernetes.dynamic import DynamicClient

    api = _api_client()
    try:
        return DynamicClient(api)  # type: ignore[no-untyped-call]
    except Exception as exc:  # discovery failed: unreachable server, TLS, auth
        raise ClusterAccessError(f"cannot reach the Kubernetes API server: {exc}") from None


def _resource(client: Any, obj_or_ref: Mapping[str, Any] | ObjectRef, api_version: str = "") -> Any:
    if isinstance(obj_or_ref, ObjectRef):
        return _served(client, api_version, obj_or_ref.kind)
    return _served(client, obj_or_ref["apiVersion"], obj_or_ref["kind"])


def _served(client: Any, api_version: str, kind: str) -> Any:
    """The API resource for a kind, or one error line when the server lacks its CRD."""
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        return _call(
            f"look up {kind} ({api_version})",
            client.resources.get,
            api_version=api_version,
            kind=kind,
            missing_ok=False,
        )
    except ResourceNotFoundError:
        raise ClusterAccessError(
            f"the API server does not serve {kind} ({api_version}); install its CRD and "
            "controller (docs/deploy.md section 3) or render without the flag that adds it"
        ) from None


def _call(what: str, fn: Any, *args: Any, missing_ok: bool = True, **kwargs: Any) -> Any:
    """Run one API call; a 404 is None when `missing_ok`, every other failure one error."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        if exc.status == 404 and missing_ok:
            return None
        hint = {
            404: " (does the namespace exist? create it with kubectl create namespace)",
            401: " (credentials rejected: refresh your kubeconfig)",
            403: " (forbidden: the account lacks RBAC permission for this)",
        }.get(exc.status or 0, "")
        raise ClusterAccessError(f"{what}: HTTP {exc.status} {exc.reason}{hint}") from None
    except (HTTPError, OSError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ClusterAccessError(
            f"{what}: cannot reach the Kubernetes API server ({detail}); check the "
            "kubeconfig context and the network"
        ) from None


def live_objects(
    client: Any, desired: Sequence[Mapping[str, Any]], prune_kinds: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The live twins of `desired`, plus every planner-labelled object of `prune_kinds`
    in the namespaces `desired` uses."""
    out: dict[ObjectRef, dict[str, Any]] = {}
    versions: dict[str, str] = {}
    # Cluster-scoped objects (the Namespace) have none: an empty namespace would list
    # every namespace, and prune beyond the plan's.
    namespaces = sorted({ObjectRef.of(o).namespace for o in desired} - {""})
    for obj in desired:
        ref = ObjectRef.of(obj)
        versions[ref.kind] = obj["apiVersion"]
        got = _call(
            f"get {ref}", _resource(client, obj).get, name=ref.name, namespace=ref.namespace
        )
        if got is not None:
            out[ref] = got.to_dict()
    for kind in sorted(prune_kinds):
        if kind not in versions:
            continue
        resource = _served(client, versions[kind], kind)
        for ns in namespaces:
            found = _call(
                f"list {kind}", resource.get, namespace=ns, label_selector=f"{MANAGED_BY}={MANAGER}"
            )
            for item in (found.to_dict().get("items") or []) if found is not None else []:
                item.setdefault("apiVersion", versions[kind])
                item.setdefault("kind", kind)
                out[ObjectRef.of(item)] = item
    return list(out.values())


def execute(
    client: Any, plan: ApplyPlan, desired: Sequence[Mapping[str, Any]], dry_run: bool
) -> None:
    """Server-side apply the creates/updates and delete the prunes, in `plan` order."""
    by_ref = {ObjectRef.of(o): o for o in desired}
    versions = {ObjectRef.of(o).kind: o["apiVersion"] for o in desired}
    dry = "All" if dry_run else None
    if not dry_run and any(c.action in ("create", "update", "prune") for c in plan.changes):
        # From here an interrupt cannot claim that nothing changed.
        note_change("some cluster changes may already be applied; run planner apply again")
    for change in plan.changes:
        if change.action in ("create", "update"):
            body = by_ref[change.ref]
            _call(
                f"apply {change.ref}",
                client.server_side_apply,
                _resource(client, body),
                body=dict(body),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                dry_run=dry,
                missing_ok=False,
            )
        elif change.action == "prune":
            resource = _resource(client, change.ref, versions.get(change.ref.kind, ""))
            _call(
                f"delete {change.ref}",
                client.delete,
                resource,
                name=change.ref.name,
                namespace=change.ref.namespace or None,
                dry_run=dry,
                propagation_policy="Foreground",
            )


def read_configmap(client: Any, namespace: str, name: str) -> dict[str, str] | None:
    """A ConfigMap's data, or None when it does not exist."""
    resource = _served(client, "v1", "ConfigMap")
    got = _call(f"get configmap/{name}", resource.get, name=name, namespace=namespace)
    if got is None:
        return None
    data = got.to_dict().get("data") or {}
    return {str(k): str(v) for k, v in data.items()}


def list_nodes() -> list[Any]:
    """Every Node object (typed `V1Node`), for `planner cluster discover`."""
    from kubernetes import client

    api = client.CoreV1Api(_api_client())
    result = _call("list nodes", api.list_node)
    return list(result.items) if result is not None else []
