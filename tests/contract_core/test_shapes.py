"""Tests of the canonical shape of a version, its fingerprint and its JSON Schema."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract_core.paths import RuleError, leaf_paths
from contract_core.schema import (
    Arr,
    EndpointSpec,
    Field,
    Obj,
    Rule,
    Scalar,
    Section,
    integer,
    list_of,
    nested,
    number,
    obj,
    string,
)
from contract_core.shapes import (
    CACHE_STATES,
    JSON_SCHEMA_DIALECT,
    build_shape,
    canonical_json,
    fingerprint,
    to_json_schema,
)

# The schemas the differ's and projection's tests build on too: a user-like object with a
# nested nullable address, a nullable field, a closed enum, a list of objects and a list
# of strings; orders as a list section with an extensible enum.
ADDRESS = obj(city=string(), zip=string(always_present=False))
USER = obj(
    userId=string(),
    displayName=string(),
    avatarUrl=string(nullable=True),
    loyaltyTier=string(enum=("bronze", "silver", "gold")),
    address=nested(ADDRESS, nullable=True),
    tags=list_of(Scalar("string")),
    lineItems=list_of(obj(sku=string(), quantity=integer())),
    referredBy=string(nullable=True, always_present=False),
    balance=Field(Scalar(("string", "integer"))),
    fraudScore=number(),
)
ORDER = obj(
    orderId=string(),
    status=string(enum=("placed", "shipped", "delivered"), extensible=True),
    estimatedDelivery=string(nullable=True),
    itemCount=integer(),
    internalNotes=string(),
)
HOME = EndpointSpec(
    "mobile",
    "home",
    (
        Section("user", "object", USER, "user"),
        Section("recentOrders", "list", ORDER, "orders"),
        Section("recommendations", "list", obj(productId=string()), "recommendations"),
    ),
)
DEFAULT_RULES = [
    Rule("user", "userId"),
    Rule("user", "displayName"),
    Rule("user", "avatarUrl"),
    Rule("user", "loyaltyTier"),
    Rule("recentOrders", "orderId"),
    Rule("recentOrders", "status"),
    Rule("recentOrders", "estimatedDelivery"),
    Rule("recentOrders", "itemCount"),
]


def with_field(source: Obj, path: str, change) -> Obj:
    """``source`` with the field at the dotted ``path`` (brackets allowed) replaced."""
    name, _, rest = path.replace("[]", "").partition(".")
    fields = []
    for key, declared in source.fields:
        if key == name:
            if not rest:
                declared = change(declared)
            elif isinstance(declared.kind, Arr):
                declared = replace(
                    declared, kind=Arr(with_field(declared.kind.items, rest, change))
                )
            else:
                declared = replace(declared, kind=with_field(declared.kind, rest, change))
        fields.append((key, declared))
    return Obj(tuple(fields))


def with_source(endpoint: EndpointSpec, section: str, change) -> EndpointSpec:
    """``endpoint`` with one section's source schema passed through ``change``."""
    sections = tuple(
        replace(s, source=change(s.source)) if s.name == section else s for s in endpoint.sections
    )
    return replace(endpoint, sections=sections)


def candidate_rules() -> list[Rule]:
    return [Rule("user", path) for path, _ in leaf_paths(USER)] + [
        Rule("recentOrders", path) for path, _ in leaf_paths(ORDER)
    ]


@st.composite
def rule_lists(draw, min_size: int = 0) -> list[Rule]:
    """A valid list of rules over HOME: any subset of its leaves, some renamed."""
    chosen = draw(
        st.lists(st.sampled_from(candidate_rules()), unique=True, min_size=min_size, max_size=12)
    )
    rules = []
    for number_, rule in enumerate(chosen):
        if draw(st.booleans()):
            # Keep the list prefix so the output keeps the source's list structure.
            prefix = rule.source.rpartition("[].")[0]
            output = f"{prefix}[].o{number_}" if prefix else f"o{number_}"
            rule = replace(rule, output=output)
        rules.append(rule)
    return draw(st.permutations(rules))


