"""The demo services' routes, auth, counters and control endpoints, through real HTTP."""

from __future__ import annotations

import httpx
import orjson
import pytest

from demo_services import payloads
from demo_services.app import MAX_TRACE_IDS, Counters, make_app
from demo_services.testing import DemoServices

DATA_ROUTES = [
    ("user", "/users/usr_1"),
    ("order", "/users/usr_1/orders"),
    ("recommendation", "/users/usr_1/recommendations"),
    ("catalog", "/products/prd_1"),
    ("catalog", "/products?ids=prd_1,prd_2"),
    ("catalog", "/categories"),
]


@pytest.fixture
def get(services: DemoServices, client: httpx.Client, headers: dict[str, str]):
    def call(service: str, path: str, **extra_headers: str) -> httpx.Response:
        return client.get(services.urls[service] + path, headers={**headers, **extra_headers})

    return call


def _assert_json_answer(response: httpx.Response) -> object:
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    body = orjson.loads(response.content)
    # orjson writes compact JSON, so a compact body re-encodes byte for byte.
    assert orjson.dumps(body) == response.content
    return body


@pytest.mark.parametrize(("service", "path"), DATA_ROUTES)
def test_every_data_route_answers_compact_json(get, service: str, path: str) -> None:
    response = get(service, path)
    assert response.status_code == 200
    _assert_json_answer(response)


def test_user_route_serves_the_generated_user(get) -> None:
    response = get("user", "/users/usr_42")
    body = _assert_json_answer(response)
    assert body == payloads.user("usr_42")
    assert {"fraudScore", "internalSegmentTag", "marketingOptIn", "loyaltyTier"} <= body.keys()
    assert len(body) >= 38


def test_answers_are_identical_across_calls(get) -> None:
    for service, path in DATA_ROUTES:
        assert get(service, path).content == get(service, path).content


def test_orders_default_to_ten_and_honour_the_limit(get) -> None:
    assert len(get("order", "/users/usr_5/orders").json()["orders"]) == 10
    limited = get("order", "/users/usr_5/orders?limit=3").json()
    assert limited == {"orders": payloads.orders("usr_5", 3)}
    assert len(get("order", "/users/usr_5/orders?limit=100").json()["orders"]) == 100
    assert len(get("order", "/users/usr_5/orders?limit=1").json()["orders"]) == 1


def test_recommendations_default_to_ten_and_honour_the_limit(get) -> None:
    assert len(get("recommendation", "/users/usr_5/recommendations").json()["items"]) == 10
    limited = get("recommendation", "/users/usr_5/recommendations?limit=4").json()
    assert limited == {"items": payloads.recommendations("usr_5", 4)}


@pytest.mark.parametrize("service", ["order", "recommendation"])
@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "", "%D9%A1"])
def test_a_limit_outside_1_to_100_is_a_bad_request(get, service: str, limit: str) -> None:
    suffix = "orders" if service == "order" else "recommendations"
    response = get(service, f"/users/usr_1/{suffix}?limit={limit}")
    assert response.status_code == 400
    body = _assert_json_answer(response)
    assert body["error"] == "bad_request"
    assert "limit" in body["message"]


def test_recommended_products_match_the_catalog(get) -> None:
    items = get("recommendation", "/users/usr_8/recommendations?limit=5").json()["items"]
    for item in items:
        product = get("catalog", f"/products/{item['productId']}").json()
        for field in ("title", "thumbnailUrl", "priceFormatted", "costPrice"):
            assert item[field] == product[field]


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("user", "/users/usr_"),
        ("user", "/users/usr_abc"),
        ("user", "/users/usr_1234567890"),
        ("user", "/users/prd_1"),
        ("order", "/users/nobody/orders"),
        ("recommendation", "/users/nobody/recommendations"),
        ("catalog", "/products/prd_x"),
        ("catalog", "/products/usr_1"),
    ],
)
def test_unknown_ids_are_not_found(get, service: str, path: str) -> None:
    response = get(service, path)
    assert response.status_code == 404
    assert _assert_json_answer(response) == {"error": "not_found"}


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("user", "/"),
        ("user", "/users/usr_1/"),
        ("user", "/users/usr_1/orders"),
        ("order", "/users/usr_1"),
        ("recommendation", "/products/prd_1"),
        ("catalog", "/users/usr_1"),
        ("catalog", "/categories/1"),
        ("user", "/_control/nothing"),
    ],
)
def test_unknown_paths_are_not_found(get, service: str, path: str) -> None:
    response = get(service, path)
    assert response.status_code == 404
    assert _assert_json_answer(response) == {"error": "not_found"}


