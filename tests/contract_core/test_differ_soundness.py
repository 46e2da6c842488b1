"""The differ is sound: a change it calls additive keeps every new body valid for old clients.

Shapes are generated whole (sections, nested objects, lists, unions, enums, flags), then
changed by a few random edits of every kind the differ knows. Whenever the differ finds
no breaking change, every body the new shape allows (checked against the new version's
closed schema, so the generator itself is held to the shape) must validate against the old
version's schema as it is published: open to properties it does not declare.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from contract_core.differ import Compatibility, classify, diff
from contract_core.shapes import FORMAT, to_json_schema

SCALARS = ("boolean", "integer", "number", "string")
NAMES = ("a", "b", "c", "d", "e")
SECTIONS = ("user", "orders", "extras")
ENUM_VALUES = ("bronze", "silver", "gold", "platinum")
DEPENDENCIES = ("user", "order")

Described = dict[str, Any]


# -- shapes -----------------------------------------------------------------------------------


@st.composite
def scalar_types(draw) -> Described:
    types = sorted(draw(st.sets(st.sampled_from(SCALARS), min_size=1, max_size=2)))
    described: Described = {"type": types[0] if len(types) == 1 else types}
    if types == ["string"] and draw(st.booleans()):
        described["enum"] = sorted(draw(st.sets(st.sampled_from(ENUM_VALUES), min_size=1)))
        described["extensible"] = draw(st.booleans())
    return described


def _flags(draw, described: Described) -> Described:
    return {
        **described,
        "nullable": draw(st.booleans()),
        "required": draw(st.booleans()),
        "source": draw(st.sampled_from(NAMES)) + "Src",
    }


@st.composite
def fields(draw, depth: int = 0) -> dict[str, Described]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3 if depth else 4))
    return {name: draw(field(depth)) for name in sorted(names)}


@st.composite
def field(draw, depth: int = 0) -> Described:
    kinds = ["scalar", "scalar", "scalar_list"] + (["object", "object_list"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        return _flags(draw, draw(scalar_types()))
    if kind == "scalar_list":
        return _flags(draw, {"type": "array", "items": draw(scalar_types())})
    if kind == "object":  # an output object: never null, always there, no source of its own
        return {"type": "object", "nullable": False, "required": True,
                "fields": draw(fields(depth + 1))}  # fmt: skip
    return _flags(
        draw, {"type": "array", "items": {"type": "object", "fields": draw(fields(depth + 1))}}
    )


@st.composite
def section(draw) -> Described:
    return {
        "kind": draw(st.sampled_from(["object", "list"])),
        "nullable": draw(st.booleans()),
        "dependency": draw(st.sampled_from(DEPENDENCIES)),
        "fields": draw(fields()),
    }


@st.composite
def shapes(draw) -> Described:
    names = draw(st.lists(st.sampled_from(SECTIONS), unique=True, min_size=1))
    meta = {"type": "object", "nullable": False, "required": True,
            "fields": draw(fields(1))}  # fmt: skip
    return {
        "format": FORMAT,
        "client": "mobile",
        "endpoint": "home",
        "envelope": {"meta": meta},
        "sections": {name: draw(section()) for name in sorted(names)},
    }


# -- edits ------------------------------------------------------------------------------------


def _field_maps(shape: Described) -> list[dict[str, Described]]:
    """Every ``fields`` mapping in the shape (the envelope's, sections', nested ones)."""
    found: list[dict[str, Described]] = []

    def walk(mapping: dict[str, Described]) -> None:
        found.append(mapping)
        for described in mapping.values():
            if described["type"] == "object":
                walk(described["fields"])
            elif described["type"] == "array" and described["items"]["type"] == "object":
                walk(described["items"]["fields"])

    walk(shape["envelope"]["meta"]["fields"])
    for body in shape["sections"].values():
        walk(body["fields"])
    return found


def _scalars(shape: Described) -> list[Described]:
    """Every scalar description (a field's, or a list's items), to retype or re-enum."""
    found = []
    for mapping in _field_maps(shape):
        for described in mapping.values():
            if described["type"] == "array" and described["items"]["type"] != "object":
                found.append(described["items"])
            elif described["type"] not in ("object", "array"):
                found.append(described)
    return found


@st.composite
def edited(draw, shape: Described) -> Described:
    """``shape`` after one or two edits, each of a kind the differ classifies."""
    new = copy.deepcopy(shape)
    for _ in range(draw(st.integers(1, 2))):
        edit = draw(st.sampled_from(EDITS))
        edit(draw, new)
    return new


def _pick_field(draw, shape: Described) -> tuple[dict[str, Described], str] | None:
    maps = [m for m in _field_maps(shape) if m]
    if not maps:
        return None
    mapping = draw(st.sampled_from(maps))
    return mapping, draw(st.sampled_from(sorted(mapping)))


def add_field(draw, shape: Described) -> None:
    mapping = draw(st.sampled_from(_field_maps(shape)))
    free = [name for name in (*NAMES, "f", "g") if name not in mapping]
    if free:
        mapping[draw(st.sampled_from(free))] = draw(field(1))


def remove_field(draw, shape: Described) -> None:
    if (picked := _pick_field(draw, shape)) is not None:
        mapping, name = picked
        del mapping[name]


def rename_field(draw, shape: Described) -> None:
    if (picked := _pick_field(draw, shape)) is not None:
        mapping, name = picked
        mapping[name + "Renamed"] = mapping.pop(name)


def flip_flag(draw, shape: Described) -> None:
    if (picked := _pick_field(draw, shape)) is not None:
        mapping, name = picked
        described = mapping[name]
        flag = draw(st.sampled_from(["nullable", "required"]))
        described[flag] = not described.get(flag, flag == "required")


def remap(draw, shape: Described) -> None:
    if (picked := _pick_field(draw, shape)) is not None:
        mapping, name = picked
        if "source" in mapping[name]:
            mapping[name]["source"] = draw(st.sampled_from(NAMES)) + "Other"


def replace_field(draw, shape: Described) -> None:
    """Another kind or type altogether under the same name."""
    if (picked := _pick_field(draw, shape)) is not None:
        mapping, name = picked
        mapping[name] = draw(field(1))


def retype(draw, shape: Described) -> None:
    if scalars := _scalars(shape):
        described = draw(st.sampled_from(scalars))
        replacement = draw(scalar_types())
        described.pop("enum", None)
        described.pop("extensible", None)
        described.update(replacement)


def narrow(draw, shape: Described) -> None:
    """A union losing a type, or number becoming integer (what the differ calls additive)."""
    if scalars := _scalars(shape):
        described = draw(st.sampled_from(scalars))
        kind = described["type"]
        if isinstance(kind, list):
            described["type"] = draw(st.sampled_from(kind))
        elif kind == "number":
            described["type"] = "integer"


def introduce_enum(draw, shape: Described) -> None:
    strings = [d for d in _scalars(shape) if d["type"] == "string" and "enum" not in d]
    if strings:
        described = draw(st.sampled_from(strings))
        described["enum"] = sorted(draw(st.sets(st.sampled_from(ENUM_VALUES), min_size=1)))
        described["extensible"] = draw(st.booleans())


def change_enum(draw, shape: Described) -> None:
    enums = [d for d in _scalars(shape) if "enum" in d]
    if not enums:
        return
    described = draw(st.sampled_from(enums))
    change = draw(st.sampled_from(["add", "remove", "extensible", "drop"]))
    if change == "add":
        described["enum"] = sorted({*described["enum"], draw(st.sampled_from(ENUM_VALUES))})
    elif change == "remove" and len(described["enum"]) > 1:
        described["enum"] = sorted(described["enum"])[1:]
    elif change == "extensible":
        described["extensible"] = not described["extensible"]
    elif change == "drop":
        del described["enum"], described["extensible"]


def change_section(draw, shape: Described) -> None:
    sections = shape["sections"]
    change = draw(st.sampled_from(["add", "remove", "nullable", "kind", "dependency"]))
    free = [name for name in SECTIONS if name not in sections]
    if change == "add" and free:
        sections[draw(st.sampled_from(free))] = draw(section())
        return
    if not sections:
        return
    name = draw(st.sampled_from(sorted(sections)))
    if change == "remove":
        del sections[name]
    elif change == "nullable":
        sections[name]["nullable"] = not sections[name]["nullable"]
    elif change == "kind":
        sections[name]["kind"] = "list" if sections[name]["kind"] == "object" else "object"
    elif change == "dependency":
        sections[name]["dependency"] = draw(st.sampled_from(DEPENDENCIES))


# Weighted towards edits that can be additive, so that most examples reach the check;
# the always-breaking ones stay, mixed in, so a differ missing them would be caught.
EDITS = (add_field, add_field, add_field, remap, flip_flag, flip_flag, narrow, narrow,
         introduce_enum, change_enum, change_enum, change_section, retype, replace_field,
         remove_field, rename_field)  # fmt: skip


# -- bodies -----------------------------------------------------------------------------------


@st.composite
def scalar_value(draw, described: Described) -> object:
    types = described["type"] if isinstance(described["type"], list) else [described["type"]]
    kind = draw(st.sampled_from(types))
    if kind == "string":
        if "enum" in described and not described["extensible"]:
            return draw(st.sampled_from(described["enum"]))
        if "enum" in described:
            return draw(st.sampled_from([*described["enum"], "diamond"]))
        return draw(st.text(max_size=5))
    if kind == "integer":
        return draw(st.integers(-5, 5))
    if kind == "number":
        return draw(st.sampled_from([0.5, -2.25, 3, 1e9]))
    return draw(st.booleans())


@st.composite
def value(draw, described: Described) -> object:
    kind = described["type"]
    if kind == "object":
        return draw(object_value(described["fields"]))
    if kind == "array":
        return draw(st.lists(value(described["items"]), max_size=2))
    return draw(scalar_value(described))


@st.composite
def object_value(draw, fields_: dict[str, Described]) -> dict[str, object]:
    body = {}
    for name, described in fields_.items():
        if not described.get("required", True) and draw(st.booleans()):
            continue  # absent
        if described.get("nullable", False) and draw(st.booleans()):
            body[name] = None
        else:
            body[name] = draw(value(described))
    return body


@st.composite
def bodies(draw, shape: Described) -> dict[str, object]:
    body = {"meta": draw(object_value(shape["envelope"]["meta"]["fields"]))}
    for name, described in shape["sections"].items():
        item = object_value(described["fields"])
        if described["nullable"] and draw(st.booleans()):
            body[name] = None
        elif described["kind"] == "object":
            body[name] = draw(item)
        else:
            body[name] = draw(st.lists(item, max_size=2))
    return body


# -- the property -----------------------------------------------------------------------------


def _validator(shape: Described, *, closed: bool) -> Draft202012Validator:
    return Draft202012Validator(to_json_schema(shape, title="t", version="1.0", closed=closed))


@given(shapes(), st.data())
def test_an_additive_change_keeps_every_new_body_valid_under_the_old_published_schema(
    old: Described, data: st.DataObject
) -> None:
    new = data.draw(edited(old), label="new shape")
    verdict = classify(diff(old, new))
    assume(verdict is not Compatibility.BREAKING)
    published_old = _validator(old, closed=False)
    exact_new = _validator(new, closed=True)
    for _ in range(3):
        body = data.draw(bodies(new), label="body")
        exact_new.validate(body)  # the generator writes what the new shape allows
        errors = [error.message for error in published_old.iter_errors(body)]
        assert errors == [], (verdict, [str(c.kind) + " " + c.path for c in diff(old, new)])


def test_the_property_has_teeth() -> None:
    """A change the differ rightly calls breaking (integer -> number) yields a body the
    old schema refuses: the check above would notice a differ calling it additive."""
    old = {
        "format": FORMAT, "client": "mobile", "endpoint": "home",
        "envelope": {"meta": {"type": "object", "nullable": False, "required": True,
                              "fields": {}}},
        "sections": {"user": {"kind": "object", "nullable": False, "dependency": "user",
                              "fields": {"a": {"type": "integer", "nullable": False,
                                               "required": True, "source": "aSrc"}}}},
    }  # fmt: skip
    new = copy.deepcopy(old)
    new["sections"]["user"]["fields"]["a"]["type"] = "number"
    assert classify(diff(old, new)) is Compatibility.BREAKING
    body = {"meta": {}, "user": {"a": 0.5}}
    _validator(new, closed=True).validate(body)
    assert not _validator(old, closed=False).is_valid(body)
