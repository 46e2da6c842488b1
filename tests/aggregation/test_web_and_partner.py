"""The web dashboard and the partner catalog over real HTTP to the demo services."""

from __future__ import annotations

import pytest
from django.test import Client

FORBIDDEN_FIELDS = ("fraudScore", "internalSegmentTag", "costPrice", "warehouseId",
                    "supplierId", "internalMarginCents")  # fmt: skip


def get(path: str, token: str | None = None, **headers):
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return Client().get(path, **headers)


@pytest.fixture
def partner(token):
    return token("ptn_acme", client="partner", scope="catalog:read")


def routes(services, name: str) -> dict:
    return services.stats(name)["by_route"]


# --- web dashboard -----------------------------------------------------------------------


def test_dashboard_has_every_section_projected(bff, token) -> None:
    response = get("/web/v1/dashboard", token("usr_21", client="web"))
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["meta", "user", "recentOrders", "recommendations", "categories"]
    assert len(body["recentOrders"]) == 10
    assert len(body["recommendations"]) == 12
    assert len(body["categories"]) == 12
    assert set(body["recommendations"][0]["product"]) == {"rating", "reviewCount"}
    assert body["user"]["address"] == {
        "city": body["user"]["address"]["city"],
        "country": body["user"]["address"]["country"],
    }
    assert not any(field in response.content.decode() for field in FORBIDDEN_FIELDS)


def test_enrichment_is_one_batched_catalog_call_per_request(bff, token) -> None:
    for n in (22, 23, 24):
        assert get("/web/v1/dashboard", token(f"usr_{n}", client="web")).status_code == 200
    catalog = routes(bff, "catalog")
    assert catalog.get("GET /products") == 3
    assert catalog.get("GET /products/{productId}", 0) == 0
    assert bff.stats("catalog")["service_accounts"] == {
        "web-bff": catalog["GET /products"] + catalog.get("GET /categories", 0)
    }


def test_categories_come_from_the_shared_cache(bff, token) -> None:
    for n in (25, 26, 27):
        get("/web/v1/dashboard", token(f"usr_{n}", client="web"))
    assert routes(bff, "catalog").get("GET /categories") == 1


def test_failed_enrichment_degrades_to_plain_recommendations(bff, token) -> None:
    get("/web/v1/dashboard", token("usr_28", client="web"))  # categories now cached
    bff.set_faults("catalog", status=503)
    response = get("/web/v1/dashboard", token("usr_29", client="web"))
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["degraded"] is True
    assert body["meta"]["degradedDependencies"] == ["catalog"]
    assert response["X-BFF-Degraded"] == "catalog"
    assert len(body["recommendations"]) == 12
    assert all("rating" not in item.get("product", {}) for item in body["recommendations"])
    assert all(item["title"] for item in body["recommendations"])
    assert len(body["categories"]) == 12  # served from the shared cache despite the outage


# --- partner catalog ---------------------------------------------------------------------


def test_one_product_is_public_shared_data(bff, partner) -> None:
    response = get("/partner/v1/products/prd_1001", partner)
    assert response.status_code == 200
    assert response["Cache-Control"] == (
        "public, max-age=300, s-maxage=300, stale-while-revalidate=300"
    )
    assert "Vary" not in response or "Authorization" not in response["Vary"]
    body = response.json()
    assert body["product"]["productId"] == "prd_1001"
    assert "costPrice" not in body["product"] and "supplierId" not in body["product"]


def test_shared_entries_serve_every_partner(bff, token) -> None:
    first = token("ptn_one", client="partner", scope="catalog:read")
    second = token("ptn_two", client="partner", scope="catalog:read")
    assert get("/partner/v1/products/prd_7", first).json()["meta"]["cache"] == "miss"
    assert get("/partner/v1/products/prd_7", second).json()["meta"]["cache"] == "hit"
    assert bff.stats("catalog")["by_product"] == {"prd_7": 1}


