"""Deterministic, realistic JSON payloads of the four demo services."""

from __future__ import annotations

import hashlib
import random
import re
import string
import unicodedata
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

USER_ID = re.compile(r"usr_[0-9]{1,9}")
PRODUCT_ID = re.compile(r"prd_[0-9]{1,9}")

# A fixed "now" keeps every payload independent of the wall clock, so the same id gives
# byte-identical bodies across calls, processes and days.
_NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
_PRODUCT_SPACE = 99_999

CATEGORIES: tuple[dict[str, str], ...] = (
    {"categoryId": "electronics", "name": "Electronics"},
    {"categoryId": "books", "name": "Books"},
    {"categoryId": "home-kitchen", "name": "Home & Kitchen"},
    {"categoryId": "fashion", "name": "Fashion"},
    {"categoryId": "sports-outdoors", "name": "Sports & Outdoors"},
    {"categoryId": "toys-games", "name": "Toys & Games"},
    {"categoryId": "beauty", "name": "Beauty"},
    {"categoryId": "grocery", "name": "Grocery"},
    {"categoryId": "garden", "name": "Garden"},
    {"categoryId": "automotive", "name": "Automotive"},
    {"categoryId": "pet-supplies", "name": "Pet Supplies"},
    {"categoryId": "office", "name": "Office Supplies"},
)

_FIRST_NAMES = (
    "Ada", "Bruno", "Chloé", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kavya", "Lars", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tara",
)  # fmt: skip
_LAST_NAMES = (
    "Andersen", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Horvat",
    "Ivanova", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "O'Brien", "Petrov",
)  # fmt: skip
_COUNTRIES = (
    ("DE", "de-DE", "Europe/Berlin", "EUR", ("Berlin", "Hamburg", "München")),
    ("FR", "fr-FR", "Europe/Paris", "EUR", ("Paris", "Lyon", "Marseille")),
    ("NL", "nl-NL", "Europe/Amsterdam", "EUR", ("Amsterdam", "Utrecht", "Rotterdam")),
    ("ES", "es-ES", "Europe/Madrid", "EUR", ("Madrid", "Valencia", "Sevilla")),
    ("GB", "en-GB", "Europe/London", "GBP", ("London", "Leeds", "Bristol")),
    ("US", "en-US", "America/New_York", "USD", ("New York", "Boston", "Chicago")),
)
_STREETS = ("Main Street", "Harbour Road", "Lindenallee", "Rue du Lac", "Calle Mayor", "Parkweg")
_TIERS = ("bronze", "silver", "gold", "platinum")
_SEGMENTS = ("seg_new", "seg_casual", "seg_frequent", "seg_high_value", "seg_churn_risk")
_USER_TAGS = ("newsletter", "early-adopter", "b2b", "student", "price-sensitive", "vip")
_AB_TESTS = ("checkout-v2", "search-ranking", "home-hero", "free-shipping-banner")

_ORDER_STATUSES = ("placed", "packed", "shipped", "delivered", "cancelled")
_CARRIERS = ("DHL", "UPS", "DPD", "PostNL", "GLS")
_PAYMENT_METHODS = ("card", "paypal", "klarna", "apple_pay", "bank_transfer")
_CHANNELS = ("web", "ios", "android", "store")
_WAREHOUSES = ("wh_ams1", "wh_ber2", "wh_par1", "wh_mad1", "wh_lon3")
_FULFILMENT_CENTERS = ("fc_north", "fc_south", "fc_east", "fc_west")

_ADJECTIVES = ("Compact", "Classic", "Ultra", "Eco", "Smart", "Vintage", "Pro", "Lightweight")
_NOUNS = (
    "Headphones", "Water Bottle", "Backpack", "Desk Lamp", "Coffee Grinder", "Yoga Mat",
    "Notebook", "Running Shoes", "Board Game", "Plant Pot", "Phone Case", "Chef Knife",
)  # fmt: skip
_BRANDS = ("Nordlys", "Acme", "Veloce", "Hearth & Co", "Kumo", "Brightline", "Oakridge")
_PRODUCT_TAGS = ("bestseller", "new", "sale", "eco", "limited", "gift-idea", "bundle")
_REASONS = ("bought_together", "viewed_similar", "trending", "because_you_liked", "new_in")
_MODEL_VERSIONS = ("recsys-2025.05.2", "recsys-2025.05.3")
_CODE_ALPHABET = string.ascii_uppercase + string.digits


