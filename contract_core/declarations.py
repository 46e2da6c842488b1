"""The code's endpoint declarations as plain JSON, so a checkout can send them to a registry.

``dump`` writes an ``EndpointSpec`` (sections and source schemas, not samples) as JSON
data; ``load`` reads it back. The remote CLI sends these to the registry API, which judges
them with the same gate and service layer as a local checkout. Format::

    {"client": "mobile", "name": "home", "description": "...",
     "sections": [{"name": "user", "kind": "object", "dependency": "user", "nullable": false,
                   "source": {"fields": [FIELD, ...]}}]}
    FIELD = {"name": "avatarUrl", "nullable": true, "alwaysPresent": true, "kind": KIND}
    KIND  = {"type": "scalar", "types": ["string"], "enum": null, "extensible": false}
          | {"type": "object", "fields": [FIELD, ...]}
          | {"type": "array", "items": KIND}      (items: a scalar or an object)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from contract_core.schema import Arr, EndpointSpec, Field, Obj, Scalar, Section


def dump(spec: EndpointSpec) -> dict[str, Any]:
    return {
        "client": spec.client,
        "name": spec.name,
        "description": spec.description,
        "sections": [
            {
                "name": section.name,
                "kind": section.kind,
                "dependency": section.dependency,
                "nullable": section.nullable,
                "source": _dump_obj(section.source),
            }
            for section in spec.sections
        ],
    }


def dump_all(specs: Iterable[EndpointSpec]) -> list[dict[str, Any]]:
    return [dump(spec) for spec in sorted(specs, key=lambda s: s.key)]


def _dump_obj(obj: Obj) -> dict[str, Any]:
    return {"fields": [{"name": name, **_dump_field(field)} for name, field in obj.fields]}


def _dump_field(field: Field) -> dict[str, Any]:
    return {
        "kind": _dump_kind(field.kind),
        "nullable": field.nullable,
        "alwaysPresent": field.always_present,
    }


def _dump_kind(kind: Scalar | Obj | Arr) -> dict[str, Any]:
    if isinstance(kind, Obj):
        return {"type": "object", **_dump_obj(kind)}
    if isinstance(kind, Arr):
        return {"type": "array", "items": _dump_kind(kind.items)}
    types = [kind.type] if isinstance(kind.type, str) else list(kind.type)
    enum = list(kind.enum) if kind.enum is not None else None
    return {"type": "scalar", "types": types, "enum": enum, "extensible": kind.extensible}


def load(data: Mapping[str, Any]) -> EndpointSpec:
    """The spec ``data`` describes; ``data`` is already validated (the API's serializers)."""
    return EndpointSpec(
        client=data["client"],
        name=data["name"],
        description=data.get("description", ""),
        sections=tuple(
            Section(
                name=section["name"],
                kind=section["kind"],
                source=_load_obj(section["source"]),
                dependency=section["dependency"],
                nullable=section.get("nullable", False),
            )
            for section in data["sections"]
        ),
    )


def _load_obj(data: Mapping[str, Any]) -> Obj:
    return Obj(tuple((field["name"], _load_field(field)) for field in data["fields"]))


def _load_field(data: Mapping[str, Any]) -> Field:
    return Field(
        _load_kind(data["kind"]),
        nullable=data.get("nullable", False),
        always_present=data.get("alwaysPresent", True),
    )


def _load_kind(data: Mapping[str, Any]) -> Scalar | Obj | Arr:
    if data["type"] == "object":
        return _load_obj(data)
    if data["type"] == "array":
        items = _load_kind(data["items"])
        assert not isinstance(items, Arr), "validated: lists of lists are refused"
        return Arr(items)
    types = list(data["types"])
    enum = data.get("enum")
    return Scalar(
        types[0] if len(types) == 1 else tuple(types),
        tuple(enum) if enum is not None else None,
        data.get("extensible", False),
    )
