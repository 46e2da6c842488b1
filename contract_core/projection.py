"""Projection of downstream payloads through a contract version's field whitelist.

Rules are compiled once into a plan of ops, small frozen records (names to look up,
allowed Python types, flags); applying the plan per request is dictionary look-ups and
type checks, with no path parsing. Only whitelisted output paths ever leave: anything else
in a payload is dropped. A payload that does not match its declared source schema never
raises; the mismatch is reported as a :class:`Drift` and the output gets ``None`` (or
nothing, for a field the schema says may be absent).

Drift reasons: ``missing`` (an always-present field is absent), ``null`` (null where the
schema says non-nullable), ``wrong_type``, ``not_in_enum`` (a value outside a closed
enum), ``not_an_object`` and ``not_a_list``. A drift's ``path`` is the rule-style source
path inside the section's source (inside each item for a list section); ``[]`` alone is
an item of a list section and the empty path is the section's payload itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contract_core.paths import (
    OutputLeaf,
    OutputList,
    OutputNode,
    OutputObject,
    ResolvedLeaf,
    format_path,
    layout,
)
from contract_core.schema import Arr, EndpointSpec, Rule, Scalar


@dataclass(frozen=True, slots=True)
class Drift:
    """A place where a payload did not match the source schema the code declares."""

    section: str
    path: str
    reason: str


MISSING = "missing"
NULL = "null"
WRONG_TYPE = "wrong_type"
NOT_IN_ENUM = "not_in_enum"
NOT_AN_OBJECT = "not_an_object"
NOT_A_LIST = "not_a_list"

_ABSENT: Any = object()  # a key not in the payload; distinct from an explicit null
_OMIT: Any = object()  # an optional source is absent: the output key is left out

_PY_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}

# Ops are slotted dataclasses, not NamedTuples: on CPython 3.11 a slot read is as fast as
# unpacking a plain tuple, and unpacking a tuple subclass takes the slow generic path
# (docs/performance.md has the figures).


@dataclass(frozen=True, slots=True)
class _Step:
    """One source object on the way down to a value, and what the schema says of it."""

    name: str
    nullable: bool
    present: bool  # declared always present: its absence is a drift
    path: str  # rule-style source path, for drifts


@dataclass(frozen=True, slots=True)
class _Leaf:
    """An output scalar, or with ``scalars`` a list of scalars, read from one source field."""

    key: str  # the output name
    walk: tuple[_Step, ...]  # objects to descend through from the context first
    name: str  # the source field
    types: frozenset[type]  # Python types that pass without a closer look
    allowed: frozenset[str] | None  # a closed enum's values
    nullable: bool
    present: bool
    path: str
    kinds: tuple[str, ...]  # the declared JSON types
    scalars: bool = False


@dataclass(frozen=True, slots=True)
class _List:
    """An output list of objects, one per item of a source list."""

    key: str
    walk: tuple[_Step, ...]
    name: str
    nullable: bool
    present: bool
    path: str
    item_path: str  # ``path[]``: where an item that is not an object is reported
    fields: _Fields


@dataclass(frozen=True, slots=True)
class _Object:
    """An output object grouping outputs read from the same source context."""

    key: str
    fields: _Fields


_Op = _Leaf | _List | _Object

# The compiled fields of one output object: whether its ops are all top-level scalars
# (the common case, projected by a tighter loop), and the ops.
_Fields = tuple[bool, tuple[_Op, ...]]


@dataclass(frozen=True, slots=True)
class _Section:
    is_list: bool
    nullable: bool
    fields: _Fields


@dataclass(frozen=True, slots=True)
class ProjectionPlan:
    """A compiled whitelist for one endpoint: ``project`` applies it to a section's payload."""

    client: str
    endpoint: str
    sections: tuple[str, ...]
    _compiled: Mapping[str, _Section] = field(repr=False, compare=False)

    def project(self, section: str, payload: object) -> tuple[object, list[Drift]]:
        """Project one section's payload: a source object, or a list of them for a list section.

        Never raises on the payload; raises KeyError for a section the plan does not have.
        """
        compiled = self._compiled[section]
        drifts: list[Drift] = []
        if compiled.is_list:
            if isinstance(payload, list):
                result: object = _project_items(payload, compiled.fields, section, "[]", drifts)
            elif payload is None and compiled.nullable:
                result = None
            else:
                result = []
                drifts.append(Drift(section, "", NOT_A_LIST))
        elif isinstance(payload, dict):
            result = _project_fields(payload, compiled.fields, section, drifts)
        else:
            result = None
            if payload is not None or not compiled.nullable:
                reason = NULL if payload is None else NOT_AN_OBJECT
                drifts.append(Drift(section, "", reason))
        if len(drifts) > 1:
            drifts = list(dict.fromkeys(drifts))
        return result, drifts

    def project_all(self, payloads: Mapping[str, object]) -> tuple[dict[str, object], list[Drift]]:
        """Project every section of the plan, in the plan's order.

        A section missing from ``payloads`` gets its empty default (``[]`` for a list,
        ``None`` for an object) and no drift: the caller knows it as a degraded dependency.
        """
        projected: dict[str, object] = {}
        drifts: list[Drift] = []
        for name in self.sections:
            if name in payloads:
                projected[name], found = self.project(name, payloads[name])
                drifts.extend(found)
            else:
                projected[name] = [] if self._compiled[name].is_list else None
        return projected, drifts


