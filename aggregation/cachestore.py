"""Where cached responses live: Redis through redis.asyncio, or Django's in-process cache.

Both stores speak bytes and offer get/set, an atomic "set if absent" for locks and a
compare-and-delete to release them. Every failure surfaces as ``StoreUnavailable`` so the
response cache can treat it as a miss; a breaker stops a dead Redis from costing a
socket timeout on every request, and probes it again to reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from aggregation.circuit import CircuitBreaker, CircuitState
from aggregation.perloop import PerLoop

logger = logging.getLogger(__name__)

# Compare-and-delete: only the holder of a lock (who knows its token) may release it.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class StoreUnavailable(Exception):
    """The store could not be reached, or answered too slowly."""


class Store(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_ms: int) -> None: ...

    async def acquire(self, key: str, token: str, ttl_ms: int) -> bool: ...

    async def release(self, key: str, token: str) -> None: ...

    async def holder(self, key: str) -> str | None: ...

    def healthy(self) -> bool: ...

    async def aclose(self) -> None: ...


class RedisStore:
    """Redis via redis.asyncio (one node, Sentinel or Cluster: ``aggregation/redisclients.py``):
    one client per event loop, short timeouts."""

    name = "redis"

    def __init__(self, url: str, *, timeout: float, breaker: CircuitBreaker | None = None):
        self.url = url
        self.timeout = timeout
        # Redis down fails every call: three in a row open the breaker; one probe a second.
        self.breaker = breaker or CircuitBreaker(
            "redis",
            failure_rate=0.5,
            minimum_calls=3,
            window_seconds=1.0,
            half_open_calls=1,
            reset_seconds=1.0,
        )
        self._clients = PerLoop(self._new_client)

    def _new_client(self):
        from aggregation.redisclients import async_client

        return async_client(self.url, timeout=self.timeout)

    async def _run(self, operation):
        from aggregation.redisclients import ERRORS

        if not self.breaker.allow():
            raise StoreUnavailable("redis circuit open")
        try:
            async with asyncio.timeout(self.timeout * 2):
                result = await operation(self._clients.get())
        except ERRORS as exc:
            self.breaker.record_failure()
            raise StoreUnavailable(type(exc).__name__) from exc
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        return result

    async def get(self, key: str) -> bytes | None:
        return await self._run(lambda client: client.get(key))

    async def set(self, key: str, value: bytes, ttl_ms: int) -> None:
        await self._run(lambda client: client.set(key, value, px=max(1, ttl_ms)))

    async def acquire(self, key: str, token: str, ttl_ms: int) -> bool:
        result = await self._run(lambda client: client.set(key, token, nx=True, px=ttl_ms))
        return bool(result)

    async def release(self, key: str, token: str) -> None:
        await self.run_script(_RELEASE, key, token)

    async def run_script(self, script: str, key: str, *args: str | int) -> object:
        """Run a Lua script on ``key`` (its one key) with ``args``; its result."""
        return await self._run(lambda client: client.eval(script, 1, key, *args))

    async def holder(self, key: str) -> str | None:
        value = await self._run(lambda client: client.get(key))
        return value.decode() if value is not None else None

    def healthy(self) -> bool:
        return self.breaker.state is CircuitState.CLOSED

    async def aclose(self) -> None:
        """Close the running loop's connection pool (at shutdown)."""
        await self._clients.aclose()


class DjangoStore:
    """Django's configured cache (the in-process cache when REDIS_URL is unset).

    The local-memory backend is called in place: it does no I/O, only takes a lock, and
    its async methods are ``sync_to_async`` wrappers whose thread hop (to the process's
    one executor thread, shared by every request) costs more than the work itself. Other
    backends go through their async methods.
    """

    name = "django"

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    @property
    def _cache(self):
        return caches[self.alias]

    async def _guard(self, awaitable):
        try:
            return await awaitable
        except Exception as exc:  # any backend failure is a miss, never a 500
            raise StoreUnavailable(type(exc).__name__) from exc

    async def _call(self, name: str, *args, **kwargs):
        cache = self._cache
        if isinstance(cache, LocMemCache):
            try:
                return getattr(cache, name)(*args, **kwargs)
            except Exception as exc:
                raise StoreUnavailable(type(exc).__name__) from exc
        return await self._guard(getattr(cache, "a" + name)(*args, **kwargs))

    # Values go in as text: entries are UTF-8 JSON, and text survives every Django cache
    # backend, including django-redis with its JSON serializer, which refuses bytes.
    async def get(self, key: str) -> bytes | None:
        value = await self._call("get", key)
        return value.encode() if isinstance(value, str) else None

    async def set(self, key: str, value: bytes, ttl_ms: int) -> None:
        text = value.decode()
        await self._call("set", key, text, timeout=max(0.001, ttl_ms / 1000))

    async def acquire(self, key: str, token: str, ttl_ms: int) -> bool:
        return bool(await self._call("add", key, token, timeout=ttl_ms / 1000))

    async def release(self, key: str, token: str) -> None:
        # Not atomic, but this store is in-process: single flight already serialises it.
        if await self._call("get", key) == token:
            await self._call("delete", key)

    async def holder(self, key: str) -> str | None:
        return await self._call("get", key)

    def healthy(self) -> bool:
        return True

    async def aclose(self) -> None:
        """Nothing to close: Django closes its caches itself."""