def test_the_default_mobile_home_whitelist_has_this_shape():
    shape = build_shape(HOME, DEFAULT_RULES)
    assert shape["format"] == 1
    assert (shape["client"], shape["endpoint"]) == ("mobile", "home")
    assert shape["sections"] == {
        "user": {
            "kind": "object",
            "nullable": False,
            "dependency": "user",
            "fields": {
                "avatarUrl": {
                    "type": "string",
                    "nullable": True,
                    "required": True,
                    "source": "avatarUrl",
                },
                "displayName": {
                    "type": "string",
                    "nullable": False,
                    "required": True,
                    "source": "displayName",
                },
                "loyaltyTier": {
                    "type": "string",
                    "enum": ["bronze", "gold", "silver"],
                    "extensible": False,
                    "nullable": False,
                    "required": True,
                    "source": "loyaltyTier",
                },
                "userId": {
                    "type": "string",
                    "nullable": False,
                    "required": True,
                    "source": "userId",
                },
            },
        },
        "recentOrders": {
            "kind": "list",
            "nullable": False,
            "dependency": "orders",
            "fields": {
                "estimatedDelivery": {
                    "type": "string",
                    "nullable": True,
                    "required": True,
                    "source": "estimatedDelivery",
                },
                "itemCount": {
                    "type": "integer",
                    "nullable": False,
                    "required": True,
                    "source": "itemCount",
                },
                "orderId": {
                    "type": "string",
                    "nullable": False,
                    "required": True,
                    "source": "orderId",
                },
                "status": {
                    "type": "string",
                    "enum": ["delivered", "placed", "shipped"],
                    "extensible": True,
                    "nullable": False,
                    "required": True,
                    "source": "status",
                },
            },
        },
        "recommendations": {
            "kind": "list",
            "nullable": False,
            "dependency": "recommendations",
            "fields": {},
        },
    }


def test_the_envelope_describes_meta():
    meta = build_shape(HOME, [])["envelope"]["meta"]
    assert (meta["type"], meta["nullable"], meta["required"]) == ("object", False, True)
    fields = meta["fields"]
    assert sorted(fields) == [
        "cache",
        "degraded",
        "degradedDependencies",
        "generatedAt",
        "latencyMs",
        "schemaVersion",
        "traceId",
    ]
    assert fields["latencyMs"] == {"type": "integer", "nullable": False, "required": True}
    assert fields["degradedDependencies"]["items"] == {"type": "string"}
    assert fields["cache"]["enum"] == sorted(CACHE_STATES)
    assert fields["cache"]["extensible"] is False
    assert all("source" not in described for described in fields.values())


def test_sections_without_rules_appear_with_no_fields():
    shape = build_shape(HOME, [])
    assert [s["fields"] for s in shape["sections"].values()] == [{}, {}, {}]


def test_a_rename_keys_the_field_by_its_output_and_keeps_the_source():
    shape = build_shape(HOME, [Rule("user", "avatarUrl", "profileImageUrl")])
    fields = shape["sections"]["user"]["fields"]
    assert list(fields) == ["profileImageUrl"]
    assert fields["profileImageUrl"]["source"] == "avatarUrl"


def test_a_field_under_a_nullable_object_is_nullable():
    shape = build_shape(HOME, [Rule("user", "address.city", "city")])
    assert shape["sections"]["user"]["fields"]["city"]["nullable"] is True


def test_a_field_that_may_be_absent_is_not_required():
    shape = build_shape(HOME, [Rule("user", "referredBy")])
    described = shape["sections"]["user"]["fields"]["referredBy"]
    assert (described["nullable"], described["required"]) == (True, False)


def test_a_union_type_is_a_sorted_list():
    shape = build_shape(HOME, [Rule("user", "balance")])
    assert shape["sections"]["user"]["fields"]["balance"]["type"] == ["integer", "string"]


def test_a_list_of_scalars_describes_its_items():
    shape = build_shape(HOME, [Rule("user", "tags")])
    assert shape["sections"]["user"]["fields"]["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "nullable": False,
        "required": True,
        "source": "tags",
    }


def test_a_dotted_output_is_a_nested_object_that_is_always_there():
    shape = build_shape(HOME, [Rule("user", "address.city"), Rule("user", "address.zip")])
    assert shape["sections"]["user"]["fields"]["address"] == {
        "type": "object",
        "nullable": False,
        "required": True,
        "fields": {
            "city": {
                "type": "string",
                "nullable": True,
                "required": True,
                "source": "address.city",
            },
            "zip": {"type": "string", "nullable": True, "required": False, "source": "address.zip"},
        },
    }


