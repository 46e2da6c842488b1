"""The classified list of changes between two shapes (SPEC section 6, "Differ").

Compatibility is judged FORWARD: the new code writes the response and clients built
against the old shape read it. A change is additive when every response the new shape
allows is one the old shape allowed too, and breaking otherwise. Only what clients
receive counts (output names, JSON types, nullability, presence, enums): a source path
is in the shape so that the fingerprint and cache keys follow it, and a change of source
alone is a ``remap``.

Change kinds, each with one classification:

========================  ==========  =====================================================
kind                      class       meaning
========================  ==========  =====================================================
section_added             additive    a new top-level section
section_removed           breaking    a section is gone
field_added               additive    a new output field (or envelope field)
field_removed             breaking    an output field is gone
field_renamed             breaking    a field removed and one added in the same parent, both
                                      fed by the same source path (reported once)
remap                     additive    the same output fed from another source path; what
                                      clients receive is judged by the other kinds (a wider
                                      type from the new source is also ``type_widened``)
dependency_changed        breaking    a section fed by another dependency
kind_changed              breaking    object, list and scalar swapped (also a section's kind)
type_changed              breaking    an incompatible scalar type (string -> integer)
type_widened              breaking    integer -> number, or a union gaining a type
type_narrowed             additive    number -> integer, or a union losing a type
became_optional           breaking    a field that was always present may be absent
became_required           additive    a field that could be absent is always present
became_nullable           breaking    non-nullable -> nullable
became_non_nullable       additive    nullable -> non-nullable
enum_value_added          breaking    unless the old enum was extensible: then additive
enum_value_removed        additive    fewer values than clients were prepared for
enum_dropped              breaking    a closed enum became an open string (additive when
                                      the old enum was extensible: clients already cope)
enum_introduced           additive    an open string became an enum
enum_became_extensible    breaking    the promise "these are all the values" is withdrawn
enum_became_closed        additive    the values are now promised to be all there are
========================  ==========  =====================================================

Paths read like the body: ``user.avatarUrl``, ``recentOrders[].status``, ``meta.cache``;
a whole section's changes are at ``sections.<name>``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Compatibility(StrEnum):
    ADDITIVE = "additive"
    BREAKING = "breaking"


ADDITIVE = Compatibility.ADDITIVE
BREAKING = Compatibility.BREAKING


@dataclass(frozen=True)
class Change:
    """One classified difference; ``fingerprint`` is stable for identical changes."""

    kind: str
    path: str
    compatibility: Compatibility
    detail: str
    fingerprint: str


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change from shape ``old`` to shape ``new``, sorted by (path, kind)."""
    if old.get("format") != new.get("format"):
        raise ValueError(
            f"cannot compare shapes of formats {old.get('format')!r} and {new.get('format')!r}"
        )
    changes: list[Change] = []
    _compare_fields("", old["envelope"], new["envelope"], changes)
    _compare_sections(old["sections"], new["sections"], changes)
    return sorted(changes, key=lambda change: (change.path, change.kind))


def classify(changes: Iterable[Change]) -> Compatibility | None:
    """BREAKING if any change is breaking, ADDITIVE if there are changes, None if none."""
    result = None
    for change in changes:
        if change.compatibility is BREAKING:
            return BREAKING
        result = ADDITIVE
    return result


