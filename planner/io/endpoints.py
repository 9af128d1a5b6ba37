"""Read the endpoints file of `planner replay`: model name -> base URL(s).

    schema_version: 1
    endpoints:
      Qwen3-32B: http://qwen3-32b.llm-serving.svc:8000          # a Service
      Llama-3.1-8B-Instruct: [http://10.0.0.5:8000, http://10.0.0.6:8000]   # replicas
      my-reranker: {urls: [http://127.0.0.1:8003], served_name: reranker}

A base URL is what serves `/v1/completions` and `/metrics` (no `/v1` suffix). Model
names are matched against the traces' models through the catalog (names, HF ids and
aliases all work). `served_name` is the `model` field of requests; without it the
server is asked (`/v1/models`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from planner.errors import ConfigError, did_you_mean
from planner.replay import ModelEndpoints

_ENTRY_KEYS = ("urls", "served_name")


def load_endpoints(path: Path) -> tuple[ModelEndpoints, ...]:
    """Parse an endpoints file.

    Raises:
        ConfigError: the file is missing, not YAML, or an entry is malformed (named).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: endpoints file not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it as YAML ({exc})") from None
    return parse_endpoints(data, str(path))


def parse_endpoints(data: Any, where: str) -> tuple[ModelEndpoints, ...]:
    """Endpoints from a parsed document (see the module docstring).

    Raises:
        ConfigError: naming the key that is wrong.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with 'schema_version' and 'endpoints'")
    unknown = sorted(set(data) - {"schema_version", "endpoints"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{unknown[0]}'"
            f"{did_you_mean(unknown[0], ['schema_version', 'endpoints'])}"
        )
    if data.get("schema_version") != 1:
        raise ConfigError(
            f"{where}: 'schema_version' must be 1, got {data.get('schema_version')!r}"
        )
    entries = data.get("endpoints")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{where}: 'endpoints' must map each model name to its base URL(s)")
    return tuple(
        _entry(str(model), value, f"{where}: endpoints.{model}")
        for model, value in sorted(entries.items())
    )


def _entry(model: str, value: Any, where: str) -> ModelEndpoints:
    served: str | None = None
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(_ENTRY_KEYS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key '{unknown[0]}'{did_you_mean(unknown[0], _ENTRY_KEYS)}"
            )
        served = value.get("served_name")
        if served is not None and not isinstance(served, str):
            raise ConfigError(f"{where}.served_name: expected a string, got {served!r}")
        value = value.get("urls")
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"{where}: expected a base URL or a list of them, got {value!r}")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: '{url}' is not an http(s) URL (e.g. http://host:8000)")
    cleaned = tuple(u.rstrip("/").removesuffix("/v1") for u in urls)
    return ModelEndpoints(model, cleaned, served)


def endpoints_document(endpoints: tuple[ModelEndpoints, ...]) -> dict[str, Any]:
    """The file's document for `endpoints` (what `load_endpoints` reads back)."""
    out: dict[str, Any] = {}
    for e in endpoints:
        urls: Any = e.urls[0] if len(e.urls) == 1 else list(e.urls)
        out[e.model] = (
            {"urls": list(e.urls), "served_name": e.served_name} if e.served_name else urls
        )
    return {"schema_version": 1, "endpoints": out}
