"""Hand-built plans and clusters shared by the deploy tests (no solver needed)."""

from __future__ import annotations

import functools
from typing import Any

from planner.catalog import Calibration, Catalog, GpuSpec, ModelSpec
from planner.types.cluster import Cluster, NodePool
from planner.types.plan import Allocation, ModelPrediction, Plan, SolverFacts, WorkflowPrediction

H100 = "H100-SXM-80GB"
L40S = "L40S-48GB"


def make_plan(*allocations: Allocation, capacity: dict[str, float] | None = None) -> Plan:
    """A Plan with the given allocations and simple predictions (capacity per model)."""
    models = sorted({a.model for a in allocations})
    capacity = capacity or {}
    return Plan(
        objective="min-latency",
        allocations=tuple(allocations),
        workflows=(WorkflowPrediction("default", 1.0, 2.0, 3.0),),
        models=tuple(ModelPrediction(m, 1.0, capacity.get(m, 2.0), 0.5, 0.5) for m in models),
        solver=SolverFacts("OPTIMAL", 3.0, 3.0, 0.0, 0.01),
        gpus_total=16,
        inputs_digest="test",
    )


def two_pool_cluster() -> Cluster:
    return Cluster(
        (
            NodePool("h100", H100, 2, 8, 8, labels={"tier": "a"}),
            NodePool("l40s", L40S, 1, 4, 1, node_names=("l40s-node",)),
        )
    )


def _cal() -> Calibration:
    return Calibration(1.0, 1.0, 1.1, 0.6, 1.0, 1.0)


def make_catalog() -> Catalog:
    def model(name: str, hf: str, served: str, **kw: object) -> ModelSpec:
        return ModelSpec(
            name=name,
            hf_id=hf,
            served_name=served,
            params_b=8.0,
            layers=32,
            hidden=4096,
            heads=32,
            kv_heads=8,
            head_dim=128,
            intermediate=14336,
            vocab=128256,
            **kw,  # type: ignore[arg-type]
        )

    models = {
        "llama-3.1-70b": model(
            "llama-3.1-70b",
            "meta-llama/Llama-3.1-70B-Instruct",
            "llama-70b",
            vllm_args=("--max-model-len", "32768", "--enable-prefix-caching"),
        ),
        "llama-3.1-8b": model("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", "llama-8b"),
        "bge-reranker": model("bge-reranker", "BAAI/bge-reranker-v2-m3", "reranker", task="score"),
    }
    gpus = {
        H100: GpuSpec(
            H100,
            80,
            3.35,
            989,
            1979,
            450,
            4.5,
            8,
            _cal(),
            product_labels=("NVIDIA-H100-80GB-HBM3",),
        ),
        L40S: GpuSpec(
            L40S, 48, 0.864, 362, 733, 32, 10, 1, _cal(), product_labels=("NVIDIA-L40S",)
        ),
    }
    return Catalog(models, gpus)


def plan_text(plan: Plan) -> str:
    """The plan document the ConfigMap holds (what `planner plan` writes)."""
    from planner.io.plan_file import dump_plan

    return dump_plan(plan)


def mixed_plan() -> Plan:
    """A 70B on TP 4, an 8B on whole GPUs and shares, and a reranker on a share."""
    return make_plan(
        Allocation("llama-3.1-70b", H100, 4, 8, 2),
        Allocation("llama-3.1-8b", H100, 1, 8, 1),
        Allocation("llama-3.1-8b", H100, 1, 4, 1),
        Allocation("bge-reranker", H100, 1, 2, 1),
        Allocation("bge-reranker", L40S, 1, 8, 2),
    )


def named_cluster() -> Cluster:
    """Explicit node names (as discovery writes), so pods pin to hostnames."""
    return Cluster(
        (
            NodePool("h100", H100, 2, 8, 8, node_names=("gpu-node-a", "gpu-node-b")),
            NodePool("l40s", L40S, 1, 4, 1, labels={"pool": "l40s"}),
        )
    )


K8S_VERSION = "1.33"  # a current release kubernetes-validate ships schemas for


def validate_object(obj: dict[str, Any]) -> None:
    """A custom resource against its CRD (tests/data/crds), anything else against the
    Kubernetes OpenAPI schema; both strict."""
    from crd_schema import known_kinds, validate_cr

    if (obj["apiVersion"], obj["kind"]) in known_kinds():
        validate_cr(obj)
    else:
        validate_k8s(obj)


def validate_k8s(obj: dict[str, object]) -> None:
    """Validate against the Kubernetes OpenAPI schema (strict: unknown fields fail).

    Same schemas and checks as `kubernetes_validate.validate(obj, K8S_VERSION, strict=True)`,
    with the parsed schema cached per kind (the package re-reads its JSON on every call).
    """
    import jsonschema

    validator = _validator(str(obj["apiVersion"]), str(obj["kind"]))
    try:
        validator.validate(obj)
    except jsonschema.ValidationError as exc:
        raise AssertionError(f"{obj['kind']}: {exc.message} at {list(exc.absolute_path)}") from None


@functools.cache
def _validator(api_version: str, kind: str) -> Any:
    import re

    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    version = [v for v in utils.all_versions() if utils.major_minor(v) <= K8S_VERSION][-1]
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = utils.schema_contents(f"{schema_dir}/{kind.lower()}-{api}.json", K8S_VERSION)
    defs = utils.schema_contents(f"{schema_dir}/_definitions.json", K8S_VERSION)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)
