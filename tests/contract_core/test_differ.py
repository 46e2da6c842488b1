"""Tests of the classified diff between two shapes, judged forward (new writes, old reads)."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract_core.differ import Change, Compatibility, classify, diff
from contract_core.schema import Arr, Field, Rule, Scalar, Section, integer, number, obj, string
from contract_core.shapes import build_shape, fingerprint
from tests.contract_core.test_shapes import (
    DEFAULT_RULES,
    HOME,
    rule_lists,
    with_field,
    with_source,
)

ADDITIVE = Compatibility.ADDITIVE
BREAKING = Compatibility.BREAKING


def shape(rules=DEFAULT_RULES, endpoint=HOME) -> dict:
    return build_shape(endpoint, rules)


def changed_field(section: str, path: str, change):
    return with_source(HOME, section, lambda source: with_field(source, path, change))


def only_change(old: dict, new: dict) -> Change:
    changes = diff(old, new)
    assert len(changes) == 1, changes
    return changes[0]


def summary(changes) -> list[tuple[str, str, str]]:
    return [(c.kind, c.path, str(c.compatibility)) for c in changes]


# -- sections -------------------------------------------------------------------------------


def test_a_new_section_is_additive():
    old = shape(endpoint=replace(HOME, sections=HOME.sections[:2]))
    change = only_change(old, shape())
    assert (change.kind, change.path, change.compatibility) == (
        "section_added",
        "sections.recommendations",
        ADDITIVE,
    )


def test_a_removed_section_is_breaking():
    new = shape(endpoint=replace(HOME, sections=HOME.sections[:2]))
    change = only_change(shape(), new)
    assert (change.kind, change.path, change.compatibility) == (
        "section_removed",
        "sections.recommendations",
        BREAKING,
    )
    assert change.detail == "section 'recommendations' removed"


def test_a_section_fed_by_another_dependency_is_breaking():
    user, *rest = HOME.sections
    new = shape(endpoint=replace(HOME, sections=(replace(user, dependency="profiles"), *rest)))
    change = only_change(shape(), new)
    assert (change.kind, change.path, change.compatibility) == (
        "dependency_changed",
        "sections.user",
        BREAKING,
    )
    assert "'profiles'" in change.detail and "'user'" in change.detail


def test_an_object_section_becoming_a_list_is_a_breaking_kind_change():
    user, *rest = HOME.sections
    new = shape(endpoint=replace(HOME, sections=(replace(user, kind="list"), *rest)))
    change = only_change(shape(), new)
    assert (change.kind, change.path, change.compatibility) == (
        "kind_changed",
        "sections.user",
        BREAKING,
    )
    assert change.detail == "section 'user' changed from an object to a list"


def test_a_section_becoming_nullable_is_breaking_and_back_is_additive():
    user, *rest = HOME.sections
    nullable = shape(endpoint=replace(HOME, sections=(replace(user, nullable=True), *rest)))
    assert summary(diff(shape(), nullable)) == [("became_nullable", "sections.user", "breaking")]
    assert summary(diff(nullable, shape())) == [
        ("became_non_nullable", "sections.user", "additive")
    ]


# -- fields ---------------------------------------------------------------------------------


def test_a_new_field_is_additive():
    change = only_change(shape(), shape([*DEFAULT_RULES, Rule("user", "tags")]))
    assert (change.kind, change.path, change.compatibility) == (
        "field_added",
        "user.tags",
        ADDITIVE,
    )


def test_a_new_optional_field_is_additive_too():
    change = only_change(shape(), shape([*DEFAULT_RULES, Rule("user", "referredBy")]))
    assert (change.kind, change.compatibility) == ("field_added", ADDITIVE)


def test_a_removed_field_is_breaking():
    change = only_change(shape(), shape(DEFAULT_RULES[1:]))
    assert (change.kind, change.path, change.compatibility) == (
        "field_removed",
        "user.userId",
        BREAKING,
    )


def test_a_removed_field_of_a_list_section_is_at_its_item_path():
    rules = [r for r in DEFAULT_RULES if r.source != "status"]
    change = only_change(shape(), shape(rules))
    assert (change.kind, change.path) == ("field_removed", "recentOrders[].status")


def test_a_renamed_field_is_one_breaking_change_naming_both_names():
    renamed = [
        Rule("user", "avatarUrl", "profileImageUrl") if r.source == "avatarUrl" else r
        for r in DEFAULT_RULES
    ]
    change = only_change(shape(), shape(renamed))
    assert (change.kind, change.path, change.compatibility) == (
        "field_renamed",
        "user.avatarUrl",
        BREAKING,
    )
    assert "'avatarUrl'" in change.detail and "'profileImageUrl'" in change.detail


def test_a_rename_inside_list_items_is_detected():
    old = shape([Rule("user", "lineItems[].sku", "items[].sku")])
    new = shape([Rule("user", "lineItems[].sku", "items[].code")])
    assert summary(diff(old, new)) == [("field_renamed", "user.items[].sku", "breaking")]


def test_a_renamed_output_list_is_detected_by_its_source_list():
    old = shape([Rule("user", "lineItems[].sku", "items[].sku")])
    new = shape([Rule("user", "lineItems[].sku", "lines[].sku")])
    assert summary(diff(old, new)) == [("field_renamed", "user.items", "breaking")]


def test_fields_removed_and_added_from_different_sources_are_not_a_rename():
    old = shape([Rule("user", "displayName", "name")])
    new = shape([Rule("user", "userId", "id")])
    assert summary(diff(old, new)) == [
        ("field_added", "user.id", "additive"),
        ("field_removed", "user.name", "breaking"),
    ]


def test_two_renames_of_one_source_pair_up_once_each():
    old = shape([Rule("user", "displayName", "a"), Rule("user", "displayName", "b")])
    new = shape([Rule("user", "displayName", "c"), Rule("user", "displayName", "d")])
    kinds = [c.kind for c in diff(old, new)]
    assert kinds == ["field_renamed", "field_renamed"]


def test_an_output_fed_from_another_source_of_the_same_type_is_a_remap():
    old = shape([Rule("user", "displayName", "name")])
    new = shape([Rule("user", "userId", "name")])
    change = only_change(old, new)
    assert (change.kind, change.path, change.compatibility) == ("remap", "user.name", ADDITIVE)
    assert change.detail == "now fed from `userId` instead of `displayName`"
    assert fingerprint(old) != fingerprint(new)


def test_a_remap_after_an_upstream_rename_keeps_the_output_and_is_additive():
    new_code = with_source(
        HOME,
        "user",
        lambda source: replace(
            source,
            fields=tuple(
                ("profileImageUrl" if name == "avatarUrl" else name, value)
                for name, value in source.fields
            ),
        ),
    )
    old = shape([Rule("user", "avatarUrl")])
    new = shape([Rule("user", "profileImageUrl", "avatarUrl")], new_code)
    assert summary(diff(old, new)) == [("remap", "user.avatarUrl", "additive")]


def test_a_remap_to_a_narrower_source_is_additive():
    old = shape([Rule("user", "avatarUrl")])  # a nullable string
    new = shape([Rule("user", "displayName", "avatarUrl")])  # never null
    assert summary(diff(old, new)) == [
        ("became_non_nullable", "user.avatarUrl", "additive"),
        ("remap", "user.avatarUrl", "additive"),
    ]


@pytest.mark.parametrize(
    ("source", "kinds"),
    [
        ("fraudScore", ["remap", "type_changed"]),  # string -> number
        ("balance", ["remap", "type_widened"]),  # string -> integer|string
        ("avatarUrl", ["became_nullable", "remap"]),  # may now be null
        ("referredBy", ["became_nullable", "became_optional", "remap"]),
        ("tags", ["kind_changed", "remap"]),  # a scalar becomes a list
        ("loyaltyTier", ["enum_introduced", "remap"]),  # narrower: an enum
    ],
)
def test_a_remap_to_another_type_is_judged_by_the_type_rules(source, kinds):
    old = shape([Rule("user", "displayName", "name")])
    new = shape([Rule("user", source, "name")])
    changes = diff(old, new)
    assert sorted(c.kind for c in changes) == kinds
    expected = "additive" if source == "loyaltyTier" else "breaking"
    assert str(classify(changes)) == expected


def test_changes_in_nested_output_objects_are_found():
    old = shape([Rule("user", "address.city", "place.city")])
    new = shape(
        [Rule("user", "address.city", "place.city"), Rule("user", "address.zip", "place.zip")]
    )
    assert summary(diff(old, new)) == [("field_added", "user.place.zip", "additive")]


# -- types ----------------------------------------------------------------------------------


def test_integer_to_number_is_a_breaking_widening():
    new = shape(endpoint=changed_field("recentOrders", "itemCount", lambda f: number()))
    change = only_change(shape(), new)
    assert (change.kind, change.path, change.compatibility) == (
        "type_widened",
        "recentOrders[].itemCount",
        BREAKING,
    )
    assert change.detail == "type widened from integer to number"


def test_number_to_integer_is_an_additive_narrowing():
    widened = shape(endpoint=changed_field("recentOrders", "itemCount", lambda f: number()))
    change = only_change(widened, shape())
    assert (change.kind, change.compatibility) == ("type_narrowed", ADDITIVE)
    assert change.detail == "type narrowed from number to integer"


def test_a_union_gaining_a_type_is_a_breaking_widening():
    union = Field(Scalar(("string", "integer")))
    new = shape(endpoint=changed_field("user", "userId", lambda f: union))
    change = only_change(shape(), new)
    assert (change.kind, change.compatibility) == ("type_widened", BREAKING)
    assert change.detail == "type widened from string to integer|string"


def test_a_union_losing_a_type_is_an_additive_narrowing():
    union = Field(Scalar(("string", "integer")))
    old = shape(endpoint=changed_field("user", "userId", lambda f: union))
    assert summary(diff(old, shape())) == [("type_narrowed", "user.userId", "additive")]


def test_a_union_of_integer_narrowed_from_number_is_additive():
    old = Field(Scalar(("number", "string")))
    new = Field(Scalar(("integer", "string")))
    before = shape(endpoint=changed_field("user", "userId", lambda f: old))
    after = shape(endpoint=changed_field("user", "userId", lambda f: new))
    assert summary(diff(before, after)) == [("type_narrowed", "user.userId", "additive")]


def test_string_to_integer_is_a_breaking_type_change():
    new = shape(endpoint=changed_field("user", "userId", lambda f: integer()))
    change = only_change(shape(), new)
    assert (change.kind, change.compatibility) == ("type_changed", BREAKING)
    assert change.detail == "type changed from string to integer"


def test_a_changed_item_type_of_a_list_of_scalars_is_found_at_its_items():
    rules = [Rule("user", "tags")]
    new = shape(
        rules, changed_field("user", "tags", lambda f: replace(f, kind=Arr(Scalar("integer"))))
    )
    assert summary(diff(shape(rules), new)) == [("type_changed", "user.tags[]", "breaking")]


def test_a_scalar_becoming_a_list_is_a_breaking_kind_change():
    rules = [Rule("user", "displayName")]
    new = shape(
        rules,
        changed_field("user", "displayName", lambda f: replace(f, kind=Arr(Scalar("string")))),
    )
    change = only_change(shape(rules), new)
    assert (change.kind, change.path, change.compatibility) == (
        "kind_changed",
        "user.displayName",
        BREAKING,
    )
    assert change.detail == "changed from a scalar to a list"


def test_an_output_object_becoming_an_output_list_is_a_breaking_kind_change():
    old = shape([Rule("user", "address.city", "x.value")])
    new = shape([Rule("user", "lineItems[].sku", "x[].value")])
    changes = diff(old, new)
    assert ("kind_changed", "user.x", "breaking") in summary(changes)
    assert classify(changes) is BREAKING


# -- presence and nullability ----------------------------------------------------------------


def test_a_field_that_may_now_be_absent_is_breaking():
    new = shape(
        endpoint=changed_field("user", "displayName", lambda f: replace(f, always_present=False))
    )
    change = only_change(shape(), new)
    assert (change.kind, change.path, change.compatibility) == (
        "became_optional",
        "user.displayName",
        BREAKING,
    )


def test_a_field_that_is_now_always_present_is_additive():
    rules = [Rule("user", "referredBy")]
    new = shape(
        rules, changed_field("user", "referredBy", lambda f: replace(f, always_present=True))
    )
    assert summary(diff(shape(rules), new)) == [("became_required", "user.referredBy", "additive")]


def test_non_nullable_to_nullable_is_breaking():
    new = shape(endpoint=changed_field("user", "displayName", lambda f: replace(f, nullable=True)))
    change = only_change(shape(), new)
    assert (change.kind, change.compatibility) == ("became_nullable", BREAKING)


def test_nullable_to_non_nullable_is_additive():
    new = shape(endpoint=changed_field("user", "avatarUrl", lambda f: replace(f, nullable=False)))
    change = only_change(shape(), new)
    assert (change.kind, change.path, change.compatibility) == (
        "became_non_nullable",
        "user.avatarUrl",
        ADDITIVE,
    )


def test_a_parent_object_becoming_nullable_makes_its_projected_fields_nullable():
    rules = [Rule("user", "lineItems[].sku", "items[].sku")]
    new = shape(rules, changed_field("user", "lineItems", lambda f: replace(f, nullable=True)))
    assert summary(diff(shape(rules), new)) == [("became_nullable", "user.items", "breaking")]


# -- enums ----------------------------------------------------------------------------------


def tier(*values: str, extensible: bool = False):
    return changed_field(
        "user", "loyaltyTier", lambda f: string(enum=values, extensible=extensible)
    )


def test_a_value_added_to_a_closed_enum_is_breaking():
    new = shape(endpoint=tier("bronze", "silver", "gold", "platinum"))
    change = only_change(shape(), new)
    assert (change.kind, change.path, change.compatibility) == (
        "enum_value_added",
        "user.loyaltyTier",
        BREAKING,
    )
    assert change.detail == "'platinum' added to a closed enum"


def test_a_value_added_to_an_extensible_enum_is_additive():
    old = shape(endpoint=tier("bronze", "silver", extensible=True))
    new = shape(endpoint=tier("bronze", "silver", "gold", extensible=True))
    change = only_change(old, new)
    assert (change.kind, change.compatibility) == ("enum_value_added", ADDITIVE)


def test_a_value_added_to_the_extensible_status_of_orders_is_additive():
    new_status = string(enum=("placed", "shipped", "delivered", "returned"), extensible=True)
    new = shape(endpoint=changed_field("recentOrders", "status", lambda f: new_status))
    assert summary(diff(shape(), new)) == [
        ("enum_value_added", "recentOrders[].status", "additive")
    ]


def test_a_value_removed_from_an_enum_is_additive():
    change = only_change(shape(), shape(endpoint=tier("bronze", "gold")))
    assert (change.kind, change.compatibility) == ("enum_value_removed", ADDITIVE)
    assert change.detail == "'silver' removed"


def test_a_closed_enum_becoming_an_open_string_is_breaking():
    new = shape(endpoint=changed_field("user", "loyaltyTier", lambda f: string()))
    change = only_change(shape(), new)
    assert (change.kind, change.compatibility) == ("enum_dropped", BREAKING)


def test_an_extensible_enum_becoming_an_open_string_is_additive():
    old = shape(endpoint=tier("bronze", extensible=True))
    new = shape(endpoint=changed_field("user", "loyaltyTier", lambda f: string()))
    assert summary(diff(old, new)) == [("enum_dropped", "user.loyaltyTier", "additive")]


def test_an_open_string_becoming_an_enum_is_additive():
    old = shape(endpoint=changed_field("user", "loyaltyTier", lambda f: string()))
    change = only_change(old, shape())
    assert (change.kind, change.compatibility) == ("enum_introduced", ADDITIVE)


def test_a_closed_enum_becoming_extensible_is_breaking():
    new = shape(endpoint=tier("bronze", "silver", "gold", extensible=True))
    change = only_change(shape(), new)
    assert (change.kind, change.compatibility) == ("enum_became_extensible", BREAKING)


def test_an_extensible_enum_becoming_closed_is_additive():
    old = shape(endpoint=tier("bronze", "silver", "gold", extensible=True))
    change = only_change(old, shape())
    assert (change.kind, change.compatibility) == ("enum_became_closed", ADDITIVE)


def test_enum_order_alone_is_no_change():
    assert diff(shape(), shape(endpoint=tier("gold", "bronze", "silver"))) == []


# -- envelope -------------------------------------------------------------------------------


def with_meta(change) -> dict:
    new = copy.deepcopy(shape())
    change(new["envelope"]["meta"]["fields"])
    return new


def test_an_envelope_field_added_is_additive():
    new = with_meta(
        lambda f: f.update(region={"type": "string", "nullable": False, "required": True})
    )
    assert summary(diff(shape(), new)) == [("field_added", "meta.region", "additive")]


def test_an_envelope_field_removed_is_breaking():
    new = with_meta(lambda f: f.pop("latencyMs"))
    assert summary(diff(shape(), new)) == [("field_removed", "meta.latencyMs", "breaking")]


def test_a_new_cache_state_in_the_envelope_is_breaking():
    new = with_meta(lambda f: f["cache"]["enum"].append("warm"))
    assert summary(diff(shape(), new)) == [("enum_value_added", "meta.cache", "breaking")]


# -- the list as a whole --------------------------------------------------------------------


def test_identical_shapes_have_no_changes():
    assert diff(shape(), shape()) == []
    assert classify(diff(shape(), shape())) is None


def test_changes_are_sorted_by_path_then_kind():
    old = shape([Rule("user", "displayName", "name"), Rule("user", "avatarUrl", "b")])
    new = shape(
        [Rule("user", "userId", "name"), Rule("user", "tags", "a")],
        changed_field("user", "userId", lambda f: replace(f, nullable=True)),
    )
    changes = diff(old, new)
    assert [(c.path, c.kind) for c in changes] == sorted((c.path, c.kind) for c in changes)
    assert summary(changes) == [
        ("field_added", "user.a", "additive"),
        ("field_removed", "user.b", "breaking"),
        ("became_nullable", "user.name", "breaking"),
        ("remap", "user.name", "additive"),
    ]


def test_a_change_fingerprint_hashes_kind_path_and_the_old_and_new_values():
    change = only_change(shape(), shape(endpoint=tier("bronze", "silver", "gold", "platinum")))
    canonical = json.dumps(
        [
            "enum_value_added",
            "user.loyaltyTier",
            ["bronze", "gold", "silver"],
            ["bronze", "gold", "platinum", "silver"],
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    assert change.fingerprint == hashlib.sha256(canonical.encode()).hexdigest()


def test_identical_changes_have_identical_fingerprints():
    first = diff(shape(), shape(DEFAULT_RULES[1:]))
    second = diff(shape(), shape(DEFAULT_RULES[1:]))
    assert [c.fingerprint for c in first] == [c.fingerprint for c in second]


def test_different_changes_have_different_fingerprints():
    to_platinum = only_change(shape(), shape(endpoint=tier("bronze", "silver", "gold", "platinum")))
    to_diamond = only_change(shape(), shape(endpoint=tier("bronze", "silver", "gold", "diamond")))
    assert to_platinum.fingerprint != to_diamond.fingerprint


def test_classify_is_breaking_when_any_change_is_breaking():
    additive = diff(shape(), shape([*DEFAULT_RULES, Rule("user", "tags")]))
    breaking = diff(shape(), shape(DEFAULT_RULES[1:]))
    assert classify(additive) is ADDITIVE
    assert classify(breaking) is BREAKING
    assert classify([*additive, *breaking]) is BREAKING
    assert classify([]) is None


def test_compatibility_values_are_stable_strings():
    assert [str(c) for c in Compatibility] == ["additive", "breaking"]


def test_shapes_of_different_formats_are_not_compared():
    newer = {**shape(), "format": 2}
    with pytest.raises(ValueError, match="formats 1 and 2"):
        diff(shape(), newer)


# -- properties -----------------------------------------------------------------------------


@given(rule_lists())
def test_a_shape_has_no_changes_against_itself(rules):
    assert diff(shape(rules), shape(rules)) == []


@given(rule_lists(min_size=2), st.data())
def test_only_adding_rules_is_additive(rules, data):
    keep = data.draw(st.integers(0, len(rules) - 1))
    changes = diff(shape(rules[:keep]), shape(rules))
    assert classify(changes) is ADDITIVE
    assert {c.kind for c in changes} == {"field_added"}


@given(rule_lists(min_size=2), st.data())
def test_only_removing_rules_is_breaking(rules, data):
    keep = data.draw(st.integers(0, len(rules) - 1))
    changes = diff(shape(rules), shape(rules[:keep]))
    assert classify(changes) is BREAKING
    assert {c.kind for c in changes} == {"field_removed"}


def test_a_source_schema_unrelated_to_the_rules_changes_nothing():
    endpoint = changed_field("user", "fraudScore", lambda f: replace(f, nullable=True))
    assert diff(shape(), shape(endpoint=endpoint)) == []


def test_a_section_added_with_its_own_source_is_one_change():
    extra = Section("banner", "object", obj(text=string()), "content")
    new = shape(endpoint=replace(HOME, sections=(*HOME.sections, extra)))
    assert summary(diff(shape(), new)) == [("section_added", "sections.banner", "additive")]
