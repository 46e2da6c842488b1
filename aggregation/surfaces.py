"""Each client endpoint's dependencies: what it calls, what is critical, what it falls back to."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aggregation import calls, endpoints, shared
from aggregation.errors import ErrorCode, InvalidRequest
from aggregation.fanout import CallContext, Dependency
from contracts.schema import EndpointSpec

Assemble = Callable[[Mapping[str, Any]], Mapping[str, Any]]
Parse = Callable[[Mapping[str, str], Mapping[str, Any]], Mapping[str, Any]]

PRODUCT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_BATCH_IDS = 50


@dataclass(frozen=True)
class Surface:
    """An endpoint's code: its declared shape, its dependencies, how sections are filled.

    ``parse`` turns the URL's query and path parameters into the call parameters (raising
    InvalidRequest), ``cache_id`` names the shared cache entry for those parameters, and
    ``scope`` is the token scope the endpoint requires, if any.
    """

    spec: EndpointSpec
    dependencies: tuple[Dependency, ...]
    assemble: Assemble | None = None
    parse: Parse | None = None
    cache_id: Callable[[Mapping[str, Any]], str] | None = None
    scope: str | None = None

    def sections_from(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.assemble is not None:
            return self.assemble(values)
        return {section.name: values[section.dependency] for section in self.spec.sections}

    def params_from(self, query: Mapping[str, str], path: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.parse(query, path) if self.parse is not None else {}


async def _user(context: CallContext, done: Mapping[str, Any]) -> dict:
    return await calls.user(context, context.subject)


def _orders(limit: int):
    async def fetch(context: CallContext, done: Mapping[str, Any]) -> list:
        return await calls.orders(context, context.subject, limit)

    return fetch


def _recommendations(limit: int):
    async def fetch(context: CallContext, done: Mapping[str, Any]) -> list:
        return await calls.recommendations(context, context.subject, limit)

    return fetch


USER = Dependency("user", _user, critical=True, unavailable_code=ErrorCode.USER_PROFILE_UNAVAILABLE)

MOBILE_HOME = Surface(
    spec=endpoints.MOBILE_HOME,
    dependencies=(
        USER,
        Dependency("orders", _orders(3), default=[]),
        Dependency("recommendations", _recommendations(6), default=[]),
    ),
)


# --- web dashboard ---------------------------------------------------------------------


async def _product_details(context: CallContext, done: Mapping[str, Any]) -> dict:
    """One batched catalog call for every recommended product, never one per product."""
    ids = [
        item["productId"]
        for item in done["recommendations"]
        if isinstance(item, dict) and isinstance(item.get("productId"), str)
    ]
    ids = list(dict.fromkeys(ids))[:200]
    if not ids:
        return {}
    products = await calls.products(context, ids)
    return {
        product["productId"]: product
        for product in products
        if isinstance(product, dict) and isinstance(product.get("productId"), str)
    }


async def _categories(context: CallContext, done: Mapping[str, Any]) -> list:
    return await shared.categories(context)


def _dashboard_sections(values: Mapping[str, Any]) -> Mapping[str, Any]:
    details = values["catalog"] or {}
    recommendations = [
        {**item, "product": details[item["productId"]]}
        if isinstance(item, dict) and item.get("productId") in details
        else item
        for item in values["recommendations"]
    ]
    return {
        "user": values["user"],
        "recentOrders": values["orders"],
        "recommendations": recommendations,
        "categories": values["categories"],
    }


WEB_DASHBOARD = Surface(
    spec=endpoints.WEB_DASHBOARD,
    dependencies=(
        USER,
        Dependency("orders", _orders(10), default=[]),
        Dependency("recommendations", _recommendations(12), default=[]),
        # A failed enrichment leaves the recommendations as they came: degraded, not lost.
        Dependency("catalog", _product_details, needs=("recommendations",), default=None),
        Dependency("categories", _categories, default=[]),
    ),
    assemble=_dashboard_sections,
)


# --- partner catalog -------------------------------------------------------------------


def _product_id(value: object) -> str:
    if not isinstance(value, str) or not PRODUCT_ID.match(value):
        raise InvalidRequest("A product id is 1-64 letters, digits, '_' or '-'.")
    return value


def _parse_product(query: Mapping[str, str], path: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"productId": _product_id(path.get("product_id"))}


def _parse_products(query: Mapping[str, str], path: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = query.get("ids")
    if raw is None or not raw.strip():
        raise InvalidRequest("Pass the product ids as ?ids=a,b,c.")
    ids = [part.strip(" ") for part in raw.split(",")]
    if len(ids) > MAX_BATCH_IDS:
        raise InvalidRequest(f"At most {MAX_BATCH_IDS} ids per call.")
    return {"ids": tuple(dict.fromkeys(_product_id(item) for item in ids))}


async def _one_product(context: CallContext, done: Mapping[str, Any]) -> dict:
    return await calls.product(context, context.params["productId"])


async def _many_products(context: CallContext, done: Mapping[str, Any]) -> list:
    return await calls.products(context, context.params["ids"])


CATALOG_READ = "catalog:read"


def _catalog(fetch) -> Dependency:
    return Dependency(
        "catalog", fetch, critical=True, unavailable_code=ErrorCode.CATALOG_UNAVAILABLE
    )


PARTNER_PRODUCT = Surface(
    spec=endpoints.PARTNER_PRODUCT,
    dependencies=(_catalog(_one_product),),
    assemble=lambda values: {"product": values["catalog"]},
    parse=_parse_product,
    cache_id=lambda params: params["productId"],
    scope=CATALOG_READ,
)

PARTNER_PRODUCTS = Surface(
    spec=endpoints.PARTNER_PRODUCTS,
    dependencies=(_catalog(_many_products),),
    assemble=lambda values: {"products": values["catalog"]},
    parse=_parse_products,
    # The body lists products in the order asked for, so the order is part of the entry.
    cache_id=lambda params: "ids=" + ",".join(params["ids"]),
    scope=CATALOG_READ,
)