def is_user_id(value: str) -> bool:
    return USER_ID.fullmatch(value) is not None


def is_product_id(value: str) -> bool:
    return PRODUCT_ID.fullmatch(value) is not None


def _rng(*parts: object) -> random.Random:
    # hash() is salted per process; a digest keeps payloads identical across runs.
    key = ":".join(str(part) for part in parts).encode()
    return random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"))


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ago(rng: random.Random, max_days: int, min_days: int = 0) -> datetime:
    return _NOW - timedelta(days=rng.randint(min_days, max_days), seconds=rng.randint(0, 86_399))


def format_price(cents: int) -> str:
    return f"€{cents // 100}.{cents % 100:02d}"


# A user service part-way through renaming `avatarUrl` to `profileImageUrl`: the names it
# sends the avatar under (README, "A service renamed or removed a field").
AVATAR_NAMES = {
    "avatarUrl": ("avatarUrl",),
    "both": ("avatarUrl", "profileImageUrl"),
    "profileImageUrl": ("profileImageUrl",),
}
_avatar_names: tuple[str, ...] = AVATAR_NAMES["avatarUrl"]


def send_avatar_as(mode: str) -> None:
    """Send the avatar as `avatarUrl` (the default), under `both` names, or `profileImageUrl`."""
    global _avatar_names
    _avatar_names = AVATAR_NAMES[mode]
    user_body.cache_clear()


def user(user_id: str) -> dict[str, Any]:
    """The user object for a valid user id (see `is_user_id`)."""
    body = _user(user_id)
    if _avatar_names == ("avatarUrl",):
        return body
    renamed: dict[str, Any] = {}
    for key, value in body.items():
        if key == "avatarUrl":
            renamed.update(dict.fromkeys(_avatar_names, value))
        else:
            renamed[key] = value
    return renamed


def _user(user_id: str) -> dict[str, Any]:
    rng = _rng("user", user_id)
    number = int(user_id[4:])
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    country, locale, timezone, currency, cities = rng.choice(_COUNTRIES)
    created = _ago(rng, 2_000, 30)
    updated = created + timedelta(days=rng.randint(0, 29), seconds=rng.randint(0, 86_399))
    last_login = _ago(rng, 29)
    has_phone = rng.random() < 0.75
    return {
        "userId": user_id,
        "displayName": f"{first} {last[0]}.",
        "firstName": first,
        "lastName": last,
        "avatarUrl": (
            f"https://cdn.example.com/avatars/{user_id}.jpg" if rng.random() < 0.8 else None
        ),
        "email": f"{_ascii(first).lower()}.{number}@example.com",
        "emailVerified": rng.random() < 0.9,
        "phone": (
            f"+{rng.randint(30, 49)} {rng.randint(100, 999)} {rng.randint(1_000_000, 9_999_999)}"
            if has_phone
            else None
        ),
        "phoneVerified": has_phone and rng.random() < 0.7,
        "dateOfBirth": (
            f"{rng.randint(1950, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            if rng.random() < 0.85
            else None
        ),
        "locale": locale,
        "timezone": timezone,
        "country": country,
        "currency": currency,
        "address": {
            "street": f"{rng.choice(_STREETS)} {rng.randint(1, 250)}",
            "city": rng.choice(cities),
            "postalCode": f"{rng.randint(10_000, 99_999)}",
            "country": country,
        },
        "preferences": {
            "language": locale[:2],
            "notifications": rng.random() < 0.6,
            "theme": rng.choice(("light", "dark", "system")),
        },
        "loyaltyTier": rng.choices(_TIERS, weights=(50, 30, 15, 5))[0],
        "loyaltyPoints": rng.randint(0, 50_000),
        "marketingOptIn": rng.random() < 0.45,
        "accountStatus": rng.choices(("active", "suspended", "closed"), weights=(95, 3, 2))[0],
        "kycStatus": rng.choice(("verified", "pending", "not_required")),
        "twoFactorEnabled": rng.random() < 0.35,
        "signupChannel": rng.choice(_CHANNELS),
        "createdAt": _timestamp(created),
        "updatedAt": _timestamp(updated),
        "lastLoginAt": _timestamp(last_login),
        "lastLoginIp": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "orderCount": rng.randint(0, 250),
        "lifetimeValueCents": rng.randint(0, 5_000_000),
        "referralCode": "".join(rng.choices(_CODE_ALPHABET, k=8)),
        "referredBy": f"usr_{rng.randint(1, 999_999)}" if rng.random() < 0.4 else None,
        "tags": rng.sample(_USER_TAGS, rng.randint(0, 3)),
        "deviceIds": [f"dev_{rng.getrandbits(48):012x}" for _ in range(rng.randint(1, 3))],
        "supportTier": rng.choice(("standard", "priority")),
        "fraudScore": round(rng.random(), 3),
        "riskBand": rng.choice(("low", "medium", "high")),
        "internalSegmentTag": rng.choice(_SEGMENTS),
        "internalNotes": "manual review 2024-11" if rng.random() < 0.2 else None,
        "abTestBuckets": {test: rng.choice(("control", "variant")) for test in _AB_TESTS[:2]},
        "crmId": f"crm-{rng.getrandbits(40):010x}",
    }


