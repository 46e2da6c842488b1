"""The aiohttp transport under httpx's API, over real sockets: answers, pooling, failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx
import pytest

from aggregation.circuit import CircuitBreaker
from aggregation.downstream import (
    DownstreamTimeout,
    DownstreamTooLarge,
    DownstreamUnavailable,
    ServiceClient,
)
from aggregation.transport import AiohttpTransport
from tests.conftest import free_port
from tests.timing import hang

LIMITS = httpx.Limits(max_connections=10, keepalive_expiry=30)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answer(body: bytes, *, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


async def serve(handler: Handler, scenario: Callable[[str], Awaitable[object]]) -> object:
    """Run ``scenario(base_url)`` against a one-off TCP server speaking ``handler``."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await scenario(f"http://127.0.0.1:{port}")
    finally:
        server.close()


async def fetch(base_url: str, path: str = "/x", read_timeout: float = 2.0) -> httpx.Response:
    transport = AiohttpTransport(LIMITS)
    async with (
        httpx.AsyncClient(transport=transport, timeout=read_timeout) as client,
        client.stream("GET", base_url + path) as response,
    ):
        await response.aread()
        return response


def test_answers_arrive_through_httpx_with_status_headers_and_body() -> None:
    seen: list[bytes] = []

    async def handler(reader, writer):
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer(b'{"ok":true}', status="201 Created", extra=b"X-Test: yes\r\n"))
        await writer.drain()
        writer.close()

    response = asyncio.run(serve(handler, lambda url: fetch(url, "/users/usr_1?limit=3")))

    assert response.status_code == 201
    assert response.headers["x-test"] == "yes"
    assert response.json() == {"ok": True}
    assert seen[0].startswith(b"GET /users/usr_1?limit=3 HTTP/1.1\r\n")


def test_connections_are_kept_alive_and_reused() -> None:
    connections: list[int] = []

    async def handler(reader, writer):
        connections.append(1)
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            writer.write(answer(b"{}"))
            await writer.drain()
        writer.close()

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient(transport=AiohttpTransport(LIMITS)) as client:
            for _ in range(3):
                assert (await client.get(url + "/x")).status_code == 200

    asyncio.run(serve(handler, scenario))

    assert len(connections) == 1


def test_refused_connection_is_a_connect_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(httpx.ConnectError):
        asyncio.run(fetch(url))


@pytest.mark.parametrize(
    "reply",
    [
        b"",  # the server hangs up without answering
        b"NOT HTTP AT ALL\r\n\r\n",  # a malformed status line
        answer(b'{"truncated":')[:-3],  # Content-Length promises more than arrives
    ],
    ids=["disconnected", "malformed-http", "truncated-body"],
)
def test_broken_answers_are_protocol_errors(reply: bytes) -> None:
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(serve(handler, fetch))


def test_a_silent_server_is_a_read_timeout() -> None:
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        with contextlib.suppress(asyncio.CancelledError):  # ends quietly with the test's loop
            await hang()

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(serve(handler, lambda url: fetch(url, read_timeout=0.1)))


def service(base_url: str, *, max_bytes: int = 1024) -> ServiceClient:
    return ServiceClient(
        "user", base_url, breaker=CircuitBreaker("user", minimum_calls=99), max_bytes=max_bytes
    )


async def get_json(client: ServiceClient, time_limit: float = 1.0) -> object:
    try:
        return await client.get_json(
            "/x", client_surface="mobile", trace_id="trace-123456", time_limit=time_limit
        )
    finally:
        await client.aclose()


def test_the_service_client_uses_it_and_maps_its_failures(settings) -> None:
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b'{"userId":"usr_1"}'))
        await writer.drain()
        writer.close()

    assert asyncio.run(serve(handler, lambda url: get_json(service(url)))) == {"userId": "usr_1"}
    with pytest.raises(DownstreamUnavailable):
        asyncio.run(get_json(service(f"http://127.0.0.1:{free_port()}")))


def test_a_body_over_the_limit_is_cut_off_while_streaming(settings) -> None:
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        # No Content-Length: only counting the streamed bytes can catch it.
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(64):
            writer.write(b"400\r\n" + b" " * 1024 + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        writer.close()

    with pytest.raises(DownstreamTooLarge):
        asyncio.run(serve(handler, lambda url: get_json(service(url, max_bytes=4096))))


def test_the_service_client_time_limit_holds_over_it(settings) -> None:
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        with contextlib.suppress(asyncio.CancelledError):  # ends quietly with the test's loop
            await hang()

    with pytest.raises(DownstreamTimeout):
        asyncio.run(serve(handler, lambda url: get_json(service(url), time_limit=0.1)))
