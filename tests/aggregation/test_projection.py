"""Tests of projecting payloads through a compiled whitelist, and of the drift it reports."""

from __future__ import annotations

import json
import logging
from dataclasses import FrozenInstanceError
from enum import StrEnum
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract_core.paths import RuleError
from contract_core.projection import Drift, DriftLog, ProjectionPlan, compile_plan
from contract_core.schema import (
    Arr,
    EndpointSpec,
    Field,
    Obj,
    Rule,
    Scalar,
    Section,
    boolean,
    integer,
    list_of,
    nested,
    number,
    obj,
    string,
)
from contract_core.shapes import build_shape, to_json_schema

USER = obj(
    userId=string(),
    displayName=string(),
    avatarUrl=string(nullable=True),
    loyaltyTier=string(enum=("bronze", "silver", "gold")),
    address=nested(obj(city=string(), zip=string(always_present=False)), nullable=True),
    settings=nested(obj(theme=string()), always_present=False),
    profile=nested(obj(bio=string(), links=nested(obj(home=string())))),
    tags=list_of(Scalar("string")),
    lineItems=list_of(obj(sku=string(), quantity=integer())),
    orders=list_of(
        obj(orderId=string(), items=list_of(obj(sku=string()), always_present=False)),
        nullable=True,
    ),
    referredBy=string(nullable=True, always_present=False),
    balance=Field(Scalar(("string", "integer"))),
    rating=number(),
    verified=boolean(),
    fraudScore=number(),
)
ORDER = obj(
    orderId=string(),
    status=string(enum=("placed", "shipped"), extensible=True),
    itemCount=integer(),
    internalNotes=string(),
)
HOME = EndpointSpec(
    "mobile",
    "home",
    (
        Section("user", "object", USER, "user"),
        Section("recentOrders", "list", ORDER, "orders"),
        Section("banner", "object", obj(text=string()), "content", nullable=True),
        Section("recommendations", "list", obj(productId=string()), "recs", nullable=True),
    ),
)
USER_PAYLOAD = {
    "userId": "u-1",
    "displayName": "Ada",
    "avatarUrl": "https://img/ada.png",
    "loyaltyTier": "gold",
    "address": {"city": "Lyon", "zip": "69001"},
    "settings": {"theme": "dark"},
    "profile": {"bio": "hi", "links": {"home": "https://ada.example"}},
    "tags": ["a", "b"],
    "lineItems": [{"sku": "S1", "quantity": 2}, {"sku": "S2", "quantity": 1}],
    "orders": [{"orderId": "o1", "items": [{"sku": "S1"}]}],
    "referredBy": None,
    "balance": 10,
    "rating": 4.5,
    "verified": True,
    "fraudScore": 0.97,
}


def plan_for(*rules: Rule) -> ProjectionPlan:
    return compile_plan(HOME, rules)


def project_user(payload: object, *rules: Rule) -> tuple[object, list[Drift]]:
    return plan_for(*rules).project("user", payload)


def user_rule(source: str, output: str = "") -> Rule:
    return Rule("user", source, output)


# -- the whitelist --------------------------------------------------------------------------


def test_only_whitelisted_fields_leave():
    result, drifts = project_user(USER_PAYLOAD, user_rule("userId"), user_rule("displayName"))
    assert result == {"userId": "u-1", "displayName": "Ada"}
    assert drifts == []


def test_a_field_that_is_not_whitelisted_never_leaves_even_when_present():
    result, _ = project_user(USER_PAYLOAD, user_rule("userId"))
    assert "fraudScore" not in json.dumps(result)


def test_a_rename_writes_the_output_name():
    result, _ = project_user(USER_PAYLOAD, user_rule("avatarUrl", "profileImageUrl"))
    assert result == {"profileImageUrl": "https://img/ada.png"}


def test_output_keys_follow_the_order_rules_were_given_in():
    result, _ = project_user(USER_PAYLOAD, user_rule("verified"), user_rule("userId"))
    assert list(result) == ["verified", "userId"]


