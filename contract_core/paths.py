"""Rule paths: parsing them, resolving them against source schemas, laying rules out as outputs.

A path is dotted names (``address.city``); a segment ending in ``[]`` walks into each item
of a list of objects (``lineItems[].sku``). Every problem is a :class:`RuleError` whose
message is shown to an admin user as a form error, so it names the section and the field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from contract_core.schema import (
    INTERNAL,
    PERSONAL,
    Arr,
    EndpointSpec,
    Field,
    Obj,
    Rule,
    Scalar,
    Section,
)

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RuleError(ValueError):
    """A rule that cannot be applied; the message is meant for the admin user who wrote it."""


class Segment(NamedTuple):
    name: str
    is_list: bool


def parse(path: str) -> tuple[Segment, ...]:
    """The segments of ``path``; raises RuleError when it is empty or malformed."""
    if not isinstance(path, str) or not path.strip():
        raise RuleError("the path is empty: name a field, e.g. 'displayName'")
    segments = []
    parts = path.split(".")
    for position, part in enumerate(parts):
        is_list = part.endswith("[]")
        name = part[:-2] if is_list else part
        if not name:
            raise RuleError(f"{path!r} has an empty name: write names joined by single dots")
        if not NAME_RE.fullmatch(name):
            raise RuleError(
                f"{name!r} in {path!r} is not a valid name: use letters, digits and '_', "
                "starting with a letter or '_'"
            )
        if is_list and position == len(parts) - 1:
            raise RuleError(
                f"{path!r} ends in '[]': pick a field of each item, e.g. '{path}.<field>'"
            )
        segments.append(Segment(name, is_list))
    return tuple(segments)


def format_path(segments: Iterable[Segment]) -> str:
    return ".".join(name + "[]" if is_list else name for name, is_list in segments)


@dataclass(frozen=True)
class ListStep:
    """A list of objects that a path walks into, as seen from the enclosing item or root.

    ``nullable`` and ``always_present`` are effective: they account for every object
    between the enclosing list item (or the section's root) and the list itself.
    """

    path: str
    segment: int
    nullable: bool
    always_present: bool


@dataclass(frozen=True)
class ResolvedLeaf:
    """A source path resolved to a selectable leaf: a scalar or a list of scalars.

    ``fields`` holds the declared field of every segment. ``nullable`` and
    ``always_present`` are effective for the leaf inside its innermost list item (or the
    section's root when the path walks into no list): a null or absent list yields no
    items rather than a null leaf, so the list's own flags live on its ``ListStep``.
    """

    path: str
    segments: tuple[Segment, ...]
    fields: tuple[Field, ...]
    lists: tuple[ListStep, ...]
    nullable: bool
    always_present: bool

    @property
    def field(self) -> Field:
        return self.fields[-1]

    @property
    def list_indices(self) -> tuple[int, ...]:
        return tuple(step.segment for step in self.lists)

    @property
    def is_array(self) -> bool:
        return isinstance(self.field.kind, Arr)

    @property
    def scalar(self) -> Scalar:
        """The leaf's scalar, or the scalar of each item for a list of scalars."""
        kind = self.field.kind
        return kind.items if isinstance(kind, Arr) else kind


def resolve(source: Obj, path: str, *, section: str | None = None) -> ResolvedLeaf:
    """Resolve ``path`` in ``source``; raises RuleError naming the field when it cannot."""
    segments = parse(path)
    where = section or "the source"
    container = source
    fields: list[Field] = []
    lists: list[ListStep] = []
    start = 0  # first segment inside the innermost list item walked so far
    for position, (name, is_list) in enumerate(segments):
        here = format_path(segments[: position + 1]).removesuffix("[]")
        parent = format_path(segments[:position])
        declared = container.get(name)
        if declared is None:
            owner = where if not parent else f"{section}.{parent}" if section else parent
            raise RuleError(f"{owner} has no field {name!r}{_did_you_mean(name, container)}")
        fields.append(declared)
        kind = declared.kind
        last = position == len(segments) - 1
        if is_list:
            if not isinstance(kind, Arr):
                raise RuleError(
                    f"{here!r} is {_describe(kind)}, not a list: remove the '[]' after it"
                )
            if not isinstance(kind.items, Obj):
                raise RuleError(
                    f"{here!r} is a list of {_plural(kind.items)}, not of objects: "
                    f"select {here!r} itself"
                )
            on_the_way = fields[start:]
            lists.append(
                ListStep(
                    path=here,
                    segment=position,
                    nullable=any(f.nullable for f in on_the_way),
                    always_present=all(f.always_present for f in on_the_way),
                )
            )
            container = kind.items
            start = position + 1
            continue
        if last:
            if isinstance(kind, Obj):
                raise RuleError(
                    f"{here!r} is an object: pick one of its fields, "
                    f"e.g. {here + '.' + _first_leaf(kind)!r}"
                )
            if isinstance(kind, Arr) and isinstance(kind.items, Obj):
                raise RuleError(
                    f"{here!r} is a list of objects: pick one of its items' fields, "
                    f"e.g. {here + '[].' + _first_leaf(kind.items)!r}"
                )
            break
        if isinstance(kind, Arr):
            if isinstance(kind.items, Obj):
                rest = format_path(segments[position + 1 :])
                raise RuleError(
                    f"{here!r} is a list: write {here + '[].' + rest!r} "
                    "to pick a field of each item"
                )
            raise RuleError(f"{here!r} is a list of {_plural(kind.items)}: it has no fields")
        if not isinstance(kind, Obj):
            raise RuleError(f"{here!r} is {_describe(kind)}, not an object: it has no fields")
        container = kind
    inside = fields[start:]
    return ResolvedLeaf(
        path=format_path(segments),
        segments=segments,
        fields=tuple(fields),
        lists=tuple(lists),
        nullable=any(f.nullable for f in inside),
        always_present=all(f.always_present for f in inside),
    )


def leaf_paths(source: Obj) -> list[tuple[str, str]]:
    """Every selectable path of ``source`` with a short type label, in declaration order."""
    found: list[tuple[str, str]] = []
    _collect(source, "", False, found)
    return found


def sensitivity(source: Obj, path: str) -> str:
    """``internal`` or ``personal`` when a field on the way to ``path`` is marked so."""
    marks = {declared.sensitivity for declared in resolve(source, path).fields}
    return next((mark for mark in (INTERNAL, PERSONAL) if mark in marks), "")


def type_label(kind: Scalar | Arr, nullable: bool) -> str:
    """A short label of a leaf's type: ``string``, ``integer|string``, ``array<string>|null``."""
    if isinstance(kind, Arr):
        label = f"array<{type_label(kind.items, False)}>"
    elif kind.enum is not None:
        values = "|".join(kind.enum) + ("|…" if kind.extensible else "")
        label = f"enum<{values}>"
    else:
        label = "|".join(kind.types)
    return label + "|null" if nullable else label


def _collect(container: Obj, prefix: str, nullable: bool, found: list[tuple[str, str]]) -> None:
    for name, declared in container.fields:
        path = prefix + name
        kind = declared.kind
        here_nullable = nullable or declared.nullable
        if isinstance(kind, Obj):
            _collect(kind, path + ".", here_nullable, found)
        elif isinstance(kind, Arr) and isinstance(kind.items, Obj):
            _collect(kind.items, path + "[].", False, found)
        else:
            found.append((path, type_label(kind, here_nullable)))


def _first_leaf(container: Obj) -> str:
    paths = leaf_paths(container)
    return paths[0][0] if paths else "<field>"


def _did_you_mean(name: str, container: Obj) -> str:
    by_case = [n for n in container.names if n.lower() == name.lower()]
    close = by_case or difflib.get_close_matches(name, container.names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(kind: Scalar | Obj | Arr) -> str:
    if isinstance(kind, Obj):
        return "an object"
    if isinstance(kind, Arr):
        return "a list"
    label = type_label(kind, False)
    return f"an {label}" if label[0] in "aeiou" else f"a {label}"


def _plural(kind: Scalar | Obj) -> str:
    if isinstance(kind, Obj):
        return "objects"
    return "|".join(f"{t}s" for t in kind.types)


# -- laying rules out as output trees ------------------------------------------------------


@dataclass(frozen=True)
class OutputLeaf:
    """An output key fed by one rule's source leaf."""

    name: str
    rule: Rule
    leaf: ResolvedLeaf


@dataclass(frozen=True)
class OutputObject:
    """An output object the BFF builds from dotted output paths; always present, never null."""

    name: str
    children: tuple[OutputNode, ...]


@dataclass(frozen=True)
class OutputList:
    """An output list projected item by item from one source list of objects."""

    name: str
    source: ListStep
    children: tuple[OutputNode, ...]


OutputNode = OutputLeaf | OutputObject | OutputList


@dataclass(frozen=True)
class SectionLayout:
    """A section and the output tree its rules build, children in the order rules came."""

    section: Section
    children: tuple[OutputNode, ...]


def layout(endpoint: EndpointSpec, rules: Iterable[Rule]) -> tuple[SectionLayout, ...]:
    """Validate ``rules`` against ``endpoint`` and lay them out, one layout per section.

    Sections appear in the endpoint's order, including those with no rules.
    """
    trees: dict[str, dict[str, _Node]] = {s.name: {} for s in endpoint.sections}
    for rule in rules:
        section = endpoint.section(rule.section)
        if section is None:
            known = ", ".join(s.name for s in endpoint.sections) or "none"
            raise RuleError(
                f"{endpoint.client}/{endpoint.name} has no section {rule.section!r} "
                f"(its sections: {known})"
            )
        leaf = resolve(section.source, rule.source, section=section.name)
        _place(section.name, trees[section.name], rule, leaf)
    return tuple(
        SectionLayout(section, _freeze(trees[section.name])) for section in endpoint.sections
    )


class _Node:
    """A mutable output-tree node while rules are being placed."""

    def __init__(
        self,
        kind: str,
        output: str,
        *,
        rule: Rule | None = None,
        leaf: ResolvedLeaf | None = None,
        source: ListStep | None = None,
    ) -> None:
        self.kind = kind  # "leaf", "object" or "list"
        self.output = output
        self.rule: Rule | None = rule
        self.leaf: ResolvedLeaf | None = leaf
        self.source: ListStep | None = source
        self.children: dict[str, _Node] = {}


def _place(section: str, tree: dict[str, _Node], rule: Rule, leaf: ResolvedLeaf) -> None:
    output = rule.output_path
    try:
        segments = parse(output)
    except RuleError as exc:
        raise RuleError(f"{section}: output name {output!r} is not valid: {exc}") from None
    out_lists = sum(1 for s in segments if s.is_list)
    if out_lists != len(leaf.lists):
        raise RuleError(
            f"{section}: output {output!r} has {out_lists} '[]' segment(s) but its source "
            f"{leaf.path!r} has {len(leaf.lists)}: an output keeps the source's list structure"
        )
    children = tree
    list_number = 0
    for position, (name, is_list) in enumerate(segments):
        here = format_path(segments[: position + 1])
        existing = children.get(name)
        if position == len(segments) - 1:
            if existing is None:
                children[name] = _Node("leaf", here, rule=rule, leaf=leaf)
                return
            if existing.kind == "leaf":
                raise RuleError(
                    f"{section}: two rules write the output {here!r} "
                    f"(from {existing.leaf.path!r} and {leaf.path!r})"
                )
            raise RuleError(
                f"{section}: output {here!r} collides with {_any_leaf(existing)!r}: "
                f"{name!r} cannot be both a field and {_article(existing.kind)}"
            )
        wanted = "list" if is_list else "object"
        if existing is None:
            source = leaf.lists[list_number] if is_list else None
            existing = children[name] = _Node(wanted, here, source=source)
        elif existing.kind != wanted:
            raise RuleError(
                f"{section}: output {output!r} collides with {_any_leaf(existing)!r}: "
                f"{name!r} cannot be both {_article(wanted)} and {_article(existing.kind)}"
            )
        elif is_list and existing.source.path != leaf.lists[list_number].path:
            raise RuleError(
                f"{section}: output list {here!r} takes its items from "
                f"{existing.source.path + '[]'!r}, so {output!r} cannot come from "
                f"{leaf.path!r}"
            )
        if is_list:
            list_number += 1
        children = existing.children


def _any_leaf(node: _Node) -> str:
    while node.kind != "leaf":
        node = next(iter(node.children.values()))
    return node.output


def _article(kind: str) -> str:
    return {"leaf": "a field", "object": "an object", "list": "a list"}[kind]


def _freeze(children: dict[str, _Node]) -> tuple[OutputNode, ...]:
    frozen: list[OutputNode] = []
    for name, node in children.items():
        if node.kind == "leaf":
            frozen.append(OutputLeaf(name, node.rule, node.leaf))
        elif node.kind == "object":
            frozen.append(OutputObject(name, _freeze(node.children)))
        else:
            frozen.append(OutputList(name, node.source, _freeze(node.children)))
    return tuple(frozen)
