"""Calls to the internal services: pooled clients, service credentials, failures as data.

    DownstreamError                 (outcome label in metrics and logs)
    ├── DownstreamTimeout           timeout       no answer within the dependency's timeout
    ├── DownstreamUnavailable       unavailable   refused, reset, DNS: nothing to talk to
    ├── DownstreamStatus            status        a 5xx or unexpected 4xx answer
    ├── DownstreamNotFound          not_found     a 404: the thing asked for does not exist
    ├── DownstreamMalformed         malformed     the body is not the JSON it should be
    ├── DownstreamBadContentType    content_type  the body is not declared JSON at all
    ├── DownstreamTooLarge          too_large     the body exceeds the size limit
    └── CircuitOpen                 circuit_open  the breaker refused the call

Every call carries ``X-Service-Account: <client>-bff``, ``X-Internal-Token``,
``X-Trace-Id`` and W3C ``traceparent`` (``tracestate`` when the client sent one), and
nothing else from the client's request (its ``Authorization`` above all).
``map_transport_errors`` is the one place httpx's exceptions become ours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from urllib.parse import quote

import httpx
import orjson

from aggregation.circuit import CircuitBreaker, CircuitState
from aggregation.conf import bff_settings
from aggregation.perloop import PerLoop
from aggregation.transport import AiohttpTransport

DEFAULT_MAX_BYTES = 1_048_576


class DownstreamError(Exception):
    """A call to an internal service failed; ``outcome`` names how, for metrics."""

    outcome = "error"

    def __init__(self, service: str, detail: str = "") -> None:
        super().__init__(f"{service}: {self.outcome}{': ' + detail if detail else ''}")
        self.service = service
        self.detail = detail


class DownstreamTimeout(DownstreamError):
    """No complete answer within the timeout (slow, or hanging)."""

    outcome = "timeout"


class DownstreamUnavailable(DownstreamError):
    """The connection could not be made or broke (refused, reset, DNS)."""

    outcome = "unavailable"


class DownstreamStatus(DownstreamError):
    """The service answered with an error status."""

    outcome = "status"

    def __init__(self, service: str, status: int) -> None:
        super().__init__(service, f"HTTP {status}")
        self.status = status


class DownstreamNotFound(DownstreamError):
    """The service answered 404: what was asked for does not exist. Not a failure."""

    outcome = "not_found"


class DownstreamMalformed(DownstreamError):
    """The body is not valid JSON, or not the JSON structure expected."""

    outcome = "malformed"


class DownstreamBadContentType(DownstreamError):
    """The answer does not declare a JSON body."""

    outcome = "content_type"


class DownstreamTooLarge(DownstreamError):
    """The body is larger than the limit; it was not read whole."""

    outcome = "too_large"


class CircuitOpen(DownstreamError):
    """The service's breaker is open: the call was not made."""

    outcome = "circuit_open"


@contextlib.contextmanager
def map_transport_errors(service: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise DownstreamTimeout(service, type(exc).__name__) from exc
    except (
        httpx.ConnectError,
        httpx.RemoteProtocolError,
        httpx.ReadError,
        httpx.WriteError,
        httpx.NetworkError,
    ) as exc:
        raise DownstreamUnavailable(service, type(exc).__name__) from exc
    except httpx.TransportError as exc:
        raise DownstreamUnavailable(service, type(exc).__name__) from exc


def path_segment(value: str) -> str:
    """Encode an id as exactly one URL path segment, whatever its characters.

    ``quote`` leaves ``.`` alone, and URL parsers (httpx's included) remove the dot
    segments ``.`` and ``..`` (RFC 3986 section 5.2.4): ``/users/../orders`` would call
    ``/orders``. Percent-encoded dots are data, not dot segments, so every dot is encoded.
    An empty value would merge two slashes into one path: it is refused.
    """
    if not value:
        raise ValueError("an empty id cannot be a path segment")
    return quote(value, safe="").replace(".", "%2E")


# What httpx's client would have sent besides ours: bodies it can decode, its name.
_DEFAULT_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"python-httpx/{httpx.__version__}",
}

# Keeping connections open to the few internal services is the point of pooling; the
# default keep-alive limit of 20 would make the 21st concurrent request reconnect.
POOL_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=30)