def test_a_dotted_source_is_read_from_the_nested_object():
    result, _ = project_user(USER_PAYLOAD, user_rule("address.city", "city"))
    assert result == {"city": "Lyon"}


def test_a_dotted_output_builds_a_nested_object():
    result, _ = project_user(
        USER_PAYLOAD, user_rule("displayName", "who.name"), user_rule("address.city", "who.city")
    )
    assert result == {"who": {"name": "Ada", "city": "Lyon"}}


def test_a_deeply_nested_source_is_read():
    result, drifts = project_user(USER_PAYLOAD, user_rule("profile.links.home", "home"))
    assert result == {"home": "https://ada.example"}
    assert drifts == []


def test_a_list_of_objects_is_projected_item_by_item():
    result, _ = project_user(
        USER_PAYLOAD,
        user_rule("lineItems[].sku", "items[].code"),
        user_rule("lineItems[].quantity", "items[].qty"),
    )
    assert result == {"items": [{"code": "S1", "qty": 2}, {"code": "S2", "qty": 1}]}


def test_nested_lists_are_projected_at_every_level():
    result, drifts = project_user(
        USER_PAYLOAD,
        user_rule("orders[].orderId"),
        user_rule("orders[].items[].sku", "orders[].lines[].sku"),
    )
    assert result == {"orders": [{"orderId": "o1", "lines": [{"sku": "S1"}]}]}
    assert drifts == []


def test_a_list_of_scalars_is_copied():
    payload = dict(USER_PAYLOAD)
    result, _ = project_user(payload, user_rule("tags"))
    assert result == {"tags": ["a", "b"]}
    assert result["tags"] is not payload["tags"]


def test_projection_does_not_modify_the_payload():
    payload = json.loads(json.dumps(USER_PAYLOAD))
    project_user(
        payload, user_rule("tags"), user_rule("lineItems[].sku"), user_rule("address.city")
    )
    assert payload == USER_PAYLOAD


def test_a_list_section_projects_each_item():
    plan = plan_for(Rule("recentOrders", "orderId", "id"), Rule("recentOrders", "status"))
    payload = [
        {"orderId": "o1", "status": "placed", "internalNotes": "x"},
        {"orderId": "o2", "status": "shipped", "internalNotes": "y"},
    ]
    assert plan.project("recentOrders", payload) == (
        [{"id": "o1", "status": "placed"}, {"id": "o2", "status": "shipped"}],
        [],
    )


def test_a_section_without_rules_projects_to_an_empty_object():
    assert project_user(USER_PAYLOAD) == ({}, [])


# -- types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("userId", "u-2"),
        ("rating", 4),
        ("rating", 4.5),
        ("verified", False),
        ("balance", "ten"),
        ("balance", 10),
        ("loyaltyTier", "silver"),
    ],
)
def test_a_value_of_the_declared_type_passes(source, value):
    result, drifts = project_user({**USER_PAYLOAD, source: value}, user_rule(source))
    assert result == {source: value}
    assert drifts == []


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("userId", 7),
        ("rating", True),
        ("rating", "4.5"),
        ("verified", 1),
        ("balance", 1.5),
        ("balance", False),
        ("userId", {"id": "u"}),
        ("userId", ["u"]),
    ],
)
def test_a_value_of_the_wrong_type_becomes_null_with_a_drift(source, value):
    result, drifts = project_user({**USER_PAYLOAD, source: value}, user_rule(source))
    assert result == {source: None}
    assert drifts == [Drift("user", source, "wrong_type")]


def test_a_bool_is_not_an_integer():
    plan = plan_for(Rule("recentOrders", "itemCount"))
    result, drifts = plan.project("recentOrders", [{"itemCount": True}])
    assert result == [{"itemCount": None}]
    assert drifts == [Drift("recentOrders", "itemCount", "wrong_type")]


def test_a_float_is_not_an_integer():
    plan = plan_for(Rule("recentOrders", "itemCount"))
    assert plan.project("recentOrders", [{"itemCount": 2.0}])[1] == [
        Drift("recentOrders", "itemCount", "wrong_type")
    ]


