"""The downstream client over httpx.MockTransport: headers, limits, errors as data."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from aggregation.circuit import CircuitBreaker
from aggregation.downstream import (
    CircuitOpen,
    DownstreamBadContentType,
    DownstreamMalformed,
    DownstreamNotFound,
    DownstreamStatus,
    DownstreamTimeout,
    DownstreamTooLarge,
    DownstreamUnavailable,
    ServiceClient,
    path_segment,
)
from tests.timing import hang


def client(handler, *, max_bytes: int = 1024, threshold: int = 5) -> ServiceClient:
    return ServiceClient(
        "user",
        "http://user.internal",
        max_bytes=max_bytes,
        breaker=CircuitBreaker("user", failure_rate=1.0, minimum_calls=threshold),
        transport=httpx.MockTransport(handler),
    )


def call(service: ServiceClient, path: str = "/users/usr_1", time_limit: float = 1.0):
    return asyncio.run(
        service.get_json(
            path, client_surface="mobile", trace_id="trace-123456", time_limit=time_limit
        )
    )


def json_response(body: bytes, status: int = 200, content_type: str = "application/json"):
    return httpx.Response(status, content=body, headers={"content-type": content_type})


def test_sends_service_credentials_and_the_trace_id_only(settings) -> None:
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return json_response(b'{"userId":"usr_1"}')

    assert call(client(handler)) == {"userId": "usr_1"}
    headers = seen[0].headers
    assert headers["x-service-account"] == "mobile-bff"
    assert headers["x-internal-token"] == settings.BFF["INTERNAL_SERVICE_TOKEN"]
    assert headers["x-trace-id"] == "trace-123456"
    assert "authorization" not in headers


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (json_response(b"{}", 404), DownstreamNotFound),
        (json_response(b"{}", 503), DownstreamStatus),
        (json_response(b"{}", 500), DownstreamStatus),
        (json_response(b"{}", 401), DownstreamStatus),
        (json_response(b'{"userId": "us', 200), DownstreamMalformed),
        (json_response(b"<html></html>", 200, "text/html"), DownstreamBadContentType),
        (json_response(b"{}", 200, ""), DownstreamBadContentType),
        (json_response(b'{"pad":"' + b"x" * 5000 + b'"}'), DownstreamTooLarge),
    ],
    ids=["404", "503", "500", "401", "malformed", "html", "no-content-type", "too-large"],
)
def test_bad_answers_become_typed_errors(response, error) -> None:
    with pytest.raises(error):
        call(client(lambda request: response))


def test_oversized_body_without_content_length_is_cut_off_while_streaming() -> None:
    async def stream():
        for _ in range(100):
            yield b"x" * 512

    def handler(request):
        return httpx.Response(200, content=stream(), headers={"content-type": "application/json"})

    with pytest.raises(DownstreamTooLarge):
        call(client(handler))


def test_refused_connection_is_unavailable() -> None:
    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(DownstreamUnavailable):
        call(client(handler))


def test_slow_answer_is_a_timeout() -> None:
    async def handler(request):
        await hang()
        return json_response(b"{}")

    with pytest.raises(DownstreamTimeout):
        call(client(handler), time_limit=0.05)


def test_failures_open_the_circuit_and_then_nothing_is_sent() -> None:
    calls: list[int] = []

    def handler(request):
        calls.append(1)
        return json_response(b"{}", 503)

    service = client(handler, threshold=2)
    for _ in range(2):
        with pytest.raises(DownstreamStatus):
            call(service)
    with pytest.raises(CircuitOpen):
        call(service)
    assert len(calls) == 2


def test_not_found_does_not_count_against_the_service() -> None:
    service = client(lambda request: json_response(b"{}", 404), threshold=1)
    for _ in range(3):
        with pytest.raises(DownstreamNotFound):
            call(service)


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [("usr_1", "usr_1"), ("../admin", "%2E%2E%2Fadmin"), ("a b", "a%20b"), ("x?y#z", "x%3Fy%23z")],
)
def test_ids_are_encoded_as_one_path_segment(raw, encoded) -> None:
    assert path_segment(raw) == encoded