@pytest.mark.parametrize(
    ("method", "service", "path"),
    [
        ("POST", "user", "/users/usr_1"),
        ("DELETE", "order", "/users/usr_1/orders"),
        ("PUT", "catalog", "/products/prd_1"),
        ("POST", "user", "/_control/health"),
        ("GET", "user", "/_control/reset"),
    ],
)
def test_a_wrong_method_is_not_allowed(
    services: DemoServices, client: httpx.Client, headers, method: str, service: str, path: str
) -> None:
    response = client.request(method, services.urls[service] + path, headers=headers)
    assert response.status_code == 405
    assert _assert_json_answer(response) == {"error": "method_not_allowed"}
    assert response.headers["allow"]


def test_batch_keeps_the_requested_order_and_omits_unknown_ids(get) -> None:
    response = get("catalog", "/products?ids=prd_9,unknown,prd_2,prd_,prd_9")
    body = _assert_json_answer(response)
    assert [product["productId"] for product in body["products"]] == ["prd_9", "prd_2"]
    assert body["products"][1] == payloads.product("prd_2")


def test_batch_takes_up_to_two_hundred_ids(get) -> None:
    ids = ",".join(f"prd_{number}" for number in range(1, 201))
    assert len(get("catalog", f"/products?ids={ids}").json()["products"]) == 200


@pytest.mark.parametrize(
    "query",
    ["", "?ids=", "?ids=,,", "?other=prd_1", "?ids=" + ",".join(f"prd_{n}" for n in range(201))],
)
def test_batch_without_ids_or_with_too_many_is_a_bad_request(get, query: str) -> None:
    response = get("catalog", f"/products{query}")
    assert response.status_code == 400
    body = _assert_json_answer(response)
    assert body["error"] == "bad_request"
    assert "ids" in body["message"]


def test_categories_are_the_fixed_list(get) -> None:
    body = get("catalog", "/categories").json()
    assert body == {"categories": list(payloads.CATEGORIES)}
    assert len(body["categories"]) == 12


@pytest.mark.parametrize(("service", "path"), DATA_ROUTES)
@pytest.mark.parametrize(
    "bad_headers",
    [
        {},
        {"X-Service-Account": "web-bff"},
        {"X-Internal-Token": "demo-internal-token"},
        {"X-Service-Account": "web-bff", "X-Internal-Token": "wrong"},
        {"X-Service-Account": "web-bff", "X-Internal-Token": ""},
        {"X-Service-Account": "web", "X-Internal-Token": "demo-internal-token"},
        {"X-Service-Account": "web-bff-admin", "X-Internal-Token": "demo-internal-token"},
        {"X-Service-Account": "-bff", "X-Internal-Token": "demo-internal-token"},
        {"X-Service-Account": "", "X-Internal-Token": "demo-internal-token"},
    ],
    ids=[
        "no-headers",
        "no-token",
        "no-account",
        "wrong-token",
        "empty-token",
        "account-without-bff",
        "account-bff-not-last",
        "account-bff-only",
        "empty-account",
    ],
)
def test_a_call_without_valid_service_headers_is_unauthorized(
    services: DemoServices, client: httpx.Client, service: str, path: str, bad_headers
) -> None:
    response = client.get(services.urls[service] + path, headers=bad_headers)
    assert response.status_code == 401
    assert _assert_json_answer(response) == {"error": "unauthorized"}
    stats = services.stats(service)
    assert stats["unauthorized"] == 1
    assert stats["total"] == 1
    assert stats["by_route"] == {}
    assert stats["by_user"] == {}
    assert stats["by_product"] == {}


def test_health_names_each_service(services: DemoServices, client: httpx.Client) -> None:
    for service, url in services.urls.items():
        response = client.get(f"{url}/_control/health")
        assert response.json() == {"service": service, "status": "ok"}


def test_stats_start_at_zero(services: DemoServices) -> None:
    assert services.stats("catalog") == {
        "service": "catalog",
        "total": 0,
        "unauthorized": 0,
        "by_route": {},
        "by_user": {},
        "by_product": {},
        "with_trace_id": 0,
        "with_authorization": 0,
        "service_accounts": {},
        "trace_ids_seen": [],
        "traceparents_seen": [],
    }