def test_a_subclass_of_str_is_a_string():
    class Tier(StrEnum):
        GOLD = "gold"

    result, drifts = project_user(
        {**USER_PAYLOAD, "loyaltyTier": Tier.GOLD}, user_rule("loyaltyTier")
    )
    assert result == {"loyaltyTier": "gold"}
    assert drifts == []


def test_a_value_outside_a_closed_enum_becomes_null_with_a_drift():
    result, drifts = project_user(
        {**USER_PAYLOAD, "loyaltyTier": "platinum"}, user_rule("loyaltyTier")
    )
    assert result == {"loyaltyTier": None}
    assert drifts == [Drift("user", "loyaltyTier", "not_in_enum")]


def test_a_value_outside_an_extensible_enum_passes():
    plan = plan_for(Rule("recentOrders", "status"))
    assert plan.project("recentOrders", [{"status": "returned"}]) == ([{"status": "returned"}], [])


def test_items_of_the_wrong_type_are_dropped_from_a_list_of_scalars():
    result, drifts = project_user({**USER_PAYLOAD, "tags": ["a", 1, None, "b"]}, user_rule("tags"))
    assert result == {"tags": ["a", "b"]}
    assert drifts == [Drift("user", "tags[]", "wrong_type")]


def test_a_list_of_scalars_that_is_not_a_list_becomes_null_with_a_drift():
    result, drifts = project_user({**USER_PAYLOAD, "tags": "a,b"}, user_rule("tags"))
    assert result == {"tags": None}
    assert drifts == [Drift("user", "tags", "not_a_list")]


# -- missing and null -----------------------------------------------------------------------


def without(payload: dict, *keys: str) -> dict:
    return {key: value for key, value in payload.items() if key not in keys}


def test_a_missing_required_field_is_null_with_a_drift():
    result, drifts = project_user(without(USER_PAYLOAD, "displayName"), user_rule("displayName"))
    assert result == {"displayName": None}
    assert drifts == [Drift("user", "displayName", "missing")]


def test_a_missing_optional_field_is_left_out_without_drift():
    result, drifts = project_user(without(USER_PAYLOAD, "referredBy"), user_rule("referredBy"))
    assert result == {}
    assert drifts == []


def test_null_in_a_nullable_field_passes():
    assert project_user(USER_PAYLOAD, user_rule("referredBy")) == ({"referredBy": None}, [])


def test_null_in_a_non_nullable_field_is_a_drift():
    result, drifts = project_user({**USER_PAYLOAD, "userId": None}, user_rule("userId"))
    assert result == {"userId": None}
    assert drifts == [Drift("user", "userId", "null")]


def test_a_null_nullable_parent_makes_its_fields_null_without_drift():
    result, drifts = project_user({**USER_PAYLOAD, "address": None}, user_rule("address.city"))
    assert result == {"address": {"city": None}}
    assert drifts == []


def test_a_missing_optional_parent_leaves_its_fields_out_without_drift():
    result, drifts = project_user(without(USER_PAYLOAD, "settings"), user_rule("settings.theme"))
    assert result == {"settings": {}}
    assert drifts == []


def test_a_missing_optional_field_inside_a_present_parent_is_left_out():
    payload = {**USER_PAYLOAD, "address": {"city": "Lyon"}}
    assert project_user(payload, user_rule("address.zip", "zip")) == ({}, [])


def test_a_missing_required_parent_is_one_drift_at_the_parent():
    result, drifts = project_user(
        without(USER_PAYLOAD, "profile"),
        user_rule("profile.bio", "bio"),
        user_rule("profile.links.home", "home"),
    )
    assert result == {"bio": None, "home": None}
    assert drifts == [Drift("user", "profile", "missing")]


def test_a_null_non_nullable_parent_is_a_null_drift():
    result, drifts = project_user(
        {**USER_PAYLOAD, "profile": None}, user_rule("profile.bio", "bio")
    )
    assert result == {"bio": None}
    assert drifts == [Drift("user", "profile", "null")]


