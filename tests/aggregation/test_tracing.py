"""Trace context: W3C traceparent/tracestate accepted, shown and propagated to every service."""

from __future__ import annotations

import httpx
import pytest
from django.test import RequestFactory

from aggregation.tokens import mint_token
from contract_core.tracing import TraceContext, parse_traceparent, trace_context_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (TRACEPARENT, (TRACE, PARENT, "01")),
        (f"00-{TRACE}-{PARENT}-00", (TRACE, PARENT, "00")),
        (f"cc-{TRACE}-{PARENT}-03-what-the-future-adds", (TRACE, PARENT, "01")),
        (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 is exactly 55 characters
        (f"ff-{TRACE}-{PARENT}-01", None),
        (f"00-{'0' * 32}-{PARENT}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE.upper()}-{PARENT}-01", None),
        (f"00-{TRACE[:-1]}-{PARENT}-01", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_traceparent_is_parsed_per_the_w3c_rules(value, parsed) -> None:
    assert parse_traceparent(value) == parsed


def context(**headers: str) -> TraceContext:
    return trace_context_for(RequestFactory().get("/mobile/v1/home", headers=headers))


def test_a_valid_traceparent_decides_the_trace_id_over_x_trace_id() -> None:
    trace = context(traceparent=TRACEPARENT, tracestate="vendor=abc", **{"X-Trace-Id": "mine-123"})
    assert trace.trace_id == TRACE
    sent = trace.headers()
    assert sent["X-Trace-Id"] == TRACE
    assert sent["traceparent"].startswith(f"00-{TRACE}-") and sent["traceparent"].endswith("-01")
    assert sent["traceparent"] != TRACEPARENT  # our call is a new span under the client's
    assert sent["tracestate"] == "vendor=abc"


def test_an_invalid_traceparent_is_ignored_with_its_tracestate() -> None:
    trace = context(traceparent=f"00-{'0' * 32}-{PARENT}-01", tracestate="vendor=abc")
    assert trace.trace_id != "0" * 32
    sent = trace.headers()
    assert sent["traceparent"].startswith(f"00-{trace.trace_id}-")
    assert "tracestate" not in sent


def test_an_x_trace_id_that_is_not_w3c_still_gets_a_w3c_trace_downstream() -> None:
    trace = context(**{"X-Trace-Id": "checkout-flow-42"})
    assert trace.trace_id == "checkout-flow-42"
    assert parse_traceparent(trace.headers()["traceparent"]) is not None


def test_a_tracestate_that_is_too_long_or_odd_is_dropped() -> None:
    assert context(traceparent=TRACEPARENT, tracestate="a=" + "b" * 600).tracestate is None
    assert context(traceparent=TRACEPARENT, tracestate="a=b\x01").tracestate is None


# -- over real HTTP -----------------------------------------------------------------------

SERVICES = ("user", "order", "recommendation")


def home(live_bff, sub: str, **headers: str) -> httpx.Response:
    token = mint_token("mobile", sub)
    return httpx.get(
        live_bff.url + "/mobile/v1/home",
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=30.0,
    )


def test_a_clients_traceparent_reaches_every_internal_service_in_the_same_trace(
    live_bff, demo_services
) -> None:
    response = home(live_bff, "usr_721", traceparent=TRACEPARENT, tracestate="congo=t61rcWkgMzE")
    assert response.status_code == 200
    assert response.headers["X-Trace-Id"] == TRACE
    assert response.json()["meta"]["traceId"] == TRACE
    parents = set()
    for service in SERVICES:
        stats = demo_services.stats(service)
        assert stats["trace_ids_seen"] == [TRACE], service
        [seen] = stats["traceparents_seen"]
        traceparent, tracestate = seen.split(" ")
        version, trace, parent, flags = traceparent.split("-")
        assert (version, trace, flags) == ("00", TRACE, "01"), service
        assert parent != PARENT
        parents.add(parent)
        assert tracestate == "congo=t61rcWkgMzE"
    assert len(parents) == len(SERVICES)  # one span id per call


def test_an_invalid_traceparent_gets_a_fresh_trace_that_reaches_every_service(
    live_bff, demo_services
) -> None:
    response = home(live_bff, "usr_722", traceparent="00-xyz", tracestate="congo=t61rcWkgMzE")
    assert response.status_code == 200
    fresh = response.headers["X-Trace-Id"]
    assert response.json()["meta"]["traceId"] == fresh
    for service in SERVICES:
        [seen] = demo_services.stats(service)["traceparents_seen"]
        assert seen.startswith(f"00-{fresh}-"), service
        assert " " not in seen  # no tracestate without a valid traceparent


def test_an_error_carries_the_clients_trace_id(live_bff, demo_services) -> None:
    response = httpx.get(
        live_bff.url + "/mobile/v1/home", headers={"traceparent": TRACEPARENT}, timeout=30.0
    )
    assert response.status_code == 401
    assert response.headers["X-Trace-Id"] == TRACE
    assert response.json()["error"]["traceId"] == TRACE