def compile_plan(endpoint: EndpointSpec, rules: Iterable[Rule]) -> ProjectionPlan:
    """Compile ``rules`` for ``endpoint``; raises RuleError exactly as build_shape does."""
    compiled = {
        section_layout.section.name: _Section(
            is_list=section_layout.section.kind == "list",
            nullable=section_layout.section.nullable,
            fields=_compile(section_layout.children, depth=0),
        )
        for section_layout in layout(endpoint, rules)
    }
    return ProjectionPlan(endpoint.client, endpoint.name, tuple(compiled), compiled)


# -- compiling ------------------------------------------------------------------------------


def _compile(nodes: Iterable[OutputNode], depth: int) -> _Fields:
    """Ops for ``nodes``, whose source context is the item of their ``depth``-th list."""
    ops: list[_Op] = []
    for node in nodes:
        if isinstance(node, OutputObject):
            ops.append(_Object(node.name, _compile(node.children, depth)))
        elif isinstance(node, OutputList):
            leaf = _some_leaf(node)
            end = leaf.lists[depth].segment
            step = _step(leaf, end)
            ops.append(
                _List(
                    key=node.name,
                    walk=_walk(leaf, _context_start(leaf, depth), end),
                    name=step.name,
                    nullable=step.nullable,
                    present=step.present,
                    path=step.path,
                    item_path=step.path + "[]",
                    fields=_compile(node.children, depth + 1),
                )
            )
        else:
            assert isinstance(node, OutputLeaf)
            leaf = node.leaf
            last = len(leaf.segments) - 1
            step = _step(leaf, last)
            kind = leaf.field.kind
            scalar = kind.items if isinstance(kind, Arr) else kind
            assert isinstance(scalar, Scalar)
            types = frozenset(t for kind_name in scalar.types for t in _PY_TYPES[kind_name])
            allowed = (
                frozenset(scalar.enum)
                if scalar.enum is not None and not scalar.extensible
                else None
            )
            ops.append(
                _Leaf(
                    key=node.name,
                    walk=_walk(leaf, _context_start(leaf, depth), last),
                    name=step.name,
                    types=types,
                    allowed=allowed,
                    nullable=step.nullable,
                    present=step.present,
                    path=step.path,
                    kinds=scalar.types,
                    scalars=isinstance(kind, Arr),
                )
            )
    flat = all(type(op) is _Leaf and not op.scalars and not op.walk for op in ops)
    return flat, tuple(ops)


def _some_leaf(node: OutputNode) -> ResolvedLeaf:
    while not isinstance(node, OutputLeaf):
        node = node.children[0]
    return node.leaf


def _context_start(leaf: ResolvedLeaf, depth: int) -> int:
    return leaf.lists[depth - 1].segment + 1 if depth else 0


def _step(leaf: ResolvedLeaf, index: int) -> _Step:
    declared = leaf.fields[index]
    path = format_path(leaf.segments[: index + 1]).removesuffix("[]")
    return _Step(leaf.segments[index].name, declared.nullable, declared.always_present, path)


def _walk(leaf: ResolvedLeaf, start: int, end: int) -> tuple[_Step, ...]:
    """The objects between a context and the segment at ``end``, to descend through."""
    return tuple(_step(leaf, index) for index in range(start, end))


# -- applying ---------------------------------------------------------------------------------


def _project_items(
    items: list[Any], fields: _Fields, section: str, path: str, drifts: list[Drift]
) -> list[dict[str, Any]]:
    flat, ops = fields
    projected = []
    project = _project_flat if flat else _project_object
    for item in items:
        if isinstance(item, dict):
            projected.append(project(item, ops, section, drifts))
        else:
            drifts.append(Drift(section, path, NOT_AN_OBJECT))
    return projected


def _project_fields(
    source: dict[str, Any], fields: _Fields, section: str, drifts: list[Drift]
) -> dict[str, Any]:
    flat, ops = fields
    if flat:
        return _project_flat(source, ops, section, drifts)
    return _project_object(source, ops, section, drifts)


def _project_flat(
    source: dict[str, Any], ops: tuple[_Leaf, ...], section: str, drifts: list[Drift]
) -> dict[str, Any]:
    """``_project_object`` for ops that are all top-level scalars."""
    out: dict[str, Any] = {}
    for op in ops:
        value = source.get(op.name, _ABSENT)
        if type(value) in op.types and (op.allowed is None or value in op.allowed):
            out[op.key] = value
        else:
            value = _off_schema(value, op, section, drifts)
            if value is not _OMIT:
                out[op.key] = value
    return out


