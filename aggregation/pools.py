"""Closing this process's connection pools at shutdown: services, Redis, key sets."""

from __future__ import annotations

from aggregation import cache, jwks, throttling
from aggregation.downstream import services


async def close_all() -> None:
    """Close every pool the client API opened in the running event loop."""
    await services.aclose()
    await cache.aclose()
    await throttling.aclose()
    await jwks.aclose()