def _change(
    changes: list[Change],
    kind: str,
    path: str,
    compatibility: Compatibility,
    detail: str,
    old: Any,
    new: Any,
) -> None:
    canonical = json.dumps(
        [kind, path, old, new], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    changes.append(Change(kind, path, compatibility, detail, digest))


def _compare_sections(old: dict[str, Any], new: dict[str, Any], changes: list[Change]) -> None:
    for name in old.keys() - new.keys():
        _change(
            changes,
            "section_removed",
            f"sections.{name}",
            BREAKING,
            f"section {name!r} removed",
            old[name],
            None,
        )
    for name in new.keys() - old.keys():
        _change(
            changes,
            "section_added",
            f"sections.{name}",
            ADDITIVE,
            f"section {name!r} added",
            None,
            new[name],
        )
    for name in old.keys() & new.keys():
        before, after = old[name], new[name]
        path = f"sections.{name}"
        if before["dependency"] != after["dependency"]:
            _change(
                changes,
                "dependency_changed",
                path,
                BREAKING,
                f"section {name!r} now comes from dependency {after['dependency']!r} "
                f"instead of {before['dependency']!r}",
                before["dependency"],
                after["dependency"],
            )
        _compare_flags(path, before, after, changes)
        if before["kind"] != after["kind"]:
            _change(
                changes,
                "kind_changed",
                path,
                BREAKING,
                f"section {name!r} changed from {_a(before['kind'])} to {_a(after['kind'])}",
                before["kind"],
                after["kind"],
            )
            continue
        prefix = name if before["kind"] == "object" else f"{name}[]"
        _compare_fields(prefix, before["fields"], after["fields"], changes)


def _compare_fields(
    prefix: str, old: dict[str, Any], new: dict[str, Any], changes: list[Change]
) -> None:
    removed = sorted(old.keys() - new.keys())
    added = sorted(new.keys() - old.keys())
    for old_name in list(removed):
        source = old[old_name].get("source")
        if source is None:
            continue
        new_name = next((n for n in added if new[n].get("source") == source), None)
        if new_name is None:
            continue
        removed.remove(old_name)
        added.remove(new_name)
        _change(
            changes,
            "field_renamed",
            _join(prefix, old_name),
            BREAKING,
            f"{old_name!r} renamed to {new_name!r} (both from source {source!r}): "
            f"clients reading {old_name!r} no longer find it",
            {old_name: old[old_name]},
            {new_name: new[new_name]},
        )
    for name in removed:
        _change(
            changes,
            "field_removed",
            _join(prefix, name),
            BREAKING,
            f"field {name!r} removed",
            old[name],
            None,
        )
    for name in added:
        _change(
            changes,
            "field_added",
            _join(prefix, name),
            ADDITIVE,
            f"field {name!r} added",
            None,
            new[name],
        )
    for name in sorted(old.keys() & new.keys()):
        _compare_value(_join(prefix, name), old[name], new[name], changes)


def _compare_value(
    path: str, old: dict[str, Any], new: dict[str, Any], changes: list[Change]
) -> None:
    """Compare two described values: a field, or the items of a list."""
    _compare_flags(path, old, new, changes)
    old_source, new_source = old.get("source"), new.get("source")
    if old_source is not None and new_source is not None and old_source != new_source:
        # The client reads the same name, type and flags (compared below, each by its own
        # rule), so the remap itself is additive: it is shown to a reviewer as its own kind.
        _change(
            changes,
            "remap",
            path,
            ADDITIVE,
            f"now fed from `{new_source}` instead of `{old_source}`",
            old_source,
            new_source,
        )
    old_kind, new_kind = _kind_of(old), _kind_of(new)
    if old_kind != new_kind:
        _change(
            changes,
            "kind_changed",
            path,
            BREAKING,
            f"changed from {_a(old_kind)} to {_a(new_kind)}",
            old_kind,
            new_kind,
        )
        return
    if old_kind == "object":
        _compare_fields(path, old["fields"], new["fields"], changes)
    elif old_kind == "array":
        _compare_value(f"{path}[]", old["items"], new["items"], changes)
    else:
        _compare_types(path, old["type"], new["type"], changes)
        _compare_enums(path, old, new, changes)


def _compare_flags(
    path: str, old: dict[str, Any], new: dict[str, Any], changes: list[Change]
) -> None:
    # Items of a list carry neither flag: an item is never null and never absent.
    was_nullable, is_nullable = old.get("nullable", False), new.get("nullable", False)
    if not was_nullable and is_nullable:
        _change(changes, "became_nullable", path, BREAKING, "may now be null", False, True)
    elif was_nullable and not is_nullable:
        _change(
            changes, "became_non_nullable", path, ADDITIVE, "is never null any more", True, False
        )
    was_required, is_required = old.get("required", True), new.get("required", True)
    if was_required and not is_required:
        _change(
            changes,
            "became_optional",
            path,
            BREAKING,
            "was always present, may now be absent",
            True,
            False,
        )
    elif not was_required and is_required:
        _change(changes, "became_required", path, ADDITIVE, "is now always present", False, True)


def _kind_of(described: dict[str, Any]) -> str:
    kind = described["type"]
    return kind if kind in ("object", "array") else "scalar"


def _types(value: str | list[str]) -> frozenset[str]:
    return frozenset([value] if isinstance(value, str) else value)


def _accepts(types: frozenset[str], kind: str) -> bool:
    # A reader expecting a number reads an integer fine.
    return kind in types or (kind == "integer" and "number" in types)


def _compare_types(path: str, old: Any, new: Any, changes: list[Change]) -> None:
    before, after = _types(old), _types(new)
    if before == after:
        return
    old_label, new_label = "|".join(sorted(before)), "|".join(sorted(after))
    values = (sorted(before), sorted(after))
    if all(_accepts(before, kind) for kind in after):
        _change(
            changes,
            "type_narrowed",
            path,
            ADDITIVE,
            f"type narrowed from {old_label} to {new_label}",
            *values,
        )
    elif all(_accepts(after, kind) for kind in before):
        _change(
            changes,
            "type_widened",
            path,
            BREAKING,
            f"type widened from {old_label} to {new_label}",
            *values,
        )
    else:
        _change(
            changes,
            "type_changed",
            path,
            BREAKING,
            f"type changed from {old_label} to {new_label}",
            *values,
        )


def _compare_enums(
    path: str, old: dict[str, Any], new: dict[str, Any], changes: list[Change]
) -> None:
    before, after = old.get("enum"), new.get("enum")
    was_extensible = bool(old.get("extensible", False))
    if before is None and after is None:
        return
    if after is None:
        _change(
            changes,
            "enum_dropped",
            path,
            ADDITIVE if was_extensible else BREAKING,
            f"no longer limited to {_values(before)}: any string may appear",
            sorted(before),
            None,
        )
        return
    if before is None:
        _change(
            changes,
            "enum_introduced",
            path,
            ADDITIVE,
            f"now limited to {_values(after)}",
            None,
            sorted(after),
        )
        return
    gained = sorted(set(after) - set(before))
    lost = sorted(set(before) - set(after))
    if gained:
        closed = "" if was_extensible else " to a closed enum"
        _change(
            changes,
            "enum_value_added",
            path,
            ADDITIVE if was_extensible else BREAKING,
            f"{_values(gained)} added{closed}",
            sorted(before),
            sorted(after),
        )
    if lost:
        _change(
            changes,
            "enum_value_removed",
            path,
            ADDITIVE,
            f"{_values(lost)} removed",
            sorted(before),
            sorted(after),
        )
    is_extensible = bool(new.get("extensible", False))
    if not was_extensible and is_extensible:
        _change(
            changes,
            "enum_became_extensible",
            path,
            BREAKING,
            "enum became extensible: values beyond the listed ones may now appear",
            False,
            True,
        )
    elif was_extensible and not is_extensible:
        _change(
            changes,
            "enum_became_closed",
            path,
            ADDITIVE,
            "enum became closed: the listed values are now all there are",
            True,
            False,
        )


def _values(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in sorted(values))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _a(kind: str) -> str:
    return {"object": "an object", "array": "a list", "list": "a list", "scalar": "a scalar"}[kind]
