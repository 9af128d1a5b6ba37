"""Strict validation of custom resources against the CRDs in tests/data/crds.

Each CRD version's `openAPIV3Schema` is a JSON schema (OpenAPI v3 subset). The API server
prunes unknown fields; here they fail, so a misspelt field is caught before a cluster
silently drops it. `x-kubernetes-int-or-string` fields accept both types, as the server does.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Any

import jsonschema
import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CRD_DIR = Path(__file__).parent / "data" / "crds"


@functools.cache
def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict schema, for every served version of every CRD."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml.gz")):
        crd = yaml.load(gzip.decompress(path.read_bytes()), Loader=_LOADER)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            out[(f"{group}/{version['name']}", kind)] = schema
    return out


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("nullable"):
        out.pop("nullable")
        if "type" in out:
            out["type"] = [out["type"], "null"]
    return out


def known_kinds() -> set[tuple[str, str]]:
    return set(_schemas())


def validate_cr(obj: dict[str, Any]) -> None:
    """Raise AssertionError naming the path when `obj` does not match its CRD."""
    key = (str(obj["apiVersion"]), str(obj["kind"]))
    schema = _schemas().get(key)
    if schema is None:
        raise AssertionError(f"no CRD for {key} in {CRD_DIR}")
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.absolute_path)
    )
    if errors:
        e = errors[0]
        raise AssertionError(f"{obj['kind']}: {e.message} at {list(e.absolute_path)}")
    meta = obj.get("metadata") or {}
    if not isinstance(meta.get("name"), str) or not meta["name"]:
        raise AssertionError(f"{obj['kind']}: metadata.name missing")
