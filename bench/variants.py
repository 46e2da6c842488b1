"""ASGI entry points the benchmark runs side by side (``--variants``), for before/after.

``final`` is the product as deployed (``bff_project.asgi:application``). Every other
variant rebuilds one earlier or alternative choice on top of the same code, so that one
run on one machine measures what each choice buys. The variants exist only here: they
reach into module globals (a pool limit, a transport) the way no product code may.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

VARIANTS = {
    "final": "bff_project.asgi:application",
    # Before this work (but for the transport): Django's stock ASGIHandler for every path
    # (middleware, signals, an executor per request) and no gc.freeze().
    "stock": "bench.variants:stock",
    # APIHandler with Django's own handle(): the signals and the close() hop are back.
    "api_signals": "bench.variants:api_signals",
    # The final app without gc.freeze().
    "no_freeze": "bench.variants:no_freeze",
    # The downstream wire. Before: httpx's own transport (httpcore) with the product's
    # 200-connection pool; with httpx's default limits; and the httpx-aiohttp package
    # (when installed), whose error mapping the product's own transport corrects.
    "httpx_pool_200": "bench.variants:httpx_pool_200",
    "httpx_default_limits": "bench.variants:httpx_default_limits",
    "httpx_aiohttp": "bench.variants:httpx_aiohttp",
    # Experiments on code outside the handler and the transport (docs/performance.md,
    # "Where the rest of the time goes"): the mobile home's slowest dependency started
    # first. And, before: the in-process cache through its async methods (a thread hop).
    "slowest_first": "bench.variants:slowest_first",
    "locmem_hop": "bench.variants:locmem_hop",
    # An experiment towards SPEC section 10's 1.2x the FastAPI peer: plain mobile home hits
    # answered in raw ASGI in front of Django, everything else handed to the product.
    "hit_fast_path": "bench.variants:hit_fast_path",
    # Not the product: the FastAPI BFF written for speed that SPEC section 10 compares cache
    # hits with (bench/peer_fastapi.py; mobile home only; needs pip install fastapi).
    "fastapi_peer": "bench.peer_fastapi:app",
}
PEERS = ("fastapi_peer",)


def _product() -> Any:
    import bff_project.asgi

    return bff_project.asgi


def _stock() -> Any:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.handlers.asgi import ASGIHandler

    _product()
    gc.unfreeze()
    return ASGIStaticFilesHandler(ASGIHandler())


def _api_signals() -> Any:
    from django.core.handlers.asgi import ASGIHandler

    from bff_project.handlers import APIHandler

    class SignallingAPIHandler(APIHandler):
        handle = ASGIHandler.handle

    product = _product()
    return product.route(SignallingAPIHandler(), product.django_application, product.api_prefixes)


def _no_freeze() -> Any:
    product = _product()
    gc.unfreeze()
    return product.application


def _slowest_first() -> Any:
    import dataclasses

    from aggregation import surfaces

    app = _product().application
    home = surfaces.MOBILE_HOME
    surfaces.MOBILE_HOME = dataclasses.replace(
        home, dependencies=tuple(reversed(home.dependencies))
    )
    return app


def _locmem_hop() -> Any:
    from aggregation.cachestore import DjangoStore

    async def through_async_methods(self, name, *args, **kwargs):
        return await self._guard(getattr(self._cache, "a" + name)(*args, **kwargs))

    DjangoStore._call = through_async_methods
    return _product().application


def _hit_fast_path() -> Any:
    """Mobile home hits without Django's request, URL resolution or response objects.

    Only a plain hit is answered here: GET, no query string, no conditional or trace
    headers, a valid mobile token, a live major that is not deprecated, a fresh entry not
    due for early recomputation, identity coding. Anything else goes to the product,
    untouched, so behaviour stays the view's; the headers written are the view's too.
    """
    import re
    import time
    from datetime import UTC, datetime

    import orjson

    product = _product().application  # sets Django up before the imports below

    from aggregation import cachekeys, metrics
    from aggregation.auth import authenticate_request
    from aggregation.cache import response_cache
    from aggregation.conf import bff_settings
    from aggregation.views import _cache_control
    from contract_core.tracing import new_trace_id
    from contracts.serving import registry

    path_re = re.compile(r"^/mobile/v([1-9][0-9]{0,5})/home$")
    plain = {b"host", b"authorization", b"user-agent", b"accept", b"connection"}

    async def app(scope, receive, send) -> None:
        match = path_re.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] != "GET" or scope["query_string"]:
            return await product(scope, receive, send)
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name not in plain:
                return await product(scope, receive, send)
        started = time.perf_counter()
        try:
            principal = await authenticate_request(authorization, "mobile")
        except Exception:  # noqa: BLE001 - the product answers every error
            return await product(scope, receive, send)
        if bff_settings.RATE_LIMITS or not registry.loaded:
            return await product(scope, receive, send)
        major = int(match[1])
        state = registry.snapshot.majors.get(("mobile", "home", major))
        if state is None or state.serving is None or state.deprecated_at or state.sunset_at:
            return await product(scope, receive, send)
        contract = state.serving
        cache = response_cache(contract.cache_scope)
        key = cachekeys.user_key(bff_settings.CACHE_KEY_PREFIX, contract, principal.subject)
        entry = await cache._read(key, ("mobile", "home"))
        now = cache.clock()
        if entry is None or now >= entry.expiry or cache.should_recompute_early(entry, now):
            return await product(scope, receive, send)
        cache._event("hit", ("mobile", "home"))
        trace_id = new_trace_id()
        meta = {
            "traceId": trace_id,
            "generatedAt": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "latencyMs": round((time.perf_counter() - started) * 1000),
            "schemaVersion": contract.schema_version,
            "degraded": False,
            "degradedDependencies": [],
            "cache": "hit",
        }
        body = b'{"meta":' + orjson.dumps(meta) + b"," + entry.body[1:]
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"etag", entry.etag.encode()),
            (b"x-trace-id", trace_id.encode()),
            (b"x-content-type-options", b"nosniff"),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in _cache_control(contract).items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        metrics.child(metrics.REQUESTS, "mobile", "home", "200").inc()
        metrics.child(metrics.REQUEST_LATENCY, "mobile", "home").observe(
            time.perf_counter() - started
        )

    return app


def _with_client_factory(factory: Callable[[Any], Any]) -> Any:
    """The final app with ``ServiceClient`` building its pooled client with ``factory``."""
    import asyncio

    from aggregation import downstream

    def client(self: downstream.ServiceClient) -> Any:
        loop = asyncio.get_running_loop()
        built = self._clients.get(loop)
        if built is None:
            built = factory(self)
            self._clients[loop] = built
        return built

    downstream.ServiceClient._client = client
    return _product().application


def _httpx_client(limits: Any) -> Callable[[Any], Any]:
    import httpx

    def factory(service: Any) -> Any:
        return httpx.AsyncClient(
            base_url=service.base_url, limits=limits, trust_env=False, follow_redirects=False
        )

    return factory


def _httpx_default_limits() -> Any:
    import httpx

    return _with_client_factory(_httpx_client(httpx.Limits()))


def _httpx_pool_200() -> Any:
    from aggregation.downstream import POOL_LIMITS

    return _with_client_factory(_httpx_client(POOL_LIMITS))


def _httpx_aiohttp() -> Any:
    import httpx
    from httpx_aiohttp import AiohttpTransport  # not a dependency: pip install httpx-aiohttp

    from aggregation.downstream import POOL_LIMITS

    def factory(service: Any) -> Any:
        return httpx.AsyncClient(
            base_url=service.base_url,
            transport=AiohttpTransport(limits=POOL_LIMITS, trust_env=False),
            trust_env=False,
            follow_redirects=False,
        )

    return _with_client_factory(factory)


_BUILDERS: dict[str, Callable[[], Any]] = {
    "stock": _stock,
    "api_signals": _api_signals,
    "no_freeze": _no_freeze,
    "httpx_default_limits": _httpx_default_limits,
    "httpx_pool_200": _httpx_pool_200,
    "httpx_aiohttp": _httpx_aiohttp,
    "slowest_first": _slowest_first,
    "locmem_hop": _locmem_hop,
    "hit_fast_path": _hit_fast_path,
}


def __getattr__(name: str) -> Any:
    # Built on first access: reading VARIANTS must not start Django in the benchmark's
    # own process, and each uvicorn worker builds only the variant it serves.
    builder = _BUILDERS.get(name)
    if builder is None:
        raise AttributeError(name)
    app = builder()
    globals()[name] = app
    return app
