"""The edge guard: size limits and forwarded-header hygiene, before Django sees a request.

uvicorn's httptools parser accepts request lines and headers of any size (a 32 MB header
grew a worker by 66 MB), and Django trusts ``X-Forwarded-Proto`` from whoever sends it.
The load balancer should refuse oversized requests first (``docs/operations.md``); this
guard is the application's own line, so a direct connection cannot get past it either.

- A request target (path and query) over ``max_target_bytes`` answers 414, headers over
  ``max_header_bytes`` in total answer 431, both in the error envelope.
- ``X-Forwarded-Proto`` is dropped unless the server already honoured it: uvicorn's proxy
  middleware sets the scheme from it only for peers in ``--forwarded-allow-ips``
  (``FORWARDED_ALLOW_IPS``). Django's ``SECURE_PROXY_SSL_HEADER`` then sees the header
  only when it came from a trusted proxy.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]

FORWARDED_PROTO = b"x-forwarded-proto"
# Per header line: name, ": ", value, CRLF.
HEADER_OVERHEAD = 4


def _target_bytes(scope: Scope) -> int:
    path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    return len(path) + len(scope.get("query_string") or b"")


def _header_bytes(scope: Scope) -> int:
    return sum(len(name) + len(value) + HEADER_OVERHEAD for name, value in scope["headers"])


async def _refuse(send: Callable, status: int, message: str) -> None:
    trace_id = uuid.uuid4().hex
    body = orjson.dumps(
        {
            "error": {
                "code": "INVALID_REQUEST",
                "message": message,
                "traceId": trace_id,
                "retryable": False,
            }
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"x-trace-id", trace_id.encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def edge_guard(app: ASGIApp, *, max_target_bytes: int, max_header_bytes: int) -> ASGIApp:
    """Wrap an ASGI app with the limits and header hygiene described above."""

    async def guarded(scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            if _target_bytes(scope) > max_target_bytes:
                await _refuse(send, 414, f"The request target is over {max_target_bytes} bytes.")
                return
            if _header_bytes(scope) > max_header_bytes:
                await _refuse(send, 431, f"The request headers are over {max_header_bytes} bytes.")
                return
            if scope.get("scheme") != "https":
                headers = scope["headers"]
                if any(name == FORWARDED_PROTO for name, _ in headers):
                    scope["headers"] = [(n, v) for n, v in headers if n != FORWARDED_PROTO]
        await app(scope, receive, send)

    return guarded