def test_a_parent_that_is_not_an_object_is_a_drift():
    payload = {**USER_PAYLOAD, "profile": {"bio": "x", "links": "https://x"}}
    result, drifts = project_user(payload, user_rule("profile.links.home", "home"))
    assert result == {"home": None}
    assert drifts == [Drift("user", "profile.links", "not_an_object")]


# -- lists ----------------------------------------------------------------------------------


def test_items_that_are_not_objects_are_skipped_with_a_drift():
    payload = {**USER_PAYLOAD, "lineItems": [{"sku": "S1", "quantity": 1}, "S2", None]}
    result, drifts = project_user(payload, user_rule("lineItems[].sku"))
    assert result == {"lineItems": [{"sku": "S1"}]}
    assert drifts == [Drift("user", "lineItems[]", "not_an_object")]


def test_a_drift_inside_list_items_is_reported_once_per_path():
    payload = {**USER_PAYLOAD, "lineItems": [{"sku": 1}, {"sku": 2}, {"sku": "S3"}]}
    result, drifts = project_user(payload, user_rule("lineItems[].sku"))
    assert result == {"lineItems": [{"sku": None}, {"sku": None}, {"sku": "S3"}]}
    assert drifts == [Drift("user", "lineItems[].sku", "wrong_type")]


def test_a_null_nullable_source_list_is_null():
    result, drifts = project_user({**USER_PAYLOAD, "orders": None}, user_rule("orders[].orderId"))
    assert result == {"orders": None}
    assert drifts == []


def test_a_missing_required_source_list_is_null_with_a_drift():
    result, drifts = project_user(without(USER_PAYLOAD, "lineItems"), user_rule("lineItems[].sku"))
    assert result == {"lineItems": None}
    assert drifts == [Drift("user", "lineItems", "missing")]


def test_a_missing_optional_nested_list_is_left_out():
    payload = {**USER_PAYLOAD, "orders": [{"orderId": "o1"}]}
    result, drifts = project_user(payload, user_rule("orders[].items[].sku"))
    assert result == {"orders": [{}]}
    assert drifts == []


def test_a_source_list_that_is_not_a_list_is_null_with_a_drift():
    result, drifts = project_user(
        {**USER_PAYLOAD, "lineItems": {"sku": "S1"}}, user_rule("lineItems[].sku")
    )
    assert result == {"lineItems": None}
    assert drifts == [Drift("user", "lineItems", "not_a_list")]


# -- the section's payload ------------------------------------------------------------------


@pytest.mark.parametrize("payload", [[], "user", 3, True])
def test_an_object_section_that_is_not_an_object_is_null_with_a_drift(payload):
    assert project_user(payload, user_rule("userId")) == (
        None,
        [Drift("user", "", "not_an_object")],
    )


def test_a_null_object_section_is_a_drift_unless_the_section_is_nullable():
    assert project_user(None, user_rule("userId")) == (None, [Drift("user", "", "null")])
    plan = plan_for(Rule("banner", "text"))
    assert plan.project("banner", None) == (None, [])


@pytest.mark.parametrize("payload", [{}, "orders", 3, None])
def test_a_list_section_that_is_not_a_list_is_empty_with_a_drift(payload):
    plan = plan_for(Rule("recentOrders", "orderId"))
    assert plan.project("recentOrders", payload) == ([], [Drift("recentOrders", "", "not_a_list")])


def test_a_null_nullable_list_section_is_null():
    assert plan_for().project("recommendations", None) == (None, [])


def test_items_of_a_list_section_that_are_not_objects_are_skipped():
    plan = plan_for(Rule("recentOrders", "orderId"))
    result, drifts = plan.project("recentOrders", [{"orderId": "o1"}, "o2", [], {"orderId": "o3"}])
    assert result == [{"orderId": "o1"}, {"orderId": "o3"}]
    assert drifts == [Drift("recentOrders", "[]", "not_an_object")]


