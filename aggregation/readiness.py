"""The response cache's part of ``/readyz``: which store, and whether its breaker is closed."""

from __future__ import annotations

from aggregation.cache import ResponseCache, response_cache
from contract_core.hooks import ProbeResult


async def response_cache_probe() -> ProbeResult:
    cache: ResponseCache = response_cache("per_user")
    store = cache.store
    healthy = store.healthy()
    detail = {"store": store.name}
    if not healthy:
        detail["error"] = "circuit open: serving without the cache until it answers again"
    return ProbeResult(ok=healthy, detail=detail)