def test_a_bracketed_output_is_a_list_of_objects_with_its_source_list():
    rules = [
        Rule("user", "lineItems[].sku", "items[].sku"),
        Rule("user", "lineItems[].quantity", "items[].count"),
    ]
    shape = build_shape(HOME, rules)
    assert shape["sections"]["user"]["fields"]["items"] == {
        "type": "array",
        "nullable": False,
        "required": True,
        "source": "lineItems",
        "items": {
            "type": "object",
            "fields": {
                "count": {
                    "type": "integer",
                    "nullable": False,
                    "required": True,
                    "source": "lineItems[].quantity",
                },
                "sku": {
                    "type": "string",
                    "nullable": False,
                    "required": True,
                    "source": "lineItems[].sku",
                },
            },
        },
    }


def test_enum_values_are_sorted_and_deduplicated():
    endpoint = with_source(
        HOME, "user", lambda s: with_field(s, "loyaltyTier", lambda f: string(enum=("b", "a", "b")))
    )
    shape = build_shape(endpoint, [Rule("user", "loyaltyTier")])
    assert shape["sections"]["user"]["fields"]["loyaltyTier"]["enum"] == ["a", "b"]


def test_a_nullable_section_says_so():
    endpoint = replace(HOME, sections=(Section("user", "object", USER, "user", nullable=True),))
    assert build_shape(endpoint, [])["sections"]["user"]["nullable"] is True


def test_the_shape_is_plain_json():
    shape = build_shape(HOME, [*DEFAULT_RULES, Rule("user", "lineItems[].sku")])
    assert json.loads(json.dumps(shape)) == shape


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (Rule("profile", "userId"), "has no section 'profile'"),
        (Rule("user", "avatarURL"), "user has no field 'avatarURL' (did you mean 'avatarUrl'?)"),
        (Rule("user", "address"), "'address' is an object: pick one of its fields"),
        (Rule("user", "userId", "user id"), "user: output name 'user id' is not valid"),
        (Rule("user", "lineItems[].sku", "sku"), "an output keeps the source's list structure"),
    ],
)
def test_build_shape_refuses_an_invalid_rule(rule, message):
    with pytest.raises(RuleError) as caught:
        build_shape(HOME, [rule])
    assert message in str(caught.value)


def test_build_shape_refuses_colliding_outputs():
    with pytest.raises(RuleError, match="collides"):
        build_shape(HOME, [Rule("user", "userId", "a"), Rule("user", "displayName", "a.b")])


# -- fingerprint ----------------------------------------------------------------------------


def test_the_fingerprint_is_the_sha256_of_sorted_compact_ascii_json():
    shape = {"b": [1, {"d": True, "c": None}], "a": "é"}
    expected = hashlib.sha256(b'{"a":"\\u00e9","b":[1,{"c":null,"d":true}]}').hexdigest()
    assert canonical_json(shape) == b'{"a":"\\u00e9","b":[1,{"c":null,"d":true}]}'
    assert fingerprint(shape) == expected


PINNED_DEFAULT_FINGERPRINT = "e9d7d3b26ca219c81c40a919021ca1fd0b9d22e7e5dd2fd367810c2e384083f1"


def test_the_fingerprint_of_a_shape_is_pinned():
    # A changed digest here means every stored version stops matching its code: that is a
    # format change and needs a new FORMAT, not a quiet update of this constant.
    shape = build_shape(HOME, DEFAULT_RULES)
    assert fingerprint(shape) == fingerprint(json.loads(json.dumps(shape)))
    assert fingerprint(shape) == PINNED_DEFAULT_FINGERPRINT


def test_the_fingerprint_is_64_hex_digits():
    digest = fingerprint(build_shape(HOME, []))
    assert re.fullmatch("[0-9a-f]{64}", digest), digest


@given(rule_lists(), st.randoms(use_true_random=False))
def test_the_fingerprint_does_not_depend_on_rule_order(rules, random):
    shuffled = list(rules)
    random.shuffle(shuffled)
    assert fingerprint(build_shape(HOME, shuffled)) == fingerprint(build_shape(HOME, rules))


def _flip_nullable(declared: Field) -> Field:
    return replace(declared, nullable=not declared.nullable)


