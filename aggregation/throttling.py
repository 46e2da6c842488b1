"""Per-client rate limits: a fixed-window counter per subject in the shared store.

``RATE_LIMITS`` gives each client surface a rate in DRF's form (``120/min``); the budget
is per subject, which is the user for mobile and web and the partner for partner.

Why a fixed window: DRF's rate form promises "N per period", and a counter per aligned
period keeps exactly that promise with one key per subject and window, one atomic round
trip (INCR and PEXPIRE in one Lua script, so processes sharing Redis never over-admit)
and an exact ``Retry-After`` (the end of the window). Its known cost, a burst of up to
2N across a window boundary, is acceptable for abuse control; a sliding-window counter
or GCRA would smooth it at the price of more state per check and a clock shared by
every process.

Rate limiting protects the service; it must never take it down. If the store fails the
request is let through, counted in ``bff_rate_limit_events_total{event="store_error"}``
and logged at most once a minute per store.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.core.cache import caches

from aggregation import metrics
from aggregation.auth import Principal
from aggregation.cachestore import RedisStore, StoreUnavailable
from aggregation.conf import Derived, bff_settings
from aggregation.errors import RateLimited

logger = logging.getLogger(__name__)

OUTAGE_LOG_INTERVAL_SECONDS = 60.0
# Keys outlive their window a little, so a process whose clock lags still finds the count.
KEY_GRACE_MS = 1000
# Encoded subjects longer than this are hashed, keeping keys under memcached's 250 bytes.
MAX_ENCODED_SUBJECT = 128

# Counts one more request in the window's key; the first one also sets its expiry.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""


class _OutageLog:
    """Says when an outage may be logged again: at most once per interval."""

    def __init__(self, interval: float = OUTAGE_LOG_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._last: float | None = None

    def due(self, now: float) -> bool:
        if self._last is not None and 0 <= now - self._last < self.interval:
            return False
        self._last = now
        return True


class RedisCounter:
    """The shared Redis, counting hits atomically across every process.

    Its calls go through a ``RedisStore`` of its own: the clients, timeouts and breaker
    logic of the response cache's store, with a breaker of its own.
    """

    name = "redis"

    def __init__(self, url: str, *, timeout: float) -> None:
        self.store = RedisStore(url, timeout=timeout)
        self.outage = _OutageLog()

    async def hit(self, key: str, ttl_ms: int) -> int:
        """The key's count after adding this request to it; StoreUnavailable on failure."""
        return int(await self.store.run_script(_HIT, key, max(1, ttl_ms)))

    async def aclose(self) -> None:
        """Close the running loop's connection pool (at shutdown)."""
        await self.store.aclose()


class DjangoCounter:
    """Django's cache (in-process when REDIS_URL is unset), counting hits atomically.

    ``aincr`` is a get and a set with an await between them, so concurrent requests would
    lose counts; the backend's own ``incr`` is atomic (a lock in the in-process cache,
    INCR in Redis, incr in memcached), so the pair runs in one ``sync_to_async`` call.
    """

    name = "django"

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.outage = _OutageLog()
        self._hit_sync = sync_to_async(self._count, thread_sensitive=True)

    def _count(self, key: str, ttl_ms: int) -> int:
        cache = caches[self.alias]
        timeout = max(0.001, ttl_ms / 1000)
        cache.add(key, 0, timeout=timeout)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr: this hit opens a new count
            cache.add(key, 1, timeout=timeout)
            return 1

    async def hit(self, key: str, ttl_ms: int) -> int:
        try:
            return await self._hit_sync(key, ttl_ms)
        except Exception as exc:  # any backend failure lets the request through, never a 500
            raise StoreUnavailable(type(exc).__name__) from exc


def encode_subject(subject: str) -> str:
    """The subject as one key segment: injective, and never containing ':'.

    Percent-encoding every byte outside ``[A-Za-z0-9_.~-]`` (``%`` and ``:`` included)
    keeps distinct subjects distinct and unable to reach into the next segment; overlong
    ones become a digest behind ``#``, a character encoding never leaves.
    """
    raw = subject.encode("utf-8", "surrogatepass")
    encoded = quote(raw, safe="")
    if len(encoded) > MAX_ENCODED_SUBJECT:
        return "#" + hashlib.sha256(raw).hexdigest()
    return encoded