class ServiceClient:
    """One internal service: its base URL, its pooled client, its circuit breaker."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        breaker: CircuitBreaker,
        max_bytes: int = DEFAULT_MAX_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.breaker = breaker
        self.max_bytes = max_bytes
        self.transport = transport
        # One pool per event loop (one per worker process in production).
        self._transports = PerLoop(self._new_transport)
        self._prefix = base_url.rstrip("/")

    def _new_transport(self) -> httpx.AsyncBaseTransport:
        # aiohttp's pool under httpx's transport interface: a quarter less CPU per fan-out
        # than httpx's own pool (aggregation/transport.py, docs/performance.md).
        return self.transport or AiohttpTransport(POOL_LIMITS)

    async def get_json(
        self,
        path: str,
        *,
        client_surface: str,
        trace_id: str,
        params: Mapping[str, str | int] | None = None,
        time_limit: float,
        trace_headers: Mapping[str, str] | None = None,
    ) -> object:
        """GET a JSON document; DownstreamError on any failure. Honours the breaker."""
        if not self.breaker.allow():
            raise CircuitOpen(self.name)
        try:
            value = await self._get_json(
                path, client_surface, trace_id, params, time_limit, trace_headers
            )
        except DownstreamNotFound:
            self.breaker.record_success()  # the service works; the thing does not exist
            raise
        except DownstreamError:
            self.breaker.record_failure()
            raise
        except BaseException:
            self.breaker.release()  # cancelled: no verdict on the service
            raise
        self.breaker.record_success()
        return value

    async def _get_json(
        self, path, client_surface, trace_id, params, time_limit, trace_headers=None
    ) -> object:
        headers = {
            **_DEFAULT_HEADERS,
            "X-Service-Account": f"{client_surface}-bff",
            "X-Internal-Token": bff_settings.INTERNAL_SERVICE_TOKEN,
            "X-Trace-Id": trace_id,
        }
        if trace_headers:
            headers.update(trace_headers)
        # The request goes straight to the transport: an AsyncClient would merge a base URL
        # and default headers, and look for cookies and redirects, at about half the CPU
        # of the whole call (docs/performance.md); none of it is wanted here.
        timeouts = {
            "connect": time_limit,
            "read": time_limit,
            "write": time_limit,
            "pool": time_limit,
        }
        try:
            async with asyncio.timeout(time_limit):
                with map_transport_errors(self.name):
                    request = httpx.Request(
                        "GET",
                        self._prefix + path,
                        params=params,
                        headers=headers,
                        extensions={"timeout": timeouts},
                    )
                    response = await self._transports.get().handle_async_request(request)
                    try:
                        return await self._read(response)
                    finally:
                        await response.aclose()
        except TimeoutError:
            raise DownstreamTimeout(self.name, f"no answer within {time_limit:.3f}s") from None

    async def _read(self, response: httpx.Response) -> object:
        if response.status_code == 404:
            raise DownstreamNotFound(self.name)
        if not 200 <= response.status_code < 300:
            raise DownstreamStatus(self.name, response.status_code)
        content_type = response.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise DownstreamBadContentType(self.name, content_type[:100])
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise DownstreamTooLarge(self.name, f"{declared} bytes declared")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self.max_bytes:
                raise DownstreamTooLarge(self.name, f"over {self.max_bytes} bytes")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise DownstreamMalformed(self.name, "invalid JSON") from exc

    async def aclose(self) -> None:
        await self._transports.aclose_all()


def _breaker_changed(name: str, state: CircuitState) -> None:
    from aggregation import metrics

    metrics.CIRCUIT_STATE.labels(service=name).set(int(state))


class Services:
    """The process's service clients, built from settings on first use (and again after
    ``SERVICES`` or ``DOWNSTREAM`` change: tests override them)."""

    def __init__(self) -> None:
        self._clients: dict[str, ServiceClient] = {}

    def reset(self) -> None:
        """Forget every client and breaker; the next call rebuilds them from settings."""
        self._clients = {}

    async def aclose(self) -> None:
        """Close every client's connection pool (at shutdown)."""
        for client in list(self._clients.values()):
            await client.aclose()

    def __getitem__(self, name: str) -> ServiceClient:
        client = self._clients.get(name)
        if client is None:
            downstream = bff_settings.DOWNSTREAM
            client = ServiceClient(
                name,
                bff_settings.SERVICES[name],
                breaker=CircuitBreaker(
                    name,
                    failure_rate=downstream["CIRCUIT_FAILURE_RATE"],
                    minimum_calls=downstream["CIRCUIT_MINIMUM_CALLS"],
                    window_seconds=downstream["CIRCUIT_WINDOW_SECONDS"],
                    half_open_calls=downstream["CIRCUIT_HALF_OPEN_CALLS"],
                    reset_seconds=downstream["CIRCUIT_RESET_SECONDS"],
                    on_change=_breaker_changed,
                ),
                max_bytes=downstream["MAX_RESPONSE_BYTES"],
            )
            self._clients[name] = client
        return client


services = Services()
bff_settings.on_change(services.reset, "SERVICES", "DOWNSTREAM")
