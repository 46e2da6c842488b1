"""The read-through response cache: versioned keys, one recomputation per expiry.

An entry is two JSON documents joined by a newline: a header with the recompute time
(``delta``), the logical expiry, the ETag and the sections' precompressed forms
(``aggregation/encoding.py``, base64), then the response's sections exactly as they are
sent. ``meta`` is built per request and never stored.

One recomputation per key per expiry, across processes:

* single flight in this process: concurrent misses share one computation, which runs
  as its own task so a client that disconnects does not cancel it for the others, and
  whose failure reaches every waiter as a failure;
* a lock in the store (``SET NX PX`` with an owner token, expiring on its own if its
  holder dies) lets one process recompute; the others serve the stale entry if there is
  one, or wait for the holder's value up to the request deadline;
* probabilistic early recomputation (XFetch, Vattani et al., VLDB 2015) refreshes a hot
  entry in the background shortly before it expires, so readers rarely see a miss;
* stale-if-error: when recomputing fails, an entry within its stale grace is served and
  marked ``stale``;
* negative results are shared: when a recomputation ends in a client-facing 404 or 503
  (the user does not exist, a critical service failed) and there is nothing stale to
  serve, the error is stored under the key for ``negative_ttl`` seconds (2 by default),
  so the requests waiting on the lock in other processes, and those arriving just after,
  answer the same error without calling the services again.

A degraded aggregate is never stored: the first request after the dependency recovers
gets the whole page. The store being slow or down costs hits, never a request.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import logging
import math
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from aggregation import metrics
from aggregation.cachestore import DjangoStore, RedisStore, Store, StoreUnavailable
from aggregation.conf import Derived, bff_settings
from aggregation.errors import BFFError, ErrorCode

logger = logging.getLogger(__name__)

XFETCH_BETA = 1.0
# How long a recomputation may hold the lock: long enough for a fan-out to reach its
# deadline, short enough that a crashed holder blocks its key only briefly.
LOCK_TTL_MS = 5_000
WAIT_POLL_SECONDS = 0.01
# Short: a user created a moment after a 404, or a service back after a 503, is seen soon.
NEGATIVE_TTL_SECONDS = 2.0
# The failures worth sharing: the same answer for everyone asking for this key now.
SHARED_STATUSES = frozenset({404, 503})


@dataclass(frozen=True)
class Policy:
    """An endpoint's cache policy, from the registry."""

    ttl_seconds: float
    jitter_percent: int
    stale_grace_seconds: float


@dataclass(frozen=True)
class Computed:
    """A freshly built response body (the sections), and whether it is degraded."""

    body: bytes
    degraded: tuple[str, ...] = ()
    # The body's tail (all but its opening brace, see aggregation/encoding.py) compressed
    # once here rather than on every hit; empty when not worth it.
    gzip: bytes = b""
    zstd: bytes = b""


@dataclass(frozen=True)
class Recomputation:
    """What recomputing one key takes: the key, how to compute it, under which policy."""

    key: str
    compute: Callable[[], Awaitable[Computed]]
    policy: Policy
    fingerprint: str
    labels: tuple[str, str]