def test_etag_gives_304(bff, partner) -> None:
    etag = get("/partner/v1/products/prd_8", partner)["ETag"]
    response = get("/partner/v1/products/prd_8", partner, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response.content == b""


def test_batch_keeps_the_requested_order_and_drops_unknown_ids(bff, partner) -> None:
    body = get("/partner/v1/products?ids=prd_3,prd_1,nothere,prd_2", partner).json()
    assert [p["productId"] for p in body["products"]] == ["prd_3", "prd_1", "prd_2"]


@pytest.mark.parametrize(
    "query",
    ["", "?ids=", "?ids=,", "?ids=prd_1,,prd_2", "?ids=prd 1", "?ids=prd_1;drop",
     "?ids=" + "x" * 65, "?ids=" + ",".join(f"prd_{n}" for n in range(51)),
     "?ids=%0Aprd_1", "?ids=../etc"],
    ids=["missing", "empty", "only-commas", "empty-item", "space", "semicolon", "too-long",
         "51-ids", "newline", "dotdot"],
)  # fmt: skip
def test_bad_ids_are_400_in_the_envelope(bff, partner, query) -> None:
    response = get(f"/partner/v1/products{query}", partner)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert routes(bff, "catalog") == {}


def test_fifty_ids_are_allowed(bff, partner) -> None:
    query = ",".join(f"prd_{n}" for n in range(1, 51))
    assert len(get(f"/partner/v1/products?ids={query}", partner).json()["products"]) == 50


def test_bad_single_id_is_400_and_unknown_is_404(bff, partner) -> None:
    assert get("/partner/v1/products/bad!id", partner).status_code == 400
    missing = get("/partner/v1/products/nothere", partner)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"


def test_catalog_down_is_503_catalog_unavailable(bff, partner) -> None:
    bff.set_faults("catalog", status=500)
    response = get("/partner/v1/products/prd_9", partner)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "CATALOG_UNAVAILABLE"
    assert response.json()["error"]["retryable"] is True


def test_partner_token_needs_the_catalog_read_scope(bff, token) -> None:
    for scope in (None, "orders:read", "catalog:write"):
        response = get("/partner/v1/products/prd_1", token("ptn_1", client="partner",
                                                            scope=scope))  # fmt: skip
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("client", "path"),
    [("mobile", "/web/v1/dashboard"), ("mobile", "/partner/v1/products/prd_1"),
     ("web", "/mobile/v1/home"), ("web", "/partner/v1/products/prd_1"),
     ("partner", "/mobile/v1/home"), ("partner", "/web/v1/dashboard")],
)  # fmt: skip
def test_a_token_only_opens_its_own_surface(bff, token, client, path) -> None:
    response = get(path, token("usr_1", client=client, scope="catalog:read"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


def test_partner_v2_renames_a_field_beside_deprecated_v1(bff, partner) -> None:
    v1 = get("/partner/v1/products/prd_5", partner)
    v2 = get("/partner/v2/products/prd_5", partner)
    assert "priceFormatted" in v1.json()["product"] and "displayPrice" not in v1.json()["product"]
    assert "displayPrice" in v2.json()["product"] and "priceFormatted" not in v2.json()["product"]
    assert v1["Deprecation"].startswith("@") and v1["Sunset"].endswith("GMT")
    assert v1["Link"] == '</partner/v2/products/prd_5>; rel="successor-version"'
    assert "Deprecation" not in v2


def test_rate_limits_answer_429_with_retry_after_per_subject(bff, token, settings) -> None:
    settings.BFF = {**settings.BFF, "RATE_LIMITS": {"mobile": "2/min", "partner": "600/min"}}
    first, second = token("usr_31"), token("usr_32")
    assert [get("/mobile/v1/home", first).status_code for _ in range(2)] == [200, 200]
    limited = get("/mobile/v1/home", first)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    assert limited.json()["error"]["retryable"] is True
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert get("/mobile/v1/home", second).status_code == 200  # another user's own budget
    assert get("/web/v1/dashboard", token("usr_31", client="web")).status_code == 200
