"""httpx's transport interface over aiohttp's connection pool, for the downstream clients.

Why: over httpx's own pool (httpcore) a mobile home fan-out costs the BFF about a third
more CPU than over aiohttp's, much of it httpcore checking every pooled connection for
expiry on every request; on two shared cores CPU becomes latency under load
(``docs/performance.md`` has the figures).
The clients keep httpx's API (``AsyncClient.stream``, timeouts, ``aiter_bytes``); only the
wire underneath changes.

aiohttp's failures leave here as httpx's, so ``downstream.map_transport_errors`` stays the
one place where transport errors become ours:

    refused, unreachable, DNS           httpx.ConnectError
    connect timeout                     httpx.ConnectTimeout
    read timeout                        httpx.ReadTimeout
    disconnected before an answer,
    truncated body, malformed HTTP      httpx.RemoteProtocolError
    reset, other socket errors          httpx.ReadError
    anything else aiohttp raises        httpx.TransportError
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
import yarl


@contextlib.contextmanager
def map_aiohttp_errors(request: httpx.Request) -> Iterator[None]:
    # Most specific first: ClientConnectorError is a ClientOSError, ConnectionTimeoutError
    # a ServerTimeoutError, ServerTimeoutError a ServerConnectionError.
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc), request=request) from exc
    except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientPayloadError,
        aiohttp.ClientResponseError,
    ) as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except aiohttp.ClientConnectionError as exc:
        raise httpx.ReadError(str(exc), request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc), request=request) from exc


class _ResponseStream(httpx.AsyncByteStream):
    """An aiohttp response body as httpx reads it: chunks as they arrive."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with map_aiohttp_errors(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A body read whole returns the connection to the pool; a body left unread (an
        # error status, a body cut off at the size limit) closes it.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncClient`` transport on one ``aiohttp`` session (pool) per event loop."""

    def __init__(self, limits: httpx.Limits) -> None:
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Built inside the running loop on first use: aiohttp binds a session to its loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.limits.max_connections or 0,
                limit_per_host=0,
                keepalive_timeout=self.limits.keepalive_expiry or 0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # httpx decodes bodies, keeps no cookies we want, and follows no redirects.
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        with map_aiohttp_errors(request):
            response = await self._get_session().request(
                request.method,
                # httpx has already encoded the URL; a plain string would let yarl decode
                # "%2E%2E" back into "..", remove it as a dot segment and call another path.
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeouts.get("pool"),
                    sock_connect=timeouts.get("connect"),
                    sock_read=timeouts.get("read"),
                ),
            )
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