class SharedError(BFFError):
    """The error another request for the same key ended in, read from the negative cache."""

    def __init__(self, status: int, code: str, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.code = ErrorCode(code)
        self.retryable = retryable


@dataclass(frozen=True)
class Entry:
    body: bytes
    etag: str
    delta: float  # seconds the recomputation took
    expiry: float  # logical expiry, epoch seconds
    degraded: tuple[str, ...] = ()
    gzip: bytes = b""
    zstd: bytes = b""
    error: dict | None = None  # a negative entry: the error every reader answers

    def encode(self) -> bytes:
        header = {"delta": self.delta, "expiry": self.expiry, "etag": self.etag}
        if self.error is not None:
            header["error"] = self.error
        if self.gzip:
            # Base64: the in-process store and django-redis's JSON serializer keep text.
            header["gz"] = binascii.b2a_base64(self.gzip, newline=False).decode()
            header["zs"] = binascii.b2a_base64(self.zstd, newline=False).decode()
        return orjson.dumps(header) + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        header, _, body = raw.partition(b"\n")
        fields = orjson.loads(header)
        gz, zs = fields.get("gz"), fields.get("zs")
        entry = cls(
            body=body,
            etag=str(fields["etag"]),
            delta=float(fields["delta"]),
            expiry=float(fields["expiry"]),
            gzip=binascii.a2b_base64(gz) if gz else b"",
            zstd=binascii.a2b_base64(zs) if zs else b"",
            error=fields.get("error"),
        )
        if entry.error is not None:
            entry.shared_error()  # validated now, so that raising it later cannot fail
        return entry

    def shared_error(self) -> SharedError:
        """For a negative entry: the error it records."""
        error = self.error
        return SharedError(
            int(error["status"]),
            str(error["code"]),
            str(error["message"]),
            bool(error["retryable"]),
        )


def negative_for(exc: BaseException) -> dict | None:
    """What to store of a failed recomputation, if every reader should get the same error."""
    if isinstance(exc, BFFError) and exc.status in SHARED_STATUSES and not exc.headers:
        return {
            "status": exc.status,
            "code": str(exc.code),
            "message": exc.message,
            "retryable": exc.retryable,
        }
    return None


@dataclass(frozen=True)
class Outcome:
    """What the cache answered: the entry and how (``hit``, ``miss``, ``stale``, ``bypass``)."""

    entry: Entry
    state: str


def etag_for(body: bytes, fingerprint: str) -> str:
    # Strong: the same sections under the same contract are byte-identical; meta, which
    # differs per request, is not part of what the tag identifies.
    return '"' + fingerprint[:8] + "-" + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class L1:
    """A small in-process LRU with expiry, in front of the store.

    An entry is kept no longer than its own expiry, so a reader here sees what a reader of
    the store would (keys carry the contract's version and fingerprint; entries are never
    changed in place, only replaced when recomputed). Early recomputation applies to it
    as to the store, and a recomputed entry replaces the held one.
    """

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.time):
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, Entry]] = OrderedDict()

    def get(self, key: str) -> Entry | None:
        item = self._entries.get(key)
        if item is None:
            return None
        until, entry = item
        if self.clock() >= until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Entry, ttl: float) -> None:
        self._entries[key] = (self.clock() + ttl, entry)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class ResponseCache:
    """Read-through cache over a store; clock and random source are injectable."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        l1: L1 | None = None,
        negative_ttl: float = NEGATIVE_TTL_SECONDS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rng = rng or random.Random()
        self.l1 = l1
        self.negative_ttl = negative_ttl
        self._flights: dict[str, asyncio.Future] = {}
        self._refreshing: set[str] = set()

    # -- the decisions, as pure functions of the entry and the clock

    def jittered_ttl(self, policy: Policy) -> float:
        """TTL shortened by up to ``jitter_percent``, so keys written together spread out."""
        spread = policy.jitter_percent / 100
        return policy.ttl_seconds * (1 - spread * self.rng.random())

    def should_recompute_early(self, entry: Entry, now: float) -> bool:
        """XFetch: recompute when now - delta * beta * ln(rand) >= expiry.

        ln(rand) is negative, so the gap grows with the recompute time and the chance of
        an early refresh rises as the expiry nears.
        """
        sample = self.rng.random() or 1e-12
        return now - entry.delta * XFETCH_BETA * math.log(sample) >= entry.expiry

    # -- the read-through path

    async def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Awaitable[Computed]],
        policy: Policy,
        *,
        fingerprint: str,
        labels: tuple[str, str],
        wait_seconds: float,
    ) -> Outcome:
        job = Recomputation(key, compute, policy, fingerprint, labels)
        if self.l1 is not None:
            cached = self.l1.get(key)
            if cached is not None:
                self._hit(job, cached, self.clock())
                return Outcome(cached, "hit")
        entry = await self._read(key, labels)
        now = self.clock()
        if entry is not None and entry.error is not None:
            if now < entry.expiry:
                self._event("negative", labels)
                raise entry.shared_error()
            entry = None  # an expired negative entry is nothing to serve stale
        if entry is not None and now < entry.expiry:
            self._hit(job, entry, now)
            self._remember(key, entry, now)
            return Outcome(entry, "hit")
        return await self._single_flight(
            key, lambda: self._recompute(job, stale=entry, wait_seconds=wait_seconds)
        )

    def _hit(self, job: Recomputation, entry: Entry, now: float) -> None:
        """A fresh entry is served; XFetch may start its recomputation in the background."""
        if self.should_recompute_early(entry, now):
            self._event("early", job.labels)
            self._refresh_in_background(job)
        else:
            self._event("hit", job.labels)

    def _remember(self, key: str, entry: Entry, now: float) -> None:
        if self.l1 is not None and entry.expiry > now:
            self.l1.put(key, entry, entry.expiry - now)

    async def _single_flight(self, key: str, start: Callable[[], Awaitable[Outcome]]) -> Outcome:
        flight = self._flights.get(key)
        if flight is None:
            task = asyncio.ensure_future(start())
            self._flights[key] = task
            task.add_done_callback(lambda _: self._flights.pop(key, None))
            flight = task
        # shield: a waiter that goes away (client disconnect) must not cancel the shared
        # computation for everyone else.
        return await asyncio.shield(flight)

    async def _recompute(
        self,
        job: Recomputation,
        *,
        stale: Entry | None,
        wait_seconds: float,
        background: bool = False,
    ) -> Outcome | None:
        key, policy, labels = job.key, job.policy, job.labels
        token = uuid.uuid4().hex
        lock_key = key + ":lock"
        try:
            locked = await self.store.acquire(lock_key, token, LOCK_TTL_MS)
        except StoreUnavailable:
            self._event("error", labels)
            locked = None  # no coordination possible: compute, do not store
        if locked is False and background:
            return None  # another process is already refreshing this entry
        if locked is False:
            if stale is not None and self._within_grace(stale, policy):
                self._event("stale", labels)
                return Outcome(stale, "stale")
            waited = await self._wait_for_holder(key, lock_key, wait_seconds, labels)
            if waited is not None and waited.error is not None:
                self._event("negative", labels)
                raise waited.shared_error()
            if waited is not None:
                return Outcome(waited, "hit")
            # The holder failed or vanished: compute ourselves rather than fail.
        self._event("miss", labels)
        try:
            try:
                fresh = await self._compute(job.compute, job.fingerprint)
            except Exception as exc:
                if stale is not None and self._within_grace(stale, policy):
                    self._event("stale", labels)
                    logger.warning("recomputation failed; serving stale", extra={"cacheKey": key})
                    return Outcome(stale, "stale")
                # Not from a background refresh: the entry it refreshes is still valid.
                if not background:
                    await self._write_negative(key, exc, labels)
                raise
            # Written before the lock is released: a waiter that sees the lock gone must
            # find the value, or it would recompute too.
            if not fresh.degraded:
                await self._write(key, fresh, policy, labels)
            return Outcome(fresh, "miss")
        finally:
            if locked:
                await self._release(lock_key, token, labels)

    async def _compute(self, compute, fingerprint: str) -> Entry:
        started = time.perf_counter()
        computed = await compute()
        delta = time.perf_counter() - started
        return Entry(
            body=computed.body,
            etag=etag_for(computed.body, fingerprint),
            delta=delta,
            expiry=0.0,
            degraded=computed.degraded,
            gzip=computed.gzip,
            zstd=computed.zstd,
        )

    async def _write(self, key: str, entry: Entry, policy: Policy, labels) -> None:
        ttl = self.jittered_ttl(policy)
        now = self.clock()
        stored = Entry(
            entry.body, entry.etag, entry.delta, now + ttl, gzip=entry.gzip, zstd=entry.zstd
        )
        try:
            await self.store.set(
                key, stored.encode(), ttl_ms=math.ceil((ttl + policy.stale_grace_seconds) * 1000)
            )
        except StoreUnavailable:
            self._event("error", labels)
            return
        self._remember(key, stored, now)

    async def _write_negative(self, key: str, exc: BaseException, labels) -> None:
        error = negative_for(exc)
        if error is None or self.negative_ttl <= 0:
            return
        entry = Entry(b"{}", "", 0.0, self.clock() + self.negative_ttl, error=error)
        try:
            await self.store.set(key, entry.encode(), ttl_ms=math.ceil(self.negative_ttl * 1000))
        except StoreUnavailable:
            self._event("error", labels)

    async def _release(self, lock_key: str, token: str, labels) -> None:
        try:
            await self.store.release(lock_key, token)
        except StoreUnavailable:
            self._event("error", labels)  # the lock expires on its own

    def _within_grace(self, entry: Entry, policy: Policy) -> bool:
        return self.clock() < entry.expiry + policy.stale_grace_seconds

    async def _read(self, key: str, labels) -> Entry | None:
        try:
            raw = await self.store.get(key)
        except StoreUnavailable:
            self._event("error", labels)
            return None
        if raw is None:
            return None
        try:
            return Entry.decode(raw)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):  # binascii.Error is one
            # A foreign or corrupt value under our key: treat it as absent and overwrite.
            self._event("error", labels)
            return None

    async def _wait_for_holder(self, key, lock_key, wait_seconds, labels) -> Entry | None:
        """Another process is recomputing: wait for its value instead of recomputing."""
        self._event("lock_wait", labels)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(WAIT_POLL_SECONDS)
            entry = await self._read(key, labels)
            if entry is not None and entry.expiry > self.clock():
                return entry
            try:
                if await self.store.holder(lock_key) is None:
                    entry = await self._read(key, labels)
                    return entry if entry is not None and entry.expiry > self.clock() else None
            except StoreUnavailable:
                return None
        return None

    def _refresh_in_background(self, job: Recomputation) -> None:
        key = job.key
        if key in self._refreshing or key in self._flights:
            return
        self._refreshing.add(key)

        async def refresh() -> None:
            try:
                # Not in the key's single flight: a reader that finds the entry expired
                # meanwhile must not join a refresh that may decline to compute (None).
                await self._recompute(job, stale=None, wait_seconds=0.0, background=True)
            except Exception:  # noqa: BLE001 - the current entry keeps serving until expiry
                logger.warning("early recomputation failed", extra={"cacheKey": key})
            finally:
                self._refreshing.discard(key)

        task = asyncio.ensure_future(refresh())
        _background.add(task)
        task.add_done_callback(_background.discard)

    @staticmethod
    def _event(event: str, labels: tuple[str, str]) -> None:
        metrics.child(metrics.CACHE_EVENTS, labels[0], labels[1], event).inc()


# Strong references to background refreshes, so they are not garbage-collected mid-flight.
_background: set[asyncio.Task] = set()


@dataclass(frozen=True)
class _Caches:
    per_user: ResponseCache
    shared: ResponseCache


def _caches_from_settings() -> _Caches:
    url = bff_settings.REDIS_URL
    store = RedisStore(url, timeout=bff_settings.REDIS_SOCKET_TIMEOUT) if url else DjangoStore()
    size = bff_settings.CACHE_L1_MAX_ENTRIES
    return _Caches(
        per_user=ResponseCache(store, l1=L1(size) if size else None),
        shared=ResponseCache(store, l1=L1(size) if size else None),
    )


# Built again when the settings change (tests override them).
_caches = Derived(
    _caches_from_settings, "REDIS_URL", "REDIS_SOCKET_TIMEOUT", "CACHE_L1_MAX_ENTRIES"
)


def response_cache(scope: str) -> ResponseCache:
    """This process's caches, built from settings: per-user data and shared data, each
    with an in-process L1 in front of the store."""
    caches = _caches.get()
    return caches.shared if scope == "shared" else caches.per_user


def reset() -> None:
    """Forget the caches (their L1 and single flights); the next use builds them again."""
    _caches.reset()


async def aclose() -> None:
    """Close the store's connection pool of the running loop (at shutdown)."""
    caches = _caches.built
    if caches is not None:
        await caches.per_user.store.aclose()