def product(product_id: str) -> dict[str, Any]:
    """The catalog product for a valid product id (see `is_product_id`)."""
    rng = _rng("product", product_id)
    number = int(product_id[4:])
    brand = rng.choice(_BRANDS)
    noun = rng.choice(_NOUNS)
    title = f"{brand} {rng.choice(_ADJECTIVES)} {noun}"
    price_cents = rng.randint(199, 49_999)
    base = f"https://cdn.example.com/products/{product_id}"
    created = _ago(rng, 1_500, 10)
    return {
        "productId": product_id,
        "sku": f"SKU-{number:09d}",
        "title": title,
        "description": f"The {title.lower()}: built to last, easy to clean, loved by customers.",
        "brand": brand,
        "category": rng.choice(CATEGORIES)["categoryId"],
        "priceCents": price_cents,
        "priceFormatted": format_price(price_cents),
        "currency": "EUR",
        "thumbnailUrl": f"{base}/thumb.jpg",
        "imageUrls": [f"{base}/image-{index}.jpg" for index in range(1, rng.randint(2, 5))],
        "rating": round(rng.uniform(2.5, 5.0), 1),
        "reviewCount": rng.randint(0, 4_000),
        "inStock": rng.random() < 0.85,
        "supplierId": f"sup_{rng.randint(100, 999)}",
        "costPrice": round(price_cents * rng.uniform(0.35, 0.7) / 100, 2),
        "warehouseId": rng.choice(_WAREHOUSES),
        "weightGrams": rng.randint(50, 8_000),
        "dimensions": {
            "widthMm": rng.randint(20, 600),
            "heightMm": rng.randint(20, 600),
            "depthMm": rng.randint(5, 400),
        },
        "tags": rng.sample(_PRODUCT_TAGS, rng.randint(0, 3)),
        "createdAt": _timestamp(created),
    }


