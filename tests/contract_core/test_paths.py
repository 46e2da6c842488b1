"""Tests of rule paths: parsing, resolving against a source schema, laying rules out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract_core.paths import (
    OutputLeaf,
    OutputList,
    OutputObject,
    RuleError,
    Segment,
    format_path,
    layout,
    leaf_paths,
    parse,
    resolve,
)
from contract_core.schema import (
    EndpointSpec,
    Field,
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
    scores=list_of(Scalar("number"), nullable=True),
    settings=nested(obj(theme=string(), beta=boolean()), always_present=False),
    orders=list_of(
        obj(
            orderId=string(),
            shipping=nested(obj(carrier=string(nullable=True)), nullable=True),
            items=list_of(obj(sku=string(), price=number()), always_present=False),
        ),
        nullable=True,
    ),
)
ORDER = obj(orderId=string(), status=string(), itemCount=integer())
HOME = EndpointSpec(
    "mobile",
    "home",
    (
        Section("user", "object", USER, "user"),
        Section("recentOrders", "list", ORDER, "orders"),
    ),
)


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(RuleError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


# -- parse ----------------------------------------------------------------------------------


def test_a_plain_name_is_one_segment():
    assert parse("avatarUrl") == (Segment("avatarUrl", False),)


def test_dots_separate_segments_and_brackets_mark_lists():
    assert parse("orders[].shipping.carrier") == (
        Segment("orders", True),
        Segment("shipping", False),
        Segment("carrier", False),
    )


def test_segments_are_name_and_is_list_pairs():
    name, is_list = parse("lineItems[].sku")[0]
    assert (name, is_list) == ("lineItems", True)


@pytest.mark.parametrize("path", ["", "   "])
def test_an_empty_path_is_refused(path):
    assert "empty" in error_of(parse, path)


def test_a_path_that_is_not_a_string_is_refused():
    with pytest.raises(RuleError):
        parse(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["a..b", ".a", "a.", "a.[].b"])
def test_an_empty_segment_is_refused(path):
    assert "empty name" in error_of(parse, path)


@pytest.mark.parametrize(
    "path", ["1abc", "a-b", "a b", " a", "a.b c", "user.é", "a[]x.b", "a[][].b", "a[0].b", "$x"]
)
def test_a_malformed_name_is_refused(path):
    assert "is not a valid name" in error_of(parse, path)


def test_brackets_on_the_last_segment_are_refused():
    message = error_of(parse, "lineItems[]")
    assert (
        message
        == "'lineItems[]' ends in '[]': pick a field of each item, e.g. 'lineItems[].<field>'"
    )


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@given(st.lists(st.tuples(NAMES, st.booleans()), min_size=1, max_size=5))
def test_formatting_parsed_segments_gives_back_the_path(pairs):
    *walked, (last, _) = pairs
    segments = (*(Segment(n, is_list) for n, is_list in walked), Segment(last, False))
    path = format_path(segments)
    assert parse(path) == segments
    assert format_path(parse(path)) == path


# -- resolve --------------------------------------------------------------------------------


def test_a_top_level_scalar_resolves_to_its_field():
    leaf = resolve(USER, "displayName")
    assert leaf.field == string()
    assert leaf.path == "displayName"
    assert leaf.list_indices == ()
    assert (leaf.nullable, leaf.always_present) == (False, True)


def test_a_nested_scalar_is_nullable_when_an_object_on_the_way_is():
    leaf = resolve(USER, "address.city")
    assert leaf.field == string()
    assert leaf.nullable is True
    assert leaf.always_present is True


def test_a_leaf_that_may_be_absent_is_not_always_present():
    assert resolve(USER, "address.zip").always_present is False


def test_a_leaf_under_an_object_that_may_be_absent_is_not_always_present():
    leaf = resolve(USER, "settings.theme")
    assert leaf.always_present is False
    assert leaf.nullable is False


def test_a_leaf_in_a_list_of_objects_records_the_list():
    leaf = resolve(USER, "lineItems[].sku")
    assert leaf.list_indices == (0,)
    assert [step.path for step in leaf.lists] == ["lineItems"]
    assert leaf.field == string()


def test_a_nullable_list_makes_its_items_fields_no_more_nullable():
    # A null list yields no items, never an item with a null field.
    leaf = resolve(USER, "orders[].orderId")
    assert leaf.nullable is False
    assert leaf.lists[0].nullable is True
    assert leaf.lists[0].always_present is True


def test_nested_lists_record_each_list_with_its_own_flags():
    leaf = resolve(USER, "orders[].items[].price")
    assert leaf.list_indices == (0, 1)
    assert [(s.path, s.nullable, s.always_present) for s in leaf.lists] == [
        ("orders", True, True),
        ("orders[].items", False, False),
    ]
    assert leaf.scalar == Scalar("number")


def test_an_object_inside_a_list_item_counts_for_the_leaf():
    leaf = resolve(USER, "orders[].shipping.carrier")
    assert leaf.nullable is True
    assert leaf.list_indices == (0,)


def test_a_list_of_scalars_is_a_leaf():
    leaf = resolve(USER, "tags")
    assert leaf.is_array is True
    assert leaf.scalar == Scalar("string")


def test_a_scalar_leaf_is_not_an_array():
    assert resolve(USER, "userId").is_array is False


def test_an_unknown_field_names_the_section_and_the_field():
    assert error_of(resolve, USER, "nickname", section="user") == "user has no field 'nickname'"


def test_an_unknown_field_suggests_a_differently_cased_match():
    message = error_of(resolve, USER, "avatarURL", section="user")
    assert message == "user has no field 'avatarURL' (did you mean 'avatarUrl'?)"


def test_an_unknown_nested_field_names_its_object():
    message = error_of(resolve, USER, "address.street", section="user")
    assert message == "user.address has no field 'street'"


def test_an_unknown_field_without_a_section_names_the_source():
    assert error_of(resolve, USER, "nope") == "the source has no field 'nope'"
    assert error_of(resolve, USER, "address.nope") == "address has no field 'nope'"


def test_a_whole_object_is_refused_with_a_suggested_subfield():
    message = error_of(resolve, USER, "address", section="user")
    assert message == "'address' is an object: pick one of its fields, e.g. 'address.city'"


def test_a_whole_list_of_objects_is_refused_with_a_suggested_subfield():
    message = error_of(resolve, USER, "lineItems", section="user")
    assert message == (
        "'lineItems' is a list of objects: pick one of its items' fields, e.g. 'lineItems[].sku'"
    )


def test_a_list_walked_without_brackets_is_refused_with_the_bracketed_path():
    message = error_of(resolve, USER, "lineItems.sku")
    assert message == "'lineItems' is a list: write 'lineItems[].sku' to pick a field of each item"


def test_brackets_on_an_object_are_refused():
    message = error_of(resolve, USER, "address[].city")
    assert message == "'address' is an object, not a list: remove the '[]' after it"


def test_brackets_on_a_list_of_scalars_are_refused():
    message = error_of(resolve, USER, "tags[].x")
    assert message == "'tags' is a list of strings, not of objects: select 'tags' itself"


def test_a_scalar_cannot_be_walked_into():
    message = error_of(resolve, USER, "displayName.first")
    assert message == "'displayName' is a string, not an object: it has no fields"


def test_a_list_of_scalars_cannot_be_walked_into():
    message = error_of(resolve, USER, "tags.first")
    assert message == "'tags' is a list of strings: it has no fields"


def test_a_malformed_path_is_a_rule_error_from_resolve_too():
    with pytest.raises(RuleError):
        resolve(USER, "address..city")


# -- leaf_paths -----------------------------------------------------------------------------


def test_leaf_paths_offers_every_selectable_path_in_declaration_order():
    assert leaf_paths(USER) == [
        ("userId", "string"),
        ("displayName", "string"),
        ("avatarUrl", "string|null"),
        ("loyaltyTier", "enum<bronze|silver|gold>"),
        ("address.city", "string|null"),
        ("address.zip", "string|null"),
        ("tags", "array<string>"),
        ("lineItems[].sku", "string"),
        ("lineItems[].quantity", "integer"),
        ("referredBy", "string|null"),
        ("balance", "integer|string"),
        ("scores", "array<number>|null"),
        ("settings.theme", "string"),
        ("settings.beta", "boolean"),
        ("orders[].orderId", "string"),
        ("orders[].shipping.carrier", "string|null"),
        ("orders[].items[].sku", "string"),
        ("orders[].items[].price", "number"),
    ]


def test_an_extensible_enum_is_labelled_as_open():
    source = obj(status=string(enum=("a", "b"), extensible=True))
    assert leaf_paths(source) == [("status", "enum<a|b|…>")]


def test_every_offered_path_resolves():
    for path, _ in leaf_paths(USER):
        assert resolve(USER, path).path == path


def test_an_empty_object_offers_nothing():
    assert leaf_paths(obj()) == []


# -- layout ---------------------------------------------------------------------------------


def test_layout_has_every_section_in_endpoint_order_even_without_rules():
    sections = layout(HOME, [Rule("recentOrders", "orderId")])
    assert [s.section.name for s in sections] == ["user", "recentOrders"]
    assert sections[0].children == ()


def test_layout_keeps_the_order_rules_came_in():
    sections = layout(HOME, [Rule("user", "displayName"), Rule("user", "userId")])
    assert [node.name for node in sections[0].children] == ["displayName", "userId"]


def test_a_dotted_output_builds_an_output_object():
    (user, _) = layout(HOME, [Rule("user", "address.city", "place.city")])
    (place,) = user.children
    assert isinstance(place, OutputObject)
    (city,) = place.children
    assert isinstance(city, OutputLeaf)
    assert city.leaf.path == "address.city"


def test_a_bracketed_output_builds_an_output_list_bound_to_its_source_list():
    rules = [
        Rule("user", "lineItems[].sku", "items[].code"),
        Rule("user", "lineItems[].quantity", "items[].qty"),
    ]
    (user, _) = layout(HOME, rules)
    (items,) = user.children
    assert isinstance(items, OutputList)
    assert items.source.path == "lineItems"
    assert [child.name for child in items.children] == ["code", "qty"]


def test_an_unknown_section_is_refused_naming_the_known_ones():
    message = error_of(layout, HOME, [Rule("profile", "userId")])
    assert message == "mobile/home has no section 'profile' (its sections: user, recentOrders)"


def test_an_unknown_source_field_is_refused_naming_the_section():
    message = error_of(layout, HOME, [Rule("recentOrders", "total")])
    assert message == "recentOrders has no field 'total'"


def test_two_rules_writing_one_output_are_refused():
    rules = [Rule("user", "avatarUrl"), Rule("user", "displayName", "avatarUrl")]
    message = error_of(layout, HOME, rules)
    assert message == (
        "user: two rules write the output 'avatarUrl' (from 'avatarUrl' and 'displayName')"
    )


def test_the_same_rule_twice_is_a_duplicate():
    with pytest.raises(RuleError, match="two rules write the output 'userId'"):
        layout(HOME, [Rule("user", "userId"), Rule("user", "userId")])


def test_the_same_output_in_two_sections_is_fine():
    sections = layout(HOME, [Rule("user", "userId", "id"), Rule("recentOrders", "orderId", "id")])
    assert [len(s.children) for s in sections] == [1, 1]


def test_a_field_and_an_object_of_the_same_name_collide_field_first():
    rules = [Rule("user", "displayName", "name"), Rule("user", "address.city", "name.city")]
    message = error_of(layout, HOME, rules)
    assert message == (
        "user: output 'name.city' collides with 'name': 'name' cannot be both an object and a field"
    )


def test_a_field_and_an_object_of_the_same_name_collide_object_first():
    rules = [Rule("user", "address.city", "name.city"), Rule("user", "displayName", "name")]
    message = error_of(layout, HOME, rules)
    assert message == (
        "user: output 'name' collides with 'name.city': 'name' cannot be both a field and an object"
    )


def test_an_output_list_and_an_output_object_of_the_same_name_collide():
    rules = [Rule("user", "lineItems[].sku", "x[].sku"), Rule("user", "address.city", "x.city")]
    with pytest.raises(RuleError, match="'x' cannot be both an object and a list"):
        layout(HOME, rules)


def test_an_output_that_flattens_a_list_is_refused():
    message = error_of(layout, HOME, [Rule("user", "lineItems[].sku", "skus")])
    assert message == (
        "user: output 'skus' has 0 '[]' segment(s) but its source 'lineItems[].sku' has 1: "
        "an output keeps the source's list structure"
    )


def test_an_output_that_invents_a_list_is_refused():
    with pytest.raises(RuleError, match="has 1 '\\[\\]' segment"):
        layout(HOME, [Rule("user", "displayName", "names[].value")])


def test_an_output_list_fed_from_two_source_lists_is_refused():
    rules = [
        Rule("user", "lineItems[].sku", "things[].sku"),
        Rule("user", "orders[].orderId", "things[].orderId"),
    ]
    message = error_of(layout, HOME, rules)
    assert message == (
        "user: output list 'things[]' takes its items from 'lineItems[]', "
        "so 'things[].orderId' cannot come from 'orders[].orderId'"
    )


def test_two_output_lists_may_come_from_one_source_list():
    rules = [
        Rule("user", "lineItems[].sku", "skus[].value"),
        Rule("user", "lineItems[].quantity", "quantities[].value"),
    ]
    (user, _) = layout(HOME, rules)
    assert [node.name for node in user.children] == ["skus", "quantities"]


def test_an_output_may_nest_objects_inside_list_items():
    (user, _) = layout(HOME, [Rule("user", "lineItems[].sku", "items[].product.sku")])
    (items,) = user.children
    assert isinstance(items.children[0], OutputObject)


def test_nested_output_lists_follow_nested_source_lists():
    (user, _) = layout(HOME, [Rule("user", "orders[].items[].sku", "orders[].lines[].sku")])
    (orders,) = user.children
    (lines,) = orders.children
    assert isinstance(lines, OutputList)
    assert lines.source.path == "orders[].items"


@pytest.mark.parametrize("output", ["my name", "2fa", "a..b", "list[]"])
def test_an_invalid_output_name_is_refused(output):
    message = error_of(layout, HOME, [Rule("user", "displayName", output)])
    assert message.startswith(f"user: output name {output!r} is not valid: ")


def test_an_empty_output_keeps_the_source_path():
    (user, _) = layout(HOME, [Rule("user", "address.city")])
    (address,) = user.children
    assert address.name == "address"
    assert address.children[0].name == "city"


def test_rules_may_be_any_iterable():
    sections = layout(HOME, (rule for rule in [Rule("user", "userId")]))
    assert sections[0].children[0].name == "userId"


def test_leaf_labels_cover_every_scalar_type():
    source = obj(a=string(), b=integer(), c=number(), d=boolean())
    assert [label for _, label in leaf_paths(source)] == ["string", "integer", "number", "boolean"]


def test_sensitivity_is_read_from_the_field_or_an_enclosing_one() -> None:
    from contract_core.paths import sensitivity
    from contract_core.schema import internal, nested, obj, personal, string

    source = obj(
        name=string(),
        email=personal(string()),
        risk=internal(nested(obj(score=string()))),
    )
    assert sensitivity(source, "name") == ""
    assert sensitivity(source, "email") == "personal"
    assert sensitivity(source, "risk.score") == "internal"