def _counter_from_settings() -> RedisCounter | DjangoCounter:
    url = bff_settings.REDIS_URL
    return RedisCounter(url, timeout=bff_settings.REDIS_SOCKET_TIMEOUT) if url else DjangoCounter()


# Built again when the settings change (tests override them), like the response caches.
_counter = Derived(_counter_from_settings, "REDIS_URL", "REDIS_SOCKET_TIMEOUT")


def reset() -> None:
    """Forget the counter store; the next check builds it again from settings."""
    _counter.reset()


async def aclose() -> None:
    """Close the counter store's connection pool of the running loop (at shutdown)."""
    counter = _counter.built
    if isinstance(counter, RedisCounter):
        await counter.aclose()


_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """A rate in DRF's form (``120/min``) as (requests, window seconds).

    As in DRF, the period's first letter decides: ``s``, ``m``, ``h`` or ``d``.
    """
    count, _, period = rate.partition("/")
    seconds = _PERIOD_SECONDS.get(period[:1])
    if not count.isdigit() or seconds is None:
        raise ValueError(f"a rate must look like '120/min', got {rate!r}")
    return int(count), seconds


class ClientRateThrottle:
    """The rate limit of one client surface, checked asynchronously in the store.

    Shaped like DRF's ``SimpleRateThrottle``, whose interface (``allow_request(request,
    view)``, a synchronous cache) does not fit an async view: ``scope`` is the client and
    its rate comes from ``RATE_LIMITS``; ``cache`` (a counter with ``async hit(key,
    ttl_ms)``; None means the store from settings) and ``timer`` are class attributes, as
    in DRF, so tests swap them.
    """

    cache: RedisCounter | DjangoCounter | None = None
    timer = time.time  # wall clock: every process must agree on where a window starts
    cache_format = "%(prefix)s:throttle:%(scope)s:%(ident)s:%(window)d"

    def __init__(self, client: str) -> None:
        self.scope = client
        self.rate = self.get_rate()
        self.num_requests, self.duration = (
            parse_rate(self.rate) if self.rate is not None else (None, None)
        )
        if self.cache is None:
            self.cache = _counter.get()
        self._wait: float | None = None

    def get_rate(self) -> str | None:
        rates = bff_settings.RATE_LIMITS
        return rates.get(self.scope) if rates else None

    def get_cache_key(self, principal: Principal, window: int) -> str:
        return self.cache_format % {
            "prefix": bff_settings.CACHE_KEY_PREFIX,
            "scope": self.scope,
            "ident": encode_subject(principal.subject),
            "window": window,
        }

    async def allow(self, principal: Principal) -> bool:
        """Whether this request fits the subject's budget; counts it either way."""
        if self.rate is None:
            return True
        now = self.timer()
        window = math.floor(now / self.duration)
        window_end = (window + 1) * self.duration
        key = self.get_cache_key(principal, window)
        ttl_ms = math.ceil((window_end - now) * 1000) + KEY_GRACE_MS
        try:
            count = await self.cache.hit(key, ttl_ms)
        except StoreUnavailable as exc:
            self._store_failed(exc, now)
            return True
        if count <= self.num_requests:
            return True
        self._wait = window_end - now
        metrics.RATE_LIMIT_EVENTS.labels(self.scope, "limited").inc()
        return False

    def wait(self) -> float | None:
        """Seconds until the refused subject's budget comes back (the window's end)."""
        return self._wait

    def _store_failed(self, exc: StoreUnavailable, now: float) -> None:
        metrics.RATE_LIMIT_EVENTS.labels(self.scope, "store_error").inc()
        if self.cache.outage.due(now):
            logger.warning(
                "rate-limit store unavailable; letting requests through",
                extra={"client": self.scope, "store": self.cache.name, "error": str(exc)},
            )


async def check_rate(principal: Principal) -> None:
    """Count this request against the principal's budget; RateLimited when it is spent.

    Does nothing when ``RATE_LIMITS`` is off or the client has no rate, and lets the
    request through when the store is down.
    """
    rates = bff_settings.RATE_LIMITS
    if not rates or principal.client not in rates:
        return
    throttle = ClientRateThrottle(principal.client)
    if not await throttle.allow(principal):
        raise RateLimited(math.ceil(throttle.wait() or 1))