def test_an_unknown_section_is_a_key_error():
    with pytest.raises(KeyError):
        plan_for().project("profile", {})


# -- the plan -------------------------------------------------------------------------------


def test_a_plan_knows_its_sections_in_endpoint_order():
    plan = plan_for()
    assert plan.sections == ("user", "recentOrders", "banner", "recommendations")
    assert (plan.client, plan.endpoint) == ("mobile", "home")


def test_project_all_projects_every_section_and_gathers_drifts():
    plan = plan_for(user_rule("userId"), Rule("recentOrders", "orderId"), Rule("banner", "text"))
    projected, drifts = plan.project_all(
        {"user": {"userId": 5}, "recentOrders": [{"orderId": "o1"}], "banner": {"text": "hi"}}
    )
    assert projected == {
        "user": {"userId": None},
        "recentOrders": [{"orderId": "o1"}],
        "banner": {"text": "hi"},
        "recommendations": [],
    }
    assert drifts == [Drift("user", "userId", "wrong_type")]


def test_project_all_gives_a_missing_section_its_empty_default_without_drift():
    projected, drifts = plan_for().project_all({})
    assert projected == {"user": None, "recentOrders": [], "banner": None, "recommendations": []}
    assert drifts == []


@pytest.mark.parametrize(
    "rule",
    [
        Rule("profile", "userId"),
        user_rule("avatarURL"),
        user_rule("address"),
        user_rule("lineItems[].sku", "skus"),
        user_rule("userId", "my id"),
    ],
)
def test_compile_plan_refuses_what_build_shape_refuses_with_the_same_message(rule):
    with pytest.raises(RuleError) as from_shape:
        build_shape(HOME, [rule])
    with pytest.raises(RuleError) as from_plan:
        compile_plan(HOME, [rule])
    assert str(from_plan.value) == str(from_shape.value)


def test_drifts_are_frozen_values():
    drift = Drift("user", "userId", "missing")
    with pytest.raises(FrozenInstanceError):
        drift.reason = "null"  # type: ignore[misc]
    assert drift == Drift("user", "userId", "missing")


# -- properties -----------------------------------------------------------------------------

# Every name the user schema uses at any depth, so random payloads reach nested fields.
PAYLOAD_KEYS = sorted(
    {*USER.names, "city", "zip", "theme", "bio", "links", "home", "sku", "quantity", "orderId"}
    | {"items", "x"}
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(PAYLOAD_KEYS), children, max_size=5),
    max_leaves=12,
)
EVERY_USER_RULE = [
    user_rule("userId"),
    user_rule("address.city", "where.city"),
    user_rule("address.zip", "where.zip"),
    user_rule("profile.links.home"),
    user_rule("tags"),
    user_rule("lineItems[].sku", "items[].sku"),
    user_rule("lineItems[].quantity", "items[].qty"),
    user_rule("orders[].items[].sku"),
    user_rule("loyaltyTier"),
    user_rule("balance"),
]


@given(JSON)
def test_projection_never_raises_on_any_payload(payload):
    plan = compile_plan(HOME, [*EVERY_USER_RULE, Rule("recentOrders", "orderId")])
    for section in ("user", "recentOrders"):
        result, drifts = plan.project(section, payload)
        json.dumps(result)
        assert all(isinstance(d, Drift) for d in drifts)


def conforming(declared: Field) -> st.SearchStrategy:
    """Values that match ``declared``, absence aside."""
    kind = declared.kind
    if isinstance(kind, Obj):
        value = conforming_object(kind)
    elif isinstance(kind, Arr):
        value = st.lists(conforming(Field(kind.items)), max_size=3)
    elif kind.enum is not None:
        value = st.sampled_from(kind.enum)
    else:
        value = st.one_of(*(SCALARS[t] for t in kind.types))
    return st.none() | value if declared.nullable else value


def conforming_object(source: Obj) -> st.SearchStrategy:
    required = {n: conforming(f) for n, f in source.fields if f.always_present}
    optional = {n: conforming(f) for n, f in source.fields if not f.always_present}
    return st.fixed_dictionaries(required, optional=optional)