def _change_type(declared: Field) -> Field:
    kind = declared.kind
    scalar = kind.items if isinstance(kind, Arr) else kind
    other = Scalar("boolean") if scalar.types != ("boolean",) else Scalar("string")
    return replace(declared, kind=Arr(other) if isinstance(kind, Arr) else other)


@given(rule_lists(min_size=1), st.data())
def test_any_single_change_changes_the_fingerprint(rules, data):
    before = fingerprint(build_shape(HOME, rules))
    index = data.draw(st.integers(0, len(rules) - 1))
    rule = rules[index]
    change = data.draw(st.sampled_from(["drop", "rename", "nullability", "type", "remap"]))
    endpoint = HOME
    changed = list(rules)
    if change == "drop":
        del changed[index]
    elif change == "rename":
        prefix = rule.output_path.rpartition(".")[0]
        changed[index] = replace(rule, output=f"{prefix}.renamed" if prefix else "renamed")
    elif change == "nullability":
        # The rule's top-level source field: flipping it flips the effective nullability
        # of every leaf below it, since none of them is nullable on its own.
        top = rule.source.split(".")[0].removesuffix("[]")
        endpoint = with_source(HOME, rule.section, lambda s: with_field(s, top, _flip_nullable))
    elif change == "type":
        endpoint = with_source(
            HOME, rule.section, lambda s: with_field(s, rule.source, _change_type)
        )
    else:
        used = {r.source for r in rules if r.section == rule.section}
        pool = [
            path
            for path, _ in leaf_paths(endpoint.section(rule.section).source)
            if path not in used
            and path.count("[]") == rule.source.count("[]")
            and path.rpartition("[].")[0] == rule.source.rpartition("[].")[0]
        ]
        if not pool:
            return
        changed[index] = replace(
            rule, source=data.draw(st.sampled_from(pool)), output=rule.output_path
        )
    assert fingerprint(build_shape(endpoint, changed)) != before


def test_remapping_an_output_to_another_source_changes_the_fingerprint():
    before = build_shape(HOME, [Rule("user", "displayName", "name")])
    after = build_shape(HOME, [Rule("user", "userId", "name")])
    assert fingerprint(before) != fingerprint(after)


# -- JSON Schema ----------------------------------------------------------------------------


def schema_of(rules, endpoint=HOME) -> dict:
    """The closed variant, which the project's own tests validate bodies against."""
    return to_json_schema(
        build_shape(endpoint, rules), title="mobile home", version="1.3", closed=True
    )


def test_the_published_schema_is_open_to_added_properties_and_says_so():
    schema = to_json_schema(build_shape(HOME, DEFAULT_RULES), title="mobile home", version="1.3")
    assert "additionalProperties" not in orjson.dumps(schema).decode()
    assert "added properties" in schema["description"]
    user = schema["properties"]["user"]
    assert user["required"] == ["avatarUrl", "displayName", "loyaltyTier", "userId"]


def test_the_json_schema_is_draft_2020_12_with_title_version_and_fingerprint():
    shape = build_shape(HOME, DEFAULT_RULES)
    schema = to_json_schema(shape, title="mobile home", version="1.3")
    assert (
        schema["$schema"] == JSON_SCHEMA_DIALECT == "https://json-schema.org/draft/2020-12/schema"
    )
    assert "$id" not in schema
    assert schema["title"] == "mobile home"
    assert schema["x-schema-version"] == "1.3"
    assert schema["x-fingerprint"] == fingerprint(shape)


def test_the_body_requires_meta_and_every_section_and_nothing_else():
    schema = schema_of(DEFAULT_RULES)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["meta", "recentOrders", "recommendations", "user"]


def test_a_projected_object_allows_only_its_fields():
    user = schema_of(DEFAULT_RULES)["properties"]["user"]
    assert user["type"] == "object"
    assert user["additionalProperties"] is False
    assert user["required"] == ["avatarUrl", "displayName", "loyaltyTier", "userId"]
    assert set(user["properties"]) == {"avatarUrl", "displayName", "loyaltyTier", "userId"}


def test_nullability_is_a_type_union_with_null():
    user = schema_of(DEFAULT_RULES)["properties"]["user"]
    assert user["properties"]["avatarUrl"]["type"] == ["string", "null"]
    assert user["properties"]["userId"]["type"] == "string"


