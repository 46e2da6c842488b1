"""Unit tests of the payload generators: shapes, determinism, nullability, consistency."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import orjson
import pytest

from demo_services import payloads

USER_FIELDS = {
    "userId", "displayName", "avatarUrl", "loyaltyTier", "email", "phone", "dateOfBirth",
    "fraudScore", "internalSegmentTag", "marketingOptIn", "createdAt", "firstName", "lastName",
    "locale", "timezone", "country", "currency", "address", "preferences", "lastLoginAt",
    "lastLoginIp", "emailVerified", "phoneVerified", "accountStatus", "kycStatus", "riskBand",
    "lifetimeValueCents", "orderCount", "referralCode", "referredBy", "tags", "deviceIds",
    "supportTier", "internalNotes", "abTestBuckets", "crmId", "updatedAt",
}  # fmt: skip
ORDER_FIELDS = {
    "orderId", "status", "estimatedDelivery", "itemCount", "warehouseId", "costCents",
    "totalCents", "currency", "placedAt", "carrier", "trackingNumber", "shippingAddressId",
    "paymentMethod", "discountCents", "taxCents", "channel", "fulfillmentCenter", "lineItems",
    "giftWrap", "internalMarginCents",
}  # fmt: skip
RECOMMENDATION_FIELDS = {
    "productId", "thumbnailUrl", "title", "priceFormatted", "score", "modelVersion", "costPrice",
    "reason", "category", "brand", "rank", "experimentId", "priceCents", "currency", "inStock",
}  # fmt: skip
PRODUCT_FIELDS = {
    "productId", "title", "description", "brand", "category", "priceCents", "priceFormatted",
    "currency", "thumbnailUrl", "imageUrls", "rating", "inStock", "supplierId", "costPrice",
    "warehouseId", "sku", "weightGrams", "dimensions", "tags", "createdAt",
}  # fmt: skip
NULLABLE_USER_FIELDS = ("avatarUrl", "phone", "dateOfBirth", "referredBy", "internalNotes")
MANY_USERS = [f"usr_{number}" for number in range(1, 301)]


def _is_utc_timestamp(value: str) -> bool:
    return value.endswith("Z") and datetime.fromisoformat(value).utcoffset() is not None


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("usr_1", True),
        ("usr_123456789", True),
        ("usr_", False),
        ("usr_1234567890", False),
        ("usr_12a", False),
        ("USR_1", False),
        ("usr_1\n", False),
        ("usr_\u0661", False),  # an Arabic-Indic digit: isdigit() says yes, the pattern says no
        ("prd_1", False),
    ],
)
def test_user_ids_must_match_the_pattern(value: str, valid: bool) -> None:
    assert payloads.is_user_id(value) is valid
    assert (payloads.user_body(value) is not None) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [("prd_1", True), ("prd_999999999", True), ("prd_", False), ("prd_x", False), ("usr_1", False)],
)
def test_product_ids_must_match_the_pattern(value: str, valid: bool) -> None:
    assert payloads.is_product_id(value) is valid
    assert (payloads.product_body(value) is not None) is valid


def test_user_has_about_forty_fields_including_the_internal_ones() -> None:
    user = payloads.user("usr_42")
    assert user.keys() >= USER_FIELDS
    assert 38 <= len(user) <= 42
    assert user["userId"] == "usr_42"


def test_user_field_types_and_values() -> None:
    for user_id in MANY_USERS[:50]:
        user = payloads.user(user_id)
        assert user["loyaltyTier"] in {"bronze", "silver", "gold", "platinum"}
        assert isinstance(user["fraudScore"], float)
        assert isinstance(user["marketingOptIn"], bool)
        assert _is_utc_timestamp(user["createdAt"])
        assert _is_utc_timestamp(user["updatedAt"])
        assert _is_utc_timestamp(user["lastLoginAt"])
        assert user["address"].keys() >= {"street", "city", "postalCode", "country"}
        assert isinstance(user["preferences"]["language"], str)
        assert isinstance(user["preferences"]["notifications"], bool)
        assert isinstance(user["lifetimeValueCents"], int)
        assert isinstance(user["orderCount"], int)
        assert all(isinstance(tag, str) for tag in user["tags"])


@pytest.mark.parametrize("field", NULLABLE_USER_FIELDS)
def test_nullable_user_fields_are_null_for_some_users_only(field: str) -> None:
    values = [payloads.user(user_id)[field] for user_id in MANY_USERS]
    assert any(value is None for value in values)
    assert any(value is not None for value in values)


def test_loyalty_tiers_all_occur() -> None:
    tiers = {payloads.user(user_id)["loyaltyTier"] for user_id in MANY_USERS}
    assert tiers == {"bronze", "silver", "gold", "platinum"}


def test_payloads_are_deterministic_and_differ_between_ids() -> None:
    assert payloads.user("usr_7") == payloads.user("usr_7")
    assert payloads.user("usr_7") != payloads.user("usr_8")
    assert payloads.orders("usr_7", 5) == payloads.orders("usr_7", 5)
    assert payloads.recommendations("usr_7", 5) == payloads.recommendations("usr_7", 5)
    assert payloads.product("prd_7") == payloads.product("prd_7")
    assert payloads.product("prd_7") != payloads.product("prd_8")


@pytest.mark.integration  # a subprocess
def test_payloads_do_not_depend_on_the_process_hash_seed() -> None:
    script = (
        "import hashlib; from demo_services import payloads as p; "
        "print(hashlib.sha256(p.user_body('usr_5') + p.orders_body('usr_5', 10) "
        "+ p.recommendations_body('usr_5', 10) + p.product_body('prd_5')).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": "."},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


def test_orders_have_about_twenty_fields() -> None:
    orders = payloads.orders("usr_3", 10)
    assert len(orders) == 10
    for order in orders:
        assert order.keys() >= ORDER_FIELDS
        assert 18 <= len(order) <= 22
        assert isinstance(order["itemCount"], int)
        assert isinstance(order["costCents"], int)
        assert order["itemCount"] == sum(item["quantity"] for item in order["lineItems"])
        assert all(
            item.keys() == {"sku", "quantity", "unitPriceCents"} for item in order["lineItems"]
        )
    assert len({order["orderId"] for order in orders}) == 10


def test_estimated_delivery_is_a_date_until_delivered_or_cancelled() -> None:
    statuses = set()
    for user_id in MANY_USERS[:40]:
        for order in payloads.orders(user_id, 10):
            statuses.add(order["status"])
            if order["status"] in ("delivered", "cancelled"):
                assert order["estimatedDelivery"] is None
            else:
                assert datetime.fromisoformat(order["estimatedDelivery"]).date()
    assert statuses == {"placed", "packed", "shipped", "delivered", "cancelled"}


def test_orders_are_newest_first_and_a_smaller_limit_is_a_prefix() -> None:
    orders = payloads.orders("usr_9", 20)
    placed = [order["placedAt"] for order in orders]
    assert placed == sorted(placed, reverse=True)
    assert payloads.orders("usr_9", 5) == orders[:5]


def test_recommendations_have_about_fifteen_fields() -> None:
    items = payloads.recommendations("usr_3", 10)
    assert len(items) == 10
    for rank, item in enumerate(items, start=1):
        assert item.keys() == RECOMMENDATION_FIELDS
        assert payloads.is_product_id(item["productId"])
        assert isinstance(item["score"], float)
        assert isinstance(item["costPrice"], float)
        assert item["rank"] == rank
        assert item["priceFormatted"].startswith("€")
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    assert len({item["productId"] for item in items}) == 10


def test_recommendations_agree_with_the_catalog() -> None:
    for item in payloads.recommendations("usr_11", 20):
        product = payloads.product(item["productId"])
        for field in ("title", "thumbnailUrl", "priceFormatted", "priceCents", "costPrice"):
            assert item[field] == product[field]


def test_a_smaller_recommendation_limit_is_a_prefix() -> None:
    assert payloads.recommendations("usr_4", 3) == payloads.recommendations("usr_4", 30)[:3]


def test_product_has_about_twenty_fields() -> None:
    product = payloads.product("prd_123")
    assert product.keys() >= PRODUCT_FIELDS
    assert 19 <= len(product) <= 22
    assert isinstance(product["imageUrls"], list)
    assert all(url.startswith("https://") for url in product["imageUrls"])
    assert isinstance(product["rating"], float)
    assert isinstance(product["inStock"], bool)
    assert product["dimensions"].keys() == {"widthMm", "heightMm", "depthMm"}
    category_ids = {category["categoryId"] for category in payloads.CATEGORIES}
    assert product["category"] in category_ids


@pytest.mark.parametrize(("cents", "text"), [(1299, "€12.99"), (5, "€0.05"), (100, "€1.00")])
def test_prices_are_formatted_in_euros(cents: int, text: str) -> None:
    assert payloads.format_price(cents) == text


def test_products_body_keeps_order_and_omits_invalid_ids() -> None:
    body = orjson.loads(payloads.products_body(["prd_3", "nope", "prd_1"]))
    assert [product["productId"] for product in body["products"]] == ["prd_3", "prd_1"]
    assert body["products"][0] == payloads.product("prd_3")


def test_categories_are_a_fixed_list_of_twelve() -> None:
    categories = orjson.loads(payloads.CATEGORIES_BODY)["categories"]
    assert len(categories) == 12
    assert all(category.keys() == {"categoryId", "name"} for category in categories)


@pytest.mark.parametrize(
    ("mode", "names"),
    [("both", ["avatarUrl", "profileImageUrl"]), ("profileImageUrl", ["profileImageUrl"])],
)
def test_a_user_service_mid_rename_sends_the_avatar_under_the_chosen_names(mode, names):
    before = payloads.user("usr_7")
    try:
        payloads.send_avatar_as(mode)
        after = orjson.loads(payloads.user_body("usr_7"))
    finally:
        payloads.send_avatar_as("avatarUrl")
    assert [k for k in after if k in ("avatarUrl", "profileImageUrl")] == names
    assert all(after[name] == before["avatarUrl"] for name in names)
    assert list(after).index(names[0]) == list(before).index("avatarUrl")
    assert orjson.loads(payloads.user_body("usr_7")) == before
