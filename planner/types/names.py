"""Identifier aliases used across the stages (no heavy imports: the CLI loads these)."""

from __future__ import annotations

import hashlib
import re

ModelName = str  # catalog name of a served model
WorkflowType = str  # a workflow type of the traces (rag, coding, ...)
GpuType = str  # catalog name of a GPU type

# Kubernetes object names and label values: at most 63 characters of [a-z0-9-]
# (RFC 1123 label), starting and ending with a letter or digit.
DNS_LABEL_MAX = 63
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def short_hash(text: str, length: int = 8) -> str:
    """The first `length` hex digits of the text's sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def dns_name(*parts: str, limit: int = DNS_LABEL_MAX) -> str:
    """A DNS-1123 label from `parts`; a name too long keeps a hash suffix to stay unique."""
    raw = "-".join(parts).lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw)
    name = re.sub(r"-{2,}", "-", name).strip("-") or "x"
    if len(name) <= limit:
        return name
    return f"{name[: limit - 9].rstrip('-')}-{short_hash(raw)}"


def is_dns_label(value: str) -> bool:
    """True for a valid RFC 1123 label (what a Kubernetes namespace name must be)."""
    return len(value) <= DNS_LABEL_MAX and DNS_LABEL.match(value) is not None