def order(user_id: str, index: int) -> dict[str, Any]:
    """The user's `index`-th most recent order (0 is the newest)."""
    rng = _rng("order", user_id, index)
    placed = _NOW - timedelta(days=index * 9 + rng.randint(0, 8), seconds=rng.randint(0, 86_399))
    # Recent orders are still on their way; older ones have mostly been delivered.
    if index < 2:
        status = rng.choice(_ORDER_STATUSES)
    else:
        status = rng.choices(_ORDER_STATUSES, weights=(1, 1, 2, 20, 3))[0]
    in_transit = status in ("placed", "packed", "shipped")
    line_items = [
        {
            "sku": f"SKU-{rng.randint(1, _PRODUCT_SPACE):09d}",
            "quantity": rng.randint(1, 3),
            "unitPriceCents": rng.randint(199, 19_999),
        }
        for _ in range(rng.randint(1, 4))
    ]
    subtotal = sum(item["quantity"] * item["unitPriceCents"] for item in line_items)
    discount = rng.choice((0, 0, 0, subtotal // 10))
    tax = (subtotal - discount) * 19 // 100
    total = subtotal - discount + tax
    cost = subtotal * rng.randint(40, 70) // 100
    carrier = rng.choice(_CARRIERS)
    return {
        "orderId": f"ord_{rng.getrandbits(40):010x}",
        "status": status,
        "placedAt": _timestamp(placed),
        "estimatedDelivery": (
            (placed + timedelta(days=rng.randint(2, 7))).date().isoformat() if in_transit else None
        ),
        "itemCount": sum(item["quantity"] for item in line_items),
        "lineItems": line_items,
        "totalCents": total,
        "discountCents": discount,
        "taxCents": tax,
        "currency": "EUR",
        "carrier": carrier,
        "trackingNumber": (
            f"{carrier[:2].upper()}{rng.getrandbits(36):011d}"
            if status in ("shipped", "delivered")
            else None
        ),
        "shippingAddressId": f"adr_{rng.randint(1_000, 9_999)}",
        "paymentMethod": rng.choice(_PAYMENT_METHODS),
        "channel": rng.choice(_CHANNELS),
        "giftWrap": rng.random() < 0.1,
        "warehouseId": rng.choice(_WAREHOUSES),
        "fulfillmentCenter": rng.choice(_FULFILMENT_CENTERS),
        "costCents": cost,
        "internalMarginCents": total - tax - cost,
    }


def orders(user_id: str, limit: int) -> list[dict[str, Any]]:
    """The user's `limit` most recent orders, newest first."""
    return [order(user_id, index) for index in range(limit)]


def recommendations(user_id: str, limit: int) -> list[dict[str, Any]]:
    """The user's top `limit` recommendations, best first; a shorter limit gives a prefix."""
    rng = _rng("recommendations", user_id)
    experiment = f"exp_{rng.randint(100, 140)}"
    model_version = rng.choice(_MODEL_VERSIONS)
    # Drawing the full 100 every time keeps `limit=5` a prefix of `limit=10`.
    numbers = rng.sample(range(1, _PRODUCT_SPACE + 1), 100)
    scores = sorted((rng.random() for _ in numbers), reverse=True)
    reasons = [rng.choice(_REASONS) for _ in numbers]
    items = []
    for index in range(limit):
        item = product(f"prd_{numbers[index]}")
        items.append(
            {
                "productId": item["productId"],
                "title": item["title"],
                "thumbnailUrl": item["thumbnailUrl"],
                "priceFormatted": item["priceFormatted"],
                "priceCents": item["priceCents"],
                "currency": item["currency"],
                "brand": item["brand"],
                "category": item["category"],
                "inStock": item["inStock"],
                "rank": index + 1,
                "score": round(scores[index], 4),
                "reason": reasons[index],
                "modelVersion": model_version,
                "experimentId": experiment,
                "costPrice": item["costPrice"],
            }
        )
    return items


# The encoded bodies below are what the services send; caching them keeps the hot path to
# a dictionary lookup. Sizes bound memory under benchmarks that sweep many ids.


@lru_cache(maxsize=20_000)
def user_body(user_id: str) -> bytes | None:
    return orjson.dumps(user(user_id)) if is_user_id(user_id) else None


@lru_cache(maxsize=2_048)
def orders_body(user_id: str, limit: int) -> bytes | None:
    return orjson.dumps({"orders": orders(user_id, limit)}) if is_user_id(user_id) else None


@lru_cache(maxsize=2_048)
def recommendations_body(user_id: str, limit: int) -> bytes | None:
    if not is_user_id(user_id):
        return None
    return orjson.dumps({"items": recommendations(user_id, limit)})


@lru_cache(maxsize=50_000)
def product_body(product_id: str) -> bytes | None:
    return orjson.dumps(product(product_id)) if is_product_id(product_id) else None


def products_body(product_ids: list[str]) -> bytes:
    """`{"products": [...]}` in the given order, invalid ids left out."""
    bodies = [body for body in map(product_body, product_ids) if body is not None]
    return b'{"products":[' + b",".join(bodies) + b"]}"


CATEGORIES_BODY = orjson.dumps({"categories": CATEGORIES})
