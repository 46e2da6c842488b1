"""GET /mobile/v1/home through real HTTP to the demo services: shape, hygiene, every fault."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from aggregation.tokens import mint_token
from demo_services import payloads
from demo_services.testing import DemoServices
from tests.aggregation.conftest import TEST_DOWNSTREAM
from tests.conftest import free_port
from tests.live import LiveBFF, base_env, seed

URL = "/mobile/v1/home"
USER_FIELDS = ["userId", "displayName", "avatarUrl", "loyaltyTier"]
ORDER_FIELDS = ["orderId", "status", "estimatedDelivery", "itemCount"]
RECOMMENDATION_FIELDS = ["productId", "thumbnailUrl", "title", "priceFormatted"]
NEVER_SENT = ["fraudScore", "internalSegmentTag", "costPrice", "warehouseId", "email", "phone"]
NEW_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
USER_SERVICES = ("user", "order", "recommendation")  # what mobile home calls
# Room for a loaded two-core machine on top of the timeout or deadline that applies.
MARGIN_SECONDS = 0.75


@dataclass
class Answer:
    """One response, its body decoded."""

    status: int
    headers: Any
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)


def get(path: str = URL, *, authorization: str | None = None, **headers: str) -> Answer:
    if authorization is not None:
        headers["Authorization"] = authorization
    response = Client().get(path, headers=headers)
    return Answer(response.status_code, response.headers, response.content)


def home(sub: str = "usr_1", **headers: str) -> Answer:
    return get(authorization=f"Bearer {mint_token('mobile', sub)}", **headers)


def project(record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {name: record[name] for name in fields}


def expected_user(sub: str) -> dict[str, Any]:
    return project(payloads.user(sub), USER_FIELDS)


def expected_orders(sub: str) -> list[dict[str, Any]]:
    return [project(order, ORDER_FIELDS) for order in payloads.orders(sub, 3)]


def expected_recommendations(sub: str) -> list[dict[str, Any]]:
    return [project(item, RECOMMENDATION_FIELDS) for item in payloads.recommendations(sub, 6)]


def metric(name: str, **labels: str) -> float:
    """The current value of one sample on /metrics (0 when it was never recorded)."""
    text = Client().get("/metrics").content.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def served_in(request: Callable[[], Answer]) -> tuple[Answer, float]:
    """The answer to ``request`` and the seconds the BFF itself reports it took to serve
    it (its ``bff_request_duration_seconds`` histogram), not a stopwatch in the test."""
    labels = {"client": "mobile", "endpoint": "home"}
    before = metric("bff_request_duration_seconds_sum", **labels)
    answer = request()
    return answer, metric("bff_request_duration_seconds_sum", **labels) - before


def assert_error(answer: Answer, status: int, code: str, *, retryable: bool = False) -> dict:
    assert answer.status == status, answer.raw
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.body
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"code", "message", "traceId", "retryable"}
    assert (error["code"], error["retryable"]) == (code, retryable)
    assert isinstance(error["message"], str) and error["message"]
    assert error["traceId"] == answer.headers["X-Trace-Id"]
    assert b"Traceback" not in answer.raw
    return error


def assert_nothing_internal(answer: Answer, demo: DemoServices, *secrets: str) -> None:
    """No downstream address, credential or stack trace in a client-facing body."""
    for forbidden in ("Traceback", "127.0.0.1", "localhost", "http://", demo.token, *secrets):
        assert forbidden.encode() not in answer.raw, forbidden
    for url in demo.urls.values():
        assert f":{url.rsplit(':', 1)[1]}".encode() not in answer.raw


# ---------------------------------------------------------------------------- the happy path


def test_serves_the_whitelisted_home_screen_as_compact_json(bff) -> None:
    answer = home("usr_1")

    assert answer.status == 200, answer.raw
    assert answer.raw.startswith(b'{"meta":{"traceId":')
    body = answer.body
    assert json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() == answer.raw
    assert list(body) == ["meta", "user", "recentOrders", "recommendations"]
    assert list(body["user"]) == USER_FIELDS
    assert body["user"] == expected_user("usr_1")
    assert len(body["recentOrders"]) == 3
    assert all(list(order) == ORDER_FIELDS for order in body["recentOrders"])
    assert body["recentOrders"] == expected_orders("usr_1")
    assert len(body["recommendations"]) == 6
    assert all(list(item) == RECOMMENDATION_FIELDS for item in body["recommendations"])
    assert body["recommendations"] == expected_recommendations("usr_1")


def test_meta_and_headers_describe_this_request(bff) -> None:
    before = datetime.now(UTC)
    answer = home("usr_1")

    assert answer.status == 200, answer.raw
    meta = answer.body["meta"]
    assert set(meta) == {
        "traceId", "generatedAt", "latencyMs", "schemaVersion",
        "degraded", "degradedDependencies", "cache",
    }  # fmt: skip
    assert NEW_TRACE_ID.match(meta["traceId"])
    assert meta["traceId"] == answer.headers["X-Trace-Id"]
    assert meta["generatedAt"].endswith("Z")
    generated = datetime.fromisoformat(meta["generatedAt"])
    assert before.replace(microsecond=0) <= generated <= datetime.now(UTC)
    assert type(meta["latencyMs"]) is int and meta["latencyMs"] >= 0
    assert meta["schemaVersion"] == "1.0"
    assert meta["degraded"] is False
    assert meta["degradedDependencies"] == []
    assert meta["cache"] == "miss"  # the first request for this user
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Cache-Control"] == "private, max-age=30, s-maxage=0"
    assert answer.headers["Vary"] == "Authorization, Accept-Encoding"
    assert answer.headers["ETag"].startswith('"')
    assert "X-BFF-Degraded" not in answer.headers


def test_meta_is_built_per_request_even_when_the_page_is_cached(bff) -> None:
    first, second = home("usr_1"), home("usr_1")

    assert (first.body["meta"]["cache"], second.body["meta"]["cache"]) == ("miss", "hit")
    assert first.body["meta"]["traceId"] != second.body["meta"]["traceId"]
    assert second.body["meta"]["traceId"] == second.headers["X-Trace-Id"]
    assert second.raw.startswith(b'{"meta":{"traceId":')
    assert {k: v for k, v in first.body.items() if k != "meta"} == {
        k: v for k, v in second.body.items() if k != "meta"
    }


# usr_6 is recommended headphones: "phone" is in a title, so names are matched as keys.
@pytest.mark.parametrize("sub", ["usr_1", "usr_6", "usr_42", "usr_9821", "usr_123456"])
def test_fields_outside_the_whitelist_never_reach_the_phone(bff, sub: str) -> None:
    answer = home(sub)

    assert answer.status == 200, answer.raw
    for name in NEVER_SENT:
        assert f'"{name}":'.encode() not in answer.raw, name
    user = payloads.user(sub)
    for private in (user["email"], user["phone"], user["dateOfBirth"], user["lastLoginIp"]):
        if private:
            assert private.encode() not in answer.raw, private


# --------------------------------------------------------------------- downstream hygiene


def test_downstream_calls_carry_service_credentials_and_the_trace_id_only(bff) -> None:
    trace_ids = ["client-trace-0001", "client-trace-0002"]
    # Two users, so the second request is not a cache hit that calls nothing.
    answers = [
        home(sub, **{"X-Trace-Id": trace_id})
        for sub, trace_id in zip(["usr_5", "usr_6"], trace_ids, strict=True)
    ]

    for answer, trace_id in zip(answers, trace_ids, strict=True):
        assert answer.status == 200, answer.raw
        assert answer.headers["X-Trace-Id"] == trace_id
        assert answer.body["meta"]["traceId"] == trace_id
    for service in USER_SERVICES:
        stats = bff.stats(service)
        assert stats["total"] == 2, service
        assert stats["unauthorized"] == 0, service
        assert stats["with_authorization"] == 0, service
        assert stats["with_trace_id"] == 2, service
        assert stats["service_accounts"] == {"mobile-bff": 2}, service
        assert stats["trace_ids_seen"] == trace_ids, service
    assert bff.stats("catalog")["total"] == 0


@pytest.mark.parametrize(
    "trace_id",
    ["has spaces in it", "a" * 300, "short", "quote\"and'semicolon;"],
    ids=["spaces", "300-chars", "too-short", "quotes"],
)
def test_a_malformed_client_trace_id_is_replaced_by_a_fresh_one(bff, trace_id: str) -> None:
    answer = home("usr_5", **{"X-Trace-Id": trace_id})

    assert answer.status == 200, answer.raw
    fresh = answer.headers["X-Trace-Id"]
    assert fresh != trace_id
    assert NEW_TRACE_ID.match(fresh)
    assert answer.body["meta"]["traceId"] == fresh
    for service in USER_SERVICES:
        assert bff.stats(service)["trace_ids_seen"] == [fresh], service


# ---------------------------------------------------------------------------- fault matrix


@dataclass(frozen=True)
class Fault:
    """One way a dependency fails, and the outcome label the BFF should count it under."""

    outcome: str
    plan: dict[str, Any] | None = None  # a demo-services fault plan
    refused: bool = False  # the service's URL points at a closed port
    circuit: bool = False  # the breaker is opened by earlier failures first


FAULTS = {
    "timeout": Fault("timeout", {"latency_ms": TEST_DOWNSTREAM["TIMEOUT_SECONDS"] * 3000}),
    "hang": Fault("timeout", {"hang": True}),
    "status-503": Fault("status", {"status": 503}),
    "status-500": Fault("status", {"status": 500}),
    "connection-refused": Fault("unavailable", refused=True),
    "malformed-json": Fault("malformed", {"malformed_json": True}),
    "oversized-body": Fault(
        "too_large", {"oversized_bytes": TEST_DOWNSTREAM["MAX_RESPONSE_BYTES"] * 3}
    ),
    "wrong-content-type": Fault("content_type", {"content_type": "text/html"}),
    "circuit-open": Fault("circuit_open", circuit=True),
}
TIME_BOUND = min(TEST_DOWNSTREAM["TIMEOUT_SECONDS"], TEST_DOWNSTREAM["REQUEST_DEADLINE_SECONDS"])


def inject(demo: DemoServices, settings, service: str, fault: Fault) -> list[str]:
    """Make ``service`` fail as ``fault`` says for the next request; returns what else
    must not leak (the address of a closed port)."""
    leaks: list[str] = []
    if fault.refused:
        port = free_port()
        settings.BFF = {
            **settings.BFF,
            "SERVICES": {**demo.urls, service: f"http://127.0.0.1:{port}"},
        }
        leaks.append(f":{port}")
    if fault.circuit:
        demo.set_faults(service, status=500)
        # Other users than the one asked for next, so no cached page can stand in.
        for n in range(TEST_DOWNSTREAM["CIRCUIT_MINIMUM_CALLS"]):
            home(f"usr_{30 + n}")
        demo.clear_faults(service)
    if fault.plan is not None:
        demo.set_faults(service, **fault.plan)
    return leaks


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_failing_user_service_answers_503_user_profile_unavailable(
    bff, settings, fault: Fault
) -> None:
    leaks = inject(bff, settings, "user", fault)
    calls_before = bff.stats("user")["total"]
    counted = metric("bff_dependency_calls_total", dependency="user", outcome=fault.outcome)
    bearer = mint_token("mobile", "usr_3")

    answer, took = served_in(lambda: get(authorization=f"Bearer {bearer}"))

    assert_error(answer, 503, "USER_PROFILE_UNAVAILABLE", retryable=True)
    assert answer.headers["Cache-Control"] == "no-store"
    secret = settings.BFF["CLIENT_AUTH"]["mobile"].secret
    assert_nothing_internal(answer, bff, bearer, secret, *leaks)
    assert took < TIME_BOUND + MARGIN_SECONDS
    assert metric("bff_dependency_calls_total", dependency="user", outcome=fault.outcome) == (
        counted + 1
    )
    if fault.circuit:
        assert bff.stats("user")["total"] == calls_before, "an open circuit still called out"


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_failing_recommendation_service_degrades_the_page(bff, settings, fault: Fault) -> None:
    leaks = inject(bff, settings, "recommendation", fault)
    calls_before = bff.stats("recommendation")["total"]
    counted = metric(
        "bff_dependency_calls_total", dependency="recommendations", outcome=fault.outcome
    )

    answer, took = served_in(lambda: home("usr_3"))

    assert answer.status == 200, answer.raw
    body = answer.body
    assert body["recommendations"] == []
    assert body["meta"]["degraded"] is True
    assert body["meta"]["degradedDependencies"] == ["recommendations"]
    assert answer.headers["X-BFF-Degraded"] == "recommendations"
    assert body["user"] == expected_user("usr_3")
    assert body["recentOrders"] == expected_orders("usr_3")
    # A degraded page is nobody's to keep, and has no validator to revalidate it with.
    assert answer.headers["Cache-Control"] == "no-store"
    assert "ETag" not in answer.headers
    assert_nothing_internal(answer, bff, *leaks)
    assert took < TIME_BOUND + MARGIN_SECONDS
    assert metric(
        "bff_dependency_calls_total", dependency="recommendations", outcome=fault.outcome
    ) == (counted + 1)
    if fault.circuit:
        assert bff.stats("recommendation")["total"] == calls_before


@pytest.mark.parametrize("fault", ["timeout", "hang"])
def test_timeouts_open_the_circuit_too(bff, fault: str) -> None:
    # A regression test: the fan-out's own guard once fired first, so a timed-out call
    # ended as a cancellation the breaker never counted.
    bff.set_faults("user", **FAULTS[fault].plan)
    for n in range(TEST_DOWNSTREAM["CIRCUIT_MINIMUM_CALLS"]):
        assert home(f"usr_{30 + n}").status == 503
    bff.clear_faults("user")
    calls_before = bff.stats("user")["total"]

    answer = home("usr_3")

    assert_error(answer, 503, "USER_PROFILE_UNAVAILABLE", retryable=True)
    assert bff.stats("user")["total"] == calls_before, "an open circuit still called out"


def test_a_critical_failure_does_not_wait_for_slow_non_critical_dependencies(bff, settings) -> None:
    settings.BFF = {
        **settings.BFF,
        "DOWNSTREAM": {**TEST_DOWNSTREAM, "TIMEOUT_SECONDS": 5.0, "REQUEST_DEADLINE_SECONDS": 6.0},
    }
    bff.set_faults("recommendation", latency_ms=3000)
    bff.set_faults("order", latency_ms=3000)
    bff.set_faults("user", status=503)

    answer, took = served_in(lambda: home("usr_3"))

    assert_error(answer, 503, "USER_PROFILE_UNAVAILABLE", retryable=True)
    assert took < 1.5, f"waited {took:.2f}s for non-critical dependencies"
    assert bff.stats("recommendation")["total"] == 1  # it was asked, then abandoned


@pytest.mark.parametrize("service", ["user", "recommendation"])
def test_the_request_deadline_bounds_the_whole_fan_out(bff, settings, service: str) -> None:
    deadline = 1.5
    settings.BFF = {
        **settings.BFF,
        "DOWNSTREAM": {
            **TEST_DOWNSTREAM,
            "TIMEOUT_SECONDS": 10.0,
            "REQUEST_DEADLINE_SECONDS": deadline,
        },
    }
    bff.set_faults(service, latency_ms=5000)

    answer, took = served_in(lambda: home("usr_3"))

    if service == "user":
        assert_error(answer, 503, "USER_PROFILE_UNAVAILABLE", retryable=True)
    else:
        assert answer.status == 200, answer.raw
        assert answer.body["meta"]["degradedDependencies"] == ["recommendations"]
        assert answer.body["user"] == expected_user("usr_3")
    assert took < deadline + MARGIN_SECONDS


def test_an_unknown_user_is_404_not_found(bff) -> None:
    answer = home("nobody_here")

    assert_error(answer, 404, "NOT_FOUND")
    assert bff.stats("user")["by_user"] == {"nobody_here": 1}


# ---------------------------------------------------------------------------------- auth


def _expired(token: Callable[..., str]) -> str:
    return "Bearer " + token("usr_1", ttl=60, now=time.time() - 3600)


def _unsigned(token: Callable[..., str]) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"sub": "usr_1", "aud": "mobile", "exp": int(time.time()) + 600}
    return f"Bearer {part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _wrong_key(token: Callable[..., str]) -> str:
    claims = {"sub": "usr_1", "aud": "mobile", "exp": int(time.time()) + 600}
    return "Bearer " + jwt.encode(claims, "not-the-secret-" * 4, algorithm="HS256")


UNAUTHENTICATED: dict[str, Callable[[Callable[..., str]], str | None]] = {
    "no-header": lambda token: None,
    "garbage": lambda token: "Bearer garbage",
    "basic-scheme": lambda token: "Basic dXNlcjpwYXNz",
    "bearer-without-token": lambda token: "Bearer ",
    "expired": _expired,
    "alg-none": _unsigned,
    "wrong-key": _wrong_key,
    "sub-with-dot-dot-slash": lambda token: "Bearer " + token("../usr_1"),
    "sub-with-spaces": lambda token: "Bearer " + token("usr 1"),
    "oversized": lambda token: "Bearer " + "a" * 9000,
}


@pytest.mark.parametrize("authorization", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
def test_a_bad_or_missing_token_is_401_and_calls_nothing(bff, token, authorization) -> None:
    answer = get(authorization=authorization(token))

    assert_error(answer, 401, "UNAUTHENTICATED")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    for service in USER_SERVICES:
        assert bff.stats(service)["total"] == 0, service


def test_a_web_token_on_the_mobile_surface_is_403(bff, token) -> None:
    answer = get(authorization="Bearer " + token("usr_1", client="web"))

    assert_error(answer, 403, "FORBIDDEN")
    assert bff.stats("user")["total"] == 0


# ------------------------------------------------------------------------------ versions


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/mobile/v2/home", "VERSION_NOT_FOUND"),
        ("/mobile/v0/home", "VERSION_NOT_FOUND"),
        ("/mobile/vx/home", "NOT_FOUND"),
    ],
    ids=["v2", "v0", "vx"],
)
def test_a_version_that_does_not_exist_is_404_in_the_envelope(bff, path: str, code: str) -> None:
    answer = get(path, authorization="Bearer " + mint_token("mobile", "usr_1"))

    assert_error(answer, 404, code)
    assert bff.stats("user")["total"] == 0


# --------------------------------------------------------------------------- concurrency


async def _home_for_all(url: str, tokens: dict[str, str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=30.0, trust_env=False
    ) as client:
        return await asyncio.gather(
            *(client.get(URL, headers={"Authorization": f"Bearer {t}"}) for t in tokens.values())
        )


def _warm_up(url: str, timeout: float = 30.0) -> None:
    """Until a concurrent batch all succeeds, so both workers have loaded the registry."""
    tokens = {f"warm-up-{n}": mint_token("mobile", "usr_0") for n in range(24)}
    deadline = time.monotonic() + timeout
    while not all(r.status_code == 200 for r in asyncio.run(_home_for_all(url, tokens))):
        assert time.monotonic() < deadline, "the BFF never served mobile home"
        time.sleep(0.1)


def test_200_concurrent_users_each_get_their_own_data(
    demo_services: DemoServices, tmp_path: Path
) -> None:
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'bff.sqlite3'}",
        RATE_LIMITS="off",
        # This test is about isolation, not latency: a loaded machine must not degrade it.
        DOWNSTREAM_TIMEOUT_SECONDS="15",
        REQUEST_DEADLINE_SECONDS="20",
        LOG_LEVEL="WARNING",
        **demo_services.env,
    )
    env.pop("REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    seed(env)
    users = [f"usr_{n}" for n in range(1, 201)]
    tokens = {user: mint_token("mobile", user) for user in users}

    with LiveBFF(env, workers=2, migrate=False) as live:
        _warm_up(live.url)
        demo_services.reset()
        responses = asyncio.run(_home_for_all(live.url, tokens))
        server_log = live.log()[-3000:]

    for user, response in zip(users, responses, strict=True):
        assert response.status_code == 200, (user, response.text, server_log)
        body = response.json()
        assert body["user"]["userId"] == user
        assert body["user"] == expected_user(user)
        assert body["recentOrders"] == expected_orders(user)
        assert body["recommendations"] == expected_recommendations(user)
    for service in USER_SERVICES:
        assert demo_services.stats(service)["by_user"] == dict.fromkeys(users, 1), service


# ------------------------------------------------------------------ metrics and logging


def test_a_degraded_response_is_counted_in_metrics(bff) -> None:
    labels = {"client": "mobile", "endpoint": "home", "dependency": "recommendations"}
    degraded = metric("bff_degraded_responses_total", **labels)
    failed = metric("bff_dependency_calls_total", dependency="recommendations", outcome="status")
    bff.set_faults("recommendation", status=503)

    assert home("usr_3").status == 200

    assert metric("bff_degraded_responses_total", **labels) == degraded + 1
    assert metric("bff_dependency_calls_total", dependency="recommendations", outcome="status") == (
        failed + 1
    )


def test_a_503_is_counted_by_status(bff) -> None:
    labels = {"client": "mobile", "endpoint": "home", "status": "503"}
    before = metric("bff_requests_total", **labels)
    bff.set_faults("user", status=503)

    assert home("usr_3").status == 503

    assert metric("bff_requests_total", **labels) == before + 1


def test_a_degraded_dependency_is_logged_once_with_the_trace_id(bff, caplog) -> None:
    bff.set_faults("recommendation", malformed_json=True)
    caplog.set_level(logging.WARNING, logger="aggregation.fanout")

    answer = home("usr_3", **{"X-Trace-Id": "trace-for-the-log-0001"})

    assert answer.status == 200, answer.raw
    records = [r for r in caplog.records if r.getMessage() == "dependency degraded"]
    assert len(records) == 1
    record = records[0]
    assert record.traceId == "trace-for-the-log-0001"
    assert record.dependency == "recommendations"
    assert record.outcome == "malformed"
    assert record.levelno == logging.WARNING
