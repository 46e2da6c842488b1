"""HTTP semantics of the client API over real HTTP: methods, HEAD, 304, query keys, caching."""

from __future__ import annotations

import httpx
import pytest

from aggregation.tokens import mint_token

PARTNER_SCOPE = {"scope": "catalog:read"}


def mobile(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token('mobile', sub)}"}


def partner(sub: str = "ptn_views") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token('partner', sub, **PARTNER_SCOPE)}"}


@pytest.fixture
def client(live_bff, demo_services):
    with httpx.Client(base_url=live_bff.url, timeout=30.0, trust_env=False) as http:
        yield http


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/mobile/v1/home", mobile("usr_701")),
        ("/partner/v1/products/prd_1", partner()),
        ("/mobile/v1/openapi.json", {}),
    ],
    ids=["mobile-home", "partner-product", "openapi"],
)
def test_other_methods_get_405_with_allow_in_the_envelope(client, method, path, headers) -> None:
    response = client.request(method, path, headers=headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.headers["Cache-Control"] == "no-store"
    error = response.json()["error"]
    assert error["code"] == "METHOD_NOT_ALLOWED"
    assert error["traceId"] == response.headers["X-Trace-Id"]


def test_a_405_calls_no_service(client, demo_services) -> None:
    client.post("/mobile/v1/home", headers=mobile("usr_702"))
    assert demo_services.stats("user")["total"] == 0


def test_head_is_answered_like_get_without_a_body(client) -> None:
    headers = {**mobile("usr_703"), "Accept-Encoding": "identity"}
    client.get("/mobile/v1/home", headers=headers)  # the miss: both below are hits
    get = client.get("/mobile/v1/home", headers=headers)
    head = client.head("/mobile/v1/home", headers=headers)
    assert (get.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    # The length of the body a GET would get; meta.latencyMs may differ by a digit.
    assert abs(int(head.headers["Content-Length"]) - len(get.content)) <= 2
    for name in ("Content-Type", "ETag", "Cache-Control", "Vary"):
        assert head.headers[name] == get.headers[name], name


def test_a_304_carries_the_validators_and_caching_headers_and_no_body_headers(client) -> None:
    headers = {**mobile("usr_704"), "Accept-Encoding": "identity"}
    first = client.get("/mobile/v1/home", headers=headers)
    again = client.get(
        "/mobile/v1/home", headers={**headers, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Cache-Control"] == "private, max-age=30, s-maxage=0"
    assert again.headers["Vary"] == "Authorization, Accept-Encoding"
    assert "Date" in again.headers and again.headers["X-Trace-Id"]
    # A shared cache may copy these onto the stored 200 (RFC 9111 4.3.4): never on a 304.
    for name in ("Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding"):
        assert name not in again.headers, name


def test_a_shared_304_keeps_the_public_caching_headers(client) -> None:
    first = client.get("/partner/v1/products/prd_71", headers=partner())
    assert first.status_code == 200
    again = client.get(
        "/partner/v1/products/prd_71",
        headers={**partner(), "If-None-Match": f'W/{first.headers["ETag"]}, "other"'},
    )
    assert again.status_code == 304
    assert again.headers["Cache-Control"] == first.headers["Cache-Control"]
    assert again.headers["Cache-Control"].startswith("public, ")
    assert again.headers["Vary"] == "Accept-Encoding"
    assert "Content-Type" not in again.headers


@pytest.mark.parametrize(
    "query", ["ids=prd_1&ids=prd_2", "ids=prd_1,prd_2&ids=prd_3", "ids=prd_1&ids=prd_1"]
)
def test_a_repeated_query_key_is_refused_not_half_read(client, demo_services, query) -> None:
    response = client.get(f"/partner/v1/products?{query}", headers=partner())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert "ids" in error["message"]
    assert demo_services.stats("catalog")["total"] == 0


def test_a_single_ids_key_still_works(client) -> None:
    response = client.get("/partner/v1/products?ids=prd_72,prd_73", headers=partner())
    assert response.status_code == 200
    assert [p["productId"] for p in response.json()["products"]] == ["prd_72", "prd_73"]
