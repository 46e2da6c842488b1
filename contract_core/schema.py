"""Declarations of JSON payload schemas: what a downstream sends, what a section is made of.

Plain frozen dataclasses, no Django: the aggregation code declares its source schemas and
endpoints with them, and the registry's shapes, differ and projection read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Union

ScalarType = Literal["string", "integer", "number", "boolean"]
SCALAR_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean")


@dataclass(frozen=True)
class Scalar:
    """A JSON scalar. ``type`` is one type or a tuple of allowed types (a union)."""

    type: ScalarType | tuple[ScalarType, ...]
    enum: tuple[str, ...] | None = None
    # An extensible enum promises clients that new values may appear, so adding one is
    # additive; a closed enum is a promise that the listed values are all there is.
    extensible: bool = False

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(sorted({self.type} if isinstance(self.type, str) else set(self.type)))


@dataclass(frozen=True)
class Obj:
    """A JSON object with named fields, in declaration order."""

    fields: tuple[tuple[str, Field], ...]

    def get(self, name: str) -> Field | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.fields)


@dataclass(frozen=True)
class Arr:
    """A JSON array whose items all have one schema."""

    items: Scalar | Obj


Kind = Union[Scalar, Obj, Arr]  # noqa: UP007 - a runtime alias, used in isinstance checks


# What a source field carries, for the people picking it. A marker only: it is no part
# of a contract's shape, so marking a field never changes an approved fingerprint.
INTERNAL = "internal"  # for the company's eyes only (risk scores, costs, internal ids)
PERSONAL = "personal"  # personal data about the user (contact details, birth date)
Sensitivity = Literal["", "internal", "personal"]


@dataclass(frozen=True)
class Field:
    """A field of an object: its kind, whether it may be null, whether it may be absent,
    and whether it is internal or personal data."""

    kind: Kind
    nullable: bool = False
    always_present: bool = True
    sensitivity: Sensitivity = ""


def internal(declared: Field) -> Field:
    """Mark a source field as internal: refused for external clients without an override."""
    return replace(declared, sensitivity=INTERNAL)


def personal(declared: Field) -> Field:
    """Mark a source field as personal data: labelled in the field picker."""
    return replace(declared, sensitivity=PERSONAL)


def obj(**fields: Field) -> Obj:
    return Obj(tuple(fields.items()))


def string(
    *,
    nullable: bool = False,
    enum: tuple[str, ...] | None = None,
    extensible: bool = False,
    always_present: bool = True,
) -> Field:
    return Field(Scalar("string", enum, extensible), nullable, always_present)


def integer(*, nullable: bool = False, always_present: bool = True) -> Field:
    return Field(Scalar("integer"), nullable, always_present)


def number(*, nullable: bool = False, always_present: bool = True) -> Field:
    return Field(Scalar("number"), nullable, always_present)


def boolean(*, nullable: bool = False, always_present: bool = True) -> Field:
    return Field(Scalar("boolean"), nullable, always_present)


def nested(schema: Obj, *, nullable: bool = False, always_present: bool = True) -> Field:
    return Field(schema, nullable, always_present)


def list_of(
    items: Scalar | Obj | Field, *, nullable: bool = False, always_present: bool = True
) -> Field:
    item_kind = items.kind if isinstance(items, Field) else items
    if isinstance(item_kind, Arr):
        raise TypeError("lists of lists are not supported in source schemas")
    return Field(Arr(item_kind), nullable, always_present)


SectionKind = Literal["object", "list"]


@dataclass(frozen=True)
class Section:
    """One top-level key of an endpoint's response, fed by one dependency.

    ``source`` is the schema of the object (for an ``object`` section) or of each item
    (for a ``list`` section) that the rules select fields from. ``sample`` is one
    realistic source record, used by the admin's preview.
    """

    name: str
    kind: SectionKind
    source: Obj
    dependency: str
    nullable: bool = False
    sample: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointSpec:
    """What the code of one client endpoint produces, apart from the registry's rules."""

    client: str
    name: str
    sections: tuple[Section, ...]
    description: str = ""
    # Whether the response depends on who asks (the token's subject feeds a dependency).
    # Such an endpoint is never cached under a shared key, whatever the registry says;
    # True unless the code says otherwise, so forgetting it cannot leak a page.
    per_user: bool = True

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    @property
    def key(self) -> tuple[str, str]:
        return (self.client, self.name)


@dataclass(frozen=True)
class Rule:
    """One whitelisted field: a source path in a section, and its output path.

    Paths are dotted (``address.city``); a segment ending in ``[]`` walks into each item
    of a list of objects (``lineItems[].sku``). An empty ``output`` keeps the source path;
    any other output is a rename.
    """

    section: str
    source: str
    output: str = ""

    @property
    def output_path(self) -> str:
        return self.output or self.source
