"""The JSON Schema export of approved versions, for ``contracts export`` and the registry API."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.models import ContractVersion, Status
from contracts.shapes import to_json_schema


def version_schema(version: ContractVersion) -> dict:
    endpoint = version.major.endpoint
    label = version.schema_version or version.label
    return to_json_schema(
        version.shape, title=f"{endpoint.client.name} {endpoint.name} v{label}", version=label
    )


def schema_document(*, include_retired: bool = False, client: str | None = None) -> dict:
    """``{client: {endpoint: {"1.0": schema}}}`` for every approved (or retired) version."""
    statuses = [Status.APPROVED, Status.RETIRED] if include_retired else [Status.APPROVED]
    versions = (
        ContractVersion.objects.filter(status__in=statuses)
        .select_related("major__endpoint__client")
        .order_by(
            "major__endpoint__client__name", "major__endpoint__name", "major__number", "minor"
        )
    )
    if client is not None:
        versions = versions.filter(major__endpoint__client__name=client)
    document: dict[str, dict[str, dict[str, dict]]] = {}
    for version in versions:
        endpoint = version.major.endpoint
        document.setdefault(endpoint.client.name, {}).setdefault(endpoint.name, {})[
            version.schema_version
        ] = version_schema(version)
    return document


def write_schema_files(document: dict, out: Path) -> int:
    """One ``<client>.<endpoint>.v<version>.schema.json`` per version; raises OSError."""
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for client, endpoints in document.items():
        for endpoint, by_version in endpoints.items():
            for version, schema in by_version.items():
                path = out / f"{client}.{endpoint}.v{version}.schema.json"
                text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False)
                path.write_text(text + "\n")
                count += 1
    return count