def _project_object(
    source: dict[str, Any], ops: tuple[_Op, ...], section: str, drifts: list[Drift]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in ops:
        if type(op) is _Object:
            out[op.key] = _project_fields(source, op.fields, section, drifts)
            continue
        container = source
        if op.walk:
            container = _descend(source, op.walk, section, drifts)
            if container is None:
                out[op.key] = None
                continue
            if container is _OMIT:
                continue
        value = container.get(op.name, _ABSENT)
        if type(op) is _List:
            if isinstance(value, list):
                out[op.key] = _project_items(value, op.fields, section, op.item_path, drifts)
                continue
            value = _not_a_list(value, op.nullable, op.present, section, op.path, drifts)
        elif op.scalars:
            if isinstance(value, list):
                out[op.key] = _scalars(value, op, section, drifts)
                continue
            value = _not_a_list(value, op.nullable, op.present, section, op.path, drifts)
        else:
            if type(value) in op.types and (op.allowed is None or value in op.allowed):
                out[op.key] = value
                continue
            value = _off_schema(value, op, section, drifts)
        if value is not _OMIT:
            out[op.key] = value
    return out


def _descend(
    source: dict[str, Any], walk: tuple[_Step, ...], section: str, drifts: list[Drift]
) -> Any:
    """The object at the end of ``walk``; None to output a null, _OMIT to output nothing.

    A null or absent object on the way is reported once, here, at its own path, and the
    leaf becomes null (or is left out) without a second drift.
    """
    container = source
    for step in walk:
        value = container.get(step.name, _ABSENT)
        if isinstance(value, dict):
            container = value
            continue
        if value is _ABSENT:
            if not step.present:
                return _OMIT
            drifts.append(Drift(section, step.path, MISSING))
        elif value is None:
            if not step.nullable:
                drifts.append(Drift(section, step.path, NULL))
        else:
            drifts.append(Drift(section, step.path, NOT_AN_OBJECT))
        return None
    return container


def _off_schema(value: Any, op: _Leaf, section: str, drifts: list[Drift]) -> Any:
    """The output for a scalar that missed the fast path: absent, null or off the schema."""
    if value is _ABSENT:
        if not op.present:
            return _OMIT
        drifts.append(Drift(section, op.path, MISSING))
        return None
    if value is None:
        if not op.nullable:
            drifts.append(Drift(section, op.path, NULL))
        return None
    if not _is_a(value, op.kinds):
        drifts.append(Drift(section, op.path, WRONG_TYPE))
        return None
    if op.allowed is not None and value not in op.allowed:
        drifts.append(Drift(section, op.path, NOT_IN_ENUM))
        return None
    return value


def _not_a_list(
    value: Any, nullable: bool, present: bool, section: str, path: str, drifts: list[Drift]
) -> Any:
    if value is _ABSENT:
        if not present:
            return _OMIT
        drifts.append(Drift(section, path, MISSING))
    elif value is None:
        if not nullable:
            drifts.append(Drift(section, path, NULL))
    else:
        drifts.append(Drift(section, path, NOT_A_LIST))
    return None


def _scalars(values: list[Any], op: _Leaf, section: str, drifts: list[Drift]) -> list[Any]:
    """The items of a list of scalars that match the schema; the others are dropped."""
    kept = []
    for value in values:
        if type(value) in op.types or _is_a(value, op.kinds):
            if op.allowed is None or value in op.allowed:
                kept.append(value)
            else:
                drifts.append(Drift(section, op.path + "[]", NOT_IN_ENUM))
        else:
            drifts.append(Drift(section, op.path + "[]", WRONG_TYPE))
    return kept


def _is_a(value: Any, kinds: tuple[str, ...]) -> bool:
    """The slow, subclass-aware type check; bool is neither an integer nor a number."""
    if isinstance(value, bool):
        return "boolean" in kinds
    if isinstance(value, int):
        return "integer" in kinds or "number" in kinds
    if isinstance(value, float):
        return "number" in kinds
    if isinstance(value, str):
        return "string" in kinds
    return False


class DriftLog:
    """Which drifts are worth a log line: each (contract, section, path, reason) once per
    ``interval`` seconds. The metric counts every one; the log only says what is new, so a
    service sending undeclared values does not write a line per cache miss.
    """

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._last: dict[tuple, float] = {}

    def to_log(self, contract: tuple[str, str], drifts: Iterable[Drift]) -> list[Drift]:
        """The drifts not logged within the interval; remembers them as logged now."""
        now = self.clock()
        fresh = []
        for drift in drifts:
            key = (*contract, drift.section, drift.path, drift.reason)
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                continue
            if last is None and len(self._last) >= self.max_keys:
                self._last.clear()  # a flood of distinct paths: start over, not grow
            self._last[key] = now
            fresh.append(drift)
        return fresh