def test_a_closed_enum_is_an_enum_and_a_nullable_one_admits_null():
    endpoint = with_source(
        HOME, "user", lambda s: with_field(s, "loyaltyTier", lambda f: replace(f, nullable=True))
    )
    tier = schema_of([Rule("user", "loyaltyTier")], endpoint)["properties"]["user"]["properties"][
        "loyaltyTier"
    ]
    assert tier["type"] == ["string", "null"]
    assert tier["enum"] == ["bronze", "gold", "silver", None]


def test_an_extensible_enum_documents_its_values_without_constraining_them():
    orders = schema_of(DEFAULT_RULES)["properties"]["recentOrders"]
    status = orders["items"]["properties"]["status"]
    assert "enum" not in status
    assert status["x-known-values"] == ["delivered", "placed", "shipped"]


def test_a_list_section_is_an_array_of_closed_objects():
    orders = schema_of(DEFAULT_RULES)["properties"]["recentOrders"]
    assert orders["type"] == "array"
    assert orders["items"]["additionalProperties"] is False
    assert orders["items"]["required"] == ["estimatedDelivery", "itemCount", "orderId", "status"]


def test_an_optional_field_is_not_required():
    user = schema_of([Rule("user", "referredBy"), Rule("user", "userId")])["properties"]["user"]
    assert user["required"] == ["userId"]
    assert user["properties"]["referredBy"]["type"] == ["string", "null"]


def test_nested_outputs_and_lists_are_closed_objects_too():
    rules = [Rule("user", "address.city"), Rule("user", "lineItems[].sku", "items[].sku")]
    user = schema_of(rules)["properties"]["user"]["properties"]
    assert user["address"]["additionalProperties"] is False
    assert user["address"]["properties"]["city"]["type"] == ["string", "null"]
    assert user["items"]["type"] == "array"
    assert user["items"]["items"]["additionalProperties"] is False
    assert user["items"]["items"]["required"] == ["sku"]


def test_unions_and_arrays_of_scalars_are_exported():
    user = schema_of([Rule("user", "balance"), Rule("user", "tags")])["properties"]["user"]
    assert user["properties"]["balance"]["type"] == ["integer", "string"]
    assert user["properties"]["tags"]["type"] == "array"
    assert user["properties"]["tags"]["items"] == {"type": "string"}


def test_a_nullable_section_admits_null():
    endpoint = replace(HOME, sections=(Section("user", "object", USER, "user", nullable=True),))
    assert schema_of([], endpoint)["properties"]["user"]["type"] == ["object", "null"]


def test_the_meta_schema_is_closed_with_its_cache_enum():
    meta = schema_of([])["properties"]["meta"]
    assert meta["additionalProperties"] is False
    assert meta["properties"]["cache"]["enum"] == sorted(CACHE_STATES)
    assert meta["properties"]["degradedDependencies"] == {
        "type": "array",
        "items": {"type": "string"},
    }


def _unmarked(source):
    """The same source schema with every internal/personal marker removed."""
    from contract_core.schema import Arr, Obj

    def strip(kind):
        if isinstance(kind, Obj):
            return Obj(
                tuple((n, replace(f, kind=strip(f.kind), sensitivity="")) for n, f in kind.fields)
            )
        if isinstance(kind, Arr):
            return Arr(strip(kind.items))
        return kind

    return strip(source)


def test_marking_fields_internal_or_personal_leaves_every_fingerprint_unchanged() -> None:
    from aggregation.endpoints import ENDPOINTS
    from contracts.demo import ENDPOINTS as DEMO

    for demo in DEMO:
        spec = ENDPOINTS[(demo.client, demo.name)]
        unmarked = replace(
            spec, sections=tuple(replace(s, source=_unmarked(s.source)) for s in spec.sections)
        )
        # Internal and personal fields included: the marker must not reach the shape.
        rules = [
            *demo.rules,
            *(Rule(s.name, p) for s in spec.sections for p, _ in leaf_paths(s.source)[:40]),
        ]
        rules = list({(r.section, r.output_path): r for r in rules}.values())
        assert fingerprint(build_shape(spec, rules)) == fingerprint(build_shape(unmarked, rules))