SCALARS = {
    "string": st.text(max_size=5),
    "integer": st.integers(),
    "number": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
}


def violations(value, schema: dict, where: str = "$") -> list[str]:
    """The ways ``value`` breaks ``schema``, for the subset of JSON Schema shapes export."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    checks = {
        "null": lambda v: v is None,
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    if not any(checks[kind](value) for kind in kinds):
        return [f"{where}: {value!r} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    found = []
    if isinstance(value, dict):
        properties = schema["properties"]
        found += [f"{where}.{key}: missing" for key in schema["required"] if key not in value]
        found += [f"{where}.{key}: not allowed" for key in value if key not in properties]
        for key, item in value.items():
            if key in properties:
                found += violations(item, properties[key], f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += violations(item, schema["items"], f"{where}[{index}]")
    return found


META = {
    "traceId": "t",
    "generatedAt": "2025-01-01T00:00:00Z",
    "latencyMs": 12,
    "schemaVersion": "1.0",
    "degraded": False,
    "degradedDependencies": [],
    "cache": "miss",
}
BODY_RULES = [*EVERY_USER_RULE, Rule("recentOrders", "status"), Rule("recentOrders", "itemCount")]


@given(conforming_object(USER), st.lists(conforming_object(ORDER), max_size=3))
def test_a_conforming_payload_has_no_drift_and_matches_the_exported_schema(user, orders):
    plan = compile_plan(HOME, BODY_RULES)
    projected, drifts = plan.project_all({"user": user, "recentOrders": orders})
    assert drifts == []
    schema = to_json_schema(
        build_shape(HOME, BODY_RULES), title="mobile home", version="1.0", closed=True
    )
    assert violations({"meta": META, **projected}, schema) == []


def test_the_schema_check_used_above_does_catch_a_violation():
    schema = to_json_schema(
        build_shape(HOME, BODY_RULES), title="mobile home", version="1.0", closed=True
    )
    body = {"meta": META, "user": {"userId": 1}, "recentOrders": [], "banner": None}
    assert violations(body, schema)


# -- drift logging --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_drift_is_logged_once_per_field_and_reason_per_interval():
    clock = FakeClock()
    log = DriftLog(60.0, clock=clock)
    tier = Drift("user", "loyaltyTier", "not_in_enum")
    name = Drift("user", "displayName", "null")
    assert log.to_log(("mobile", "home"), [tier, name]) == [tier, name]
    clock.now += 59
    assert log.to_log(("mobile", "home"), [tier, name]) == []
    assert log.to_log(("web", "dashboard"), [tier]) == [tier]  # another endpoint's drift
    assert log.to_log(("mobile", "home"), [Drift("user", "loyaltyTier", "null")]) != []
    clock.now += 1
    assert log.to_log(("mobile", "home"), [tier]) == [tier]


def test_the_drift_log_forgets_rather_than_grows_without_bound():
    log = DriftLog(60.0, clock=FakeClock(), max_keys=3)
    for n in range(10):
        assert log.to_log(("c", "e"), [Drift("s", f"f{n}", "null")])
    assert len(log._last) <= 3


def test_every_drift_is_counted_but_logged_once(settings, caplog):
    from aggregation import metrics, pipeline

    settings.BFF = {**settings.BFF, "SCHEMA_DRIFT_LOG_INTERVAL_SECONDS": 3600.0}
    contract = SimpleNamespace(client="mobile", endpoint="drift-test")
    drift = [Drift("user", "loyaltyTier", "not_in_enum")]
    counter = metrics.SCHEMA_DRIFT.labels("mobile", "drift-test", "user", "not_in_enum")
    before = counter._value.get()
    with caplog.at_level(logging.WARNING, logger="aggregation.pipeline"):
        for _ in range(50):
            pipeline.record_drift(contract, drift, "trace")
    assert counter._value.get() - before == 50
    assert [r.getMessage() for r in caplog.records].count("schema drift") == 1