def test_by_route_and_by_user_count_user_scoped_calls(services: DemoServices, get) -> None:
    get("order", "/users/usr_1/orders")
    get("order", "/users/usr_1/orders?limit=2")
    get("order", "/users/usr_2/orders")
    get("order", "/nowhere")
    stats = services.stats("order")
    assert stats["total"] == 4
    assert stats["by_route"] == {"GET /users/{userId}/orders": 3}
    assert stats["by_user"] == {"usr_1": 2, "usr_2": 1}


def test_by_product_counts_single_and_batch_calls(services: DemoServices, get) -> None:
    get("catalog", "/products/prd_1")
    get("catalog", "/products?ids=prd_1,prd_2,prd_3")
    get("catalog", "/categories")
    stats = services.stats("catalog")
    assert stats["by_route"] == {
        "GET /products/{productId}": 1,
        "GET /products": 1,
        "GET /categories": 1,
    }
    assert stats["by_product"] == {"prd_1": 2, "prd_2": 1, "prd_3": 1}
    assert stats["by_user"] == {}


def test_trace_ids_are_counted_and_remembered_in_order(services: DemoServices, get) -> None:
    get("user", "/users/usr_1", **{"X-Trace-Id": "trace-a"})
    get("user", "/users/usr_1", **{"X-Trace-Id": "trace-b"})
    get("user", "/users/usr_1", **{"X-Trace-Id": "trace-a"})
    get("user", "/users/usr_1", **{"X-Trace-Id": ""})
    get("user", "/users/usr_1")
    stats = services.stats("user")
    assert stats["with_trace_id"] == 3
    assert stats["trace_ids_seen"] == ["trace-b", "trace-a"]


def test_traceparents_are_remembered_with_their_tracestate(services: DemoServices, get) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    get("user", "/users/usr_1", traceparent=parent, tracestate="congo=t61rcWkgMzE")
    get("user", "/users/usr_1", traceparent=parent)
    get("user", "/users/usr_1")
    assert services.stats("user")["traceparents_seen"] == [f"{parent} congo=t61rcWkgMzE", parent]


def test_only_the_last_thousand_distinct_trace_ids_are_kept() -> None:
    counters = Counters()
    for number in range(MAX_TRACE_IDS + 5):
        counters.saw_trace_id(f"t{number}")
    seen = counters.snapshot()["trace_ids_seen"]
    assert len(seen) == MAX_TRACE_IDS
    assert seen[0] == "t5"
    assert seen[-1] == f"t{MAX_TRACE_IDS + 4}"


def test_a_forwarded_authorization_header_is_counted(services: DemoServices, get) -> None:
    get("recommendation", "/users/usr_1/recommendations")
    get("recommendation", "/users/usr_1/recommendations", Authorization="Bearer leaked")
    assert services.stats("recommendation")["with_authorization"] == 1


def test_service_accounts_are_counted_even_when_rejected(
    services: DemoServices, client: httpx.Client, get
) -> None:
    get("user", "/users/usr_1", **{"X-Service-Account": "web-bff"})
    get("user", "/users/usr_1", **{"X-Service-Account": "web-bff"})
    get("user", "/users/usr_1", **{"X-Service-Account": "mobile-bff"})
    client.get(services.urls["user"] + "/users/usr_1", headers={"X-Service-Account": "rogue"})
    stats = services.stats("user")
    assert stats["service_accounts"] == {"web-bff": 2, "mobile-bff": 1, "rogue": 1}
    assert stats["unauthorized"] == 1


def test_control_calls_are_not_counted(services: DemoServices, client: httpx.Client) -> None:
    url = services.urls["user"]
    client.get(f"{url}/_control/health", headers={"X-Trace-Id": "t", "Authorization": "x"})
    client.get(f"{url}/_control/faults")
    client.put(f"{url}/_control/faults", json={})
    client.delete(f"{url}/_control/faults")
    assert services.stats("user")["total"] == 0


def test_reset_zeroes_counters_and_clears_faults(
    services: DemoServices, client: httpx.Client, get
) -> None:
    get("user", "/users/usr_1", **{"X-Trace-Id": "t1"})
    services.set_faults("user", status=503)
    response = client.post(services.urls["user"] + "/_control/reset")
    assert response.json() == {"service": "user", "status": "reset"}
    stats = services.stats("user")
    assert stats["total"] == 0
    assert stats["trace_ids_seen"] == []
    assert stats["by_user"] == {}
    assert get("user", "/users/usr_1").status_code == 200


def test_make_app_refuses_an_unknown_service_or_an_empty_token() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        make_app("billing", "token")
    with pytest.raises(ValueError, match="token"):
        make_app("user", "")
