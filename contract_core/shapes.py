"""The canonical shape of a contract version, its fingerprint and its JSON Schema.

A shape is plain JSON data: the fixed envelope the code writes and, per section, the
output fields the version's rules produce with their types, nullability, presence and
source path. Format 1 (``FORMAT``)::

    {"format": 1, "client": "mobile", "endpoint": "home",
     "envelope": {"meta": {"type": "object", "nullable": false, "required": true,
                           "fields": {...}}},
     "sections": {"user": {"kind": "object", "nullable": false, "dependency": "user",
                           "fields": {"avatarUrl": {"type": "string", "nullable": true,
                                                    "required": true, "source": "avatarUrl"}}}}}

A scalar field's ``type`` is one type name or a sorted list of them (a union); closed
or extensible enums add ``enum`` (sorted) and ``extensible``. A list of scalars is
``{"type": "array", "items": {"type": ...}}``. A dotted output path builds an object
``{"type": "object", "nullable": false, "required": true, "fields": {...}}`` and a ``[]``
output path a list ``{"type": "array", ..., "source": "<source list>",
"items": {"type": "object", "fields": {...}}}``. Keys of ``fields`` are sorted, so the
shape does not depend on the order of the rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from contract_core.paths import OutputLeaf, OutputList, OutputNode, OutputObject, layout
from contract_core.schema import (
    Arr,
    EndpointSpec,
    Field,
    Obj,
    Rule,
    Scalar,
    boolean,
    integer,
    list_of,
    obj,
    string,
)

FORMAT = 1

CACHE_STATES = ("hit", "miss", "stale", "bypass")

# The envelope every success body carries besides its sections (SPEC section 5), declared
# with the same helpers as source schemas so it is described and diffed the same way.
META = obj(
    traceId=string(),
    generatedAt=string(),
    latencyMs=integer(),
    schemaVersion=string(),
    degraded=boolean(),
    degradedDependencies=list_of(Scalar("string")),
    cache=string(enum=CACHE_STATES),
)


def build_shape(endpoint: EndpointSpec, rules: Iterable[Rule]) -> dict[str, Any]:
    """The canonical shape of ``endpoint`` under ``rules``; raises RuleError on a bad rule."""
    sections = {}
    for section_layout in layout(endpoint, rules):
        section = section_layout.section
        sections[section.name] = {
            "kind": section.kind,
            "nullable": section.nullable,
            "dependency": section.dependency,
            "fields": _describe_nodes(section_layout.children),
        }
    return {
        "format": FORMAT,
        "client": endpoint.client,
        "endpoint": endpoint.name,
        "envelope": {"meta": _describe_declared(Field(META))},
        "sections": sections,
    }


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact separators, ASCII only: the bytes that get hashed."""
    # The standard library's encoder, not orjson: its escaping is specified and stable
    # across versions, and fingerprints are computed at deploy time, not per request.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def fingerprint(shape: dict[str, Any]) -> str:
    """The sha256 hex digest of the shape's canonical JSON."""
    return hashlib.sha256(canonical_json(shape)).hexdigest()


def _describe_nodes(nodes: Iterable[OutputNode]) -> dict[str, Any]:
    described = {node.name: _describe_node(node) for node in nodes}
    return {name: described[name] for name in sorted(described)}


def _describe_node(node: OutputNode) -> dict[str, Any]:
    if isinstance(node, OutputObject):
        return {
            "type": "object",
            "nullable": False,
            "required": True,
            "fields": _describe_nodes(node.children),
        }
    if isinstance(node, OutputList):
        return {
            "type": "array",
            "nullable": node.source.nullable,
            "required": node.source.always_present,
            "source": node.source.path,
            "items": {"type": "object", "fields": _describe_nodes(node.children)},
        }
    assert isinstance(node, OutputLeaf)
    leaf = node.leaf
    described = _describe_kind(leaf.field.kind)
    described["nullable"] = leaf.nullable
    described["required"] = leaf.always_present
    described["source"] = leaf.path
    return described


def _describe_declared(declared: Field) -> dict[str, Any]:
    """A declared field as it is written out whole (the envelope), with no source."""
    kind = declared.kind
    flags = {"nullable": declared.nullable, "required": declared.always_present}
    if isinstance(kind, Obj):
        return {"type": "object", **flags, "fields": _describe_declared_fields(kind)}
    if isinstance(kind, Arr) and isinstance(kind.items, Obj):
        items = {"type": "object", "fields": _describe_declared_fields(kind.items)}
        return {"type": "array", **flags, "items": items}
    return {**_describe_kind(kind), **flags}


def _describe_declared_fields(kind: Obj) -> dict[str, Any]:
    return {name: _describe_declared(child) for name, child in sorted(kind.fields)}


def _describe_kind(kind: Scalar | Obj | Arr) -> dict[str, Any]:
    if isinstance(kind, Arr):
        return {"type": "array", "items": _describe_kind(kind.items)}
    assert isinstance(kind, Scalar)
    types = kind.types
    described: dict[str, Any] = {"type": types[0] if len(types) == 1 else list(types)}
    if kind.enum is not None:
        described["enum"] = sorted(set(kind.enum))
        described["extensible"] = kind.extensible
    return described


# -- JSON Schema ----------------------------------------------------------------------------

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
OPEN_SCHEMA_PROMISE = (
    "Objects are open to added properties: a minor version adds fields at the same URL, so "
    "a client must ignore fields it does not know. A field is never removed, renamed or "
    "retyped within a major."
)


def to_json_schema(
    shape: dict[str, Any], *, title: str, version: str, closed: bool = False
) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the success body that ``shape`` describes.

    Published schemas are open (``closed=False``): a client validating a 1.0 schema must
    accept a 1.1 body. ``closed=True`` forbids every property the version does not
    declare, which is how the project's own tests hold a body to exactly its version.
    """
    properties: dict[str, Any] = {
        name: _field_schema(described, closed) for name, described in shape["envelope"].items()
    }
    for name, section in shape["sections"].items():
        item = _object_schema(section["fields"], closed)
        body = item if section["kind"] == "object" else {"type": "array", "items": item}
        properties[name] = _nullable(body, section["nullable"])
    schema = {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": title,
        "description": OPEN_SCHEMA_PROMISE,
        "x-schema-version": version,
        "x-fingerprint": fingerprint(shape),
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
    }
    if closed:
        schema["additionalProperties"] = False
        del schema["description"]
    return schema


def _object_schema(fields: dict[str, Any], closed: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "required": sorted(name for name, described in fields.items() if described["required"]),
        "properties": {
            name: _field_schema(described, closed) for name, described in fields.items()
        },
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def _field_schema(described: dict[str, Any], closed: bool) -> dict[str, Any]:
    schema = _value_schema(described, closed)
    if "source" in described:
        schema["x-source"] = described["source"]
    return _nullable(schema, described.get("nullable", False))


def _value_schema(described: dict[str, Any], closed: bool) -> dict[str, Any]:
    kind = described["type"]
    if kind == "object":
        return _object_schema(described["fields"], closed)
    if kind == "array":
        return {"type": "array", "items": _value_schema(described["items"], closed)}
    schema: dict[str, Any] = {"type": kind}
    if "enum" in described:
        if described["extensible"]:
            # An extensible enum promises that new values may appear: document the known
            # ones without constraining to them.
            schema["x-known-values"] = list(described["enum"])
        else:
            schema["enum"] = list(described["enum"])
    return schema


def _nullable(schema: dict[str, Any], nullable: bool) -> dict[str, Any]:
    if not nullable:
        return schema
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    schema["type"] = [*kinds, "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema
