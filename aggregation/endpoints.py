"""The client endpoints this code serves: their sections and the dependencies feeding them.

The registry reads ``ENDPOINTS`` (through ``contracts.codebase``) to validate rules and to
compute the shape this code produces for each contract version.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from aggregation import sources
from contract_core.schema import EndpointSpec, Section

_SAMPLES = Path(__file__).with_name("samples")


@cache
def sample(name: str) -> dict:
    """A realistic record of one source, captured from the demo services, for previews."""
    return json.loads((_SAMPLES / f"{name}.json").read_text())


def _enriched_recommendation_sample() -> dict:
    return {**sample("recommendation"), "product": sample("product")}


# Sections the mobile and web surfaces share: the same source, each its own whitelist.
USER = Section("user", "object", sources.USER, dependency="user", sample=sample("user"))
RECENT_ORDERS = Section(
    "recentOrders", "list", sources.ORDER, dependency="orders", sample=sample("order")
)

MOBILE_HOME = EndpointSpec(
    client="mobile",
    name="home",
    description="The app's home screen: the user, recent orders, recommendations.",
    sections=(
        USER,
        RECENT_ORDERS,
        Section(
            "recommendations",
            "list",
            sources.RECOMMENDATION,
            dependency="recommendations",
            sample=sample("recommendation"),
        ),
    ),
)

WEB_DASHBOARD = EndpointSpec(
    client="web",
    name="dashboard",
    description="The web dashboard: user, orders, enriched recommendations, categories.",
    sections=(
        USER,
        RECENT_ORDERS,
        Section(
            "recommendations",
            "list",
            sources.ENRICHED_RECOMMENDATION,
            dependency="recommendations",
            sample=_enriched_recommendation_sample(),
        ),
        Section(
            "categories",
            "list",
            sources.CATEGORY,
            dependency="categories",
            sample=sample("category"),
        ),
    ),
)

PARTNER_PRODUCT = EndpointSpec(
    client="partner",
    name="product",
    description="One catalog product, for partners.",
    per_user=False,
    sections=(
        Section(
            "product", "object", sources.PRODUCT, dependency="catalog", sample=sample("product")
        ),
    ),
)

PARTNER_PRODUCTS = EndpointSpec(
    client="partner",
    name="products",
    description="A batch of catalog products (at most 50 ids), for partners.",
    per_user=False,
    sections=(
        Section(
            "products", "list", sources.PRODUCT, dependency="catalog", sample=sample("product")
        ),
    ),
)

ENDPOINTS: dict[tuple[str, str], EndpointSpec] = {
    spec.key: spec for spec in (MOBILE_HOME, WEB_DASHBOARD, PARTNER_PRODUCT, PARTNER_PRODUCTS)
}
