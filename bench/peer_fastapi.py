"""The FastAPI peer: a mobile home BFF written for speed, to measure the product against.

SPEC section 10 sets the cache-hit target as a ratio to "a FastAPI BFF written for speed
on the same machine in the same run". This is that BFF, with no more than the essentials
of the product's hit and miss paths, each done the fast way:

- ``GET /mobile/v1/home``: the bearer token verified with PyJWT (HS256, ``aud=mobile``,
  ``exp`` and ``sub`` required), then the user's sections from an in-process dict with
  a 30-second expiry; on a miss, the user, order and recommendation services called
  concurrently over one aiohttp session per worker and projected through the default
  mobile v1 whitelist. The body is the product's: ``meta`` built per request, the cached
  sections spliced in as bytes (orjson), compact JSON.
- Errors are the product's envelope; ``/readyz`` and an empty ``/metrics`` let the
  benchmark harness start and measure it like the product.

Left out, because the product's figures must carry them and a peer's need not: the
contract registry and its versioned keys, single flight and locks, stale grace, rate
limits, circuit breakers, metrics, compression. Not part of the product; never imported
by it. Needs ``fastapi`` (a benchmark-only package: ``pip install fastapi``).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

import aiohttp
import jwt
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

SECRET = os.environ.get("JWT_SECRET", "")
TOKEN = os.environ.get("INTERNAL_SERVICE_TOKEN", "")
SERVICES = {
    "user": os.environ.get("USER_SERVICE_URL", "http://127.0.0.1:9101"),
    "order": os.environ.get("ORDER_SERVICE_URL", "http://127.0.0.1:9102"),
    "recommendation": os.environ.get("RECOMMENDATION_SERVICE_URL", "http://127.0.0.1:9103"),
}
TTL_SECONDS = 30.0
TIMEOUT = aiohttp.ClientTimeout(total=1.0)
USER_FIELDS = ("userId", "displayName", "avatarUrl", "loyaltyTier")
ORDER_FIELDS = ("orderId", "status", "estimatedDelivery", "itemCount")
RECOMMENDATION_FIELDS = ("productId", "thumbnailUrl", "title", "priceFormatted")
PRIVATE = {"Cache-Control": "private, max-age=30, s-maxage=0", "Vary": "Authorization"}

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
_cache: dict[str, tuple[float, bytes]] = {}
_session: aiohttp.ClientSession | None = None


def _error(status: int, code: str, message: str, trace_id: str) -> Response:
    body = {"error": {"code": code, "message": message, "traceId": trace_id,
                      "retryable": status == 503}}  # fmt: skip
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={"X-Trace-Id": trace_id, "Cache-Control": "no-store"})  # fmt: skip


async def _get(service: str, path: str, trace_id: str) -> object:
    global _session
    if _session is None:
        _session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=30)
        )
    headers = {"X-Service-Account": "mobile-bff", "X-Internal-Token": TOKEN,
               "X-Trace-Id": trace_id}  # fmt: skip
    async with _session.get(SERVICES[service] + path, headers=headers, timeout=TIMEOUT) as answer:
        answer.raise_for_status()
        return orjson.loads(await answer.read())


def _pick(record: object, fields: tuple[str, ...]) -> dict:
    return {name: record.get(name) for name in fields} if isinstance(record, dict) else {}


async def _fan_out(user_id: str, trace_id: str) -> tuple[bytes | None, list[str]]:
    user, orders, recommendations = await asyncio.gather(
        _get("user", f"/users/{user_id}", trace_id),
        _get("order", f"/users/{user_id}/orders?limit=3", trace_id),
        _get("recommendation", f"/users/{user_id}/recommendations?limit=6", trace_id),
        return_exceptions=True,
    )
    if isinstance(user, BaseException):
        return None, []
    degraded = []
    sections: dict[str, object] = {"user": _pick(user, USER_FIELDS)}
    for name, key, payload, fields, dependency in (
        ("recentOrders", "orders", orders, ORDER_FIELDS, "orders"),
        ("recommendations", "items", recommendations, RECOMMENDATION_FIELDS, "recommendations"),
    ):
        if isinstance(payload, BaseException) or not isinstance(payload, dict):
            sections[name] = []
            degraded.append(dependency)
        else:
            sections[name] = [_pick(item, fields) for item in payload.get(key, [])]
    return orjson.dumps(sections), degraded


@app.get("/mobile/v1/home")
async def mobile_home(request: Request) -> Response:
    started = time.perf_counter()
    trace_id = request.headers.get("x-trace-id") or os.urandom(16).hex()
    authorization = request.headers.get("authorization", "")
    if not authorization.startswith("Bearer "):
        return _error(401, "UNAUTHENTICATED", "A valid bearer token is required.", trace_id)
    try:
        claims = jwt.decode(authorization[7:], SECRET, algorithms=["HS256"], audience="mobile",
                            options={"require": ["exp", "sub"]})  # fmt: skip
    except jwt.PyJWTError:
        return _error(401, "UNAUTHENTICATED", "A valid bearer token is required.", trace_id)
    user_id = claims["sub"]
    now = time.time()
    cached = _cache.get(user_id)
    degraded: list[str] = []
    if cached is not None and cached[0] > now:
        sections, state = cached[1], "hit"
    else:
        sections, degraded = await _fan_out(user_id, trace_id)
        if sections is None:
            message = "The user profile is temporarily unavailable."
            return _error(503, "USER_PROFILE_UNAVAILABLE", message, trace_id)
        if not degraded:
            _cache[user_id] = (now + TTL_SECONDS, sections)
        state = "miss"
    meta = {
        "traceId": trace_id,
        "generatedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "latencyMs": round((time.perf_counter() - started) * 1000),
        "schemaVersion": "1.0",
        "degraded": bool(degraded),
        "degradedDependencies": degraded,
        "cache": state,
    }
    body = b'{"meta":' + orjson.dumps(meta) + b"," + sections[1:]
    return Response(
        body, media_type="application/json", headers={**PRIVATE, "X-Trace-Id": trace_id}
    )


@app.get("/readyz")
async def readyz() -> Response:
    return Response(b'{"ready":true}', media_type="application/json")


@app.get("/metrics")
async def metrics() -> Response:
    return Response(b"", media_type="text/plain")
