"""Who still calls what: request counts per client, endpoint and served version.

Release managers look at these before retiring a version or sunsetting a major. The
request path only increments an in-process dict; a daemon thread flushes it every
``FLUSH_SECONDS`` into per-hour buckets in the shared cache (Redis when configured), kept
``RETENTION``, and into a Prometheus counter. Reading sums the buckets of the last day
and week; it is for the admin and the export, never for the request path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.cache import caches

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0
HOUR_SECONDS = 3600
RETENTION = timedelta(days=8)
DAY_HOURS = 24
WEEK_HOURS = 7 * 24

Key = tuple[str, str, int, int]  # client, endpoint, major, minor


def _bucket_key(key: Key, hour: int) -> str:
    client, endpoint, major, minor = key
    return f"usage:{client}:{endpoint}:{major}.{minor}:{hour}"


def _seen_key(key: Key) -> str:
    client, endpoint, major, minor = key
    return f"usage:{client}:{endpoint}:{major}.{minor}:seen"


@dataclass(frozen=True)
class Usage:
    """Requests served by one version (or one major), over the last day and week."""

    last_24h: int = 0
    last_7d: int = 0
    last_seen: datetime | None = None

    def __add__(self, other: Usage) -> Usage:
        seen = [s for s in (self.last_seen, other.last_seen) if s is not None]
        return Usage(
            self.last_24h + other.last_24h, self.last_7d + other.last_7d, max(seen, default=None)
        )

    @property
    def in_use(self) -> bool:
        return self.last_7d > 0


class UsageCounter:
    """In-process counts, flushed to the shared cache; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._counts: dict[Key, int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def record(self, client: str, endpoint: str, major: int, minor: int) -> None:
        """Count one request: a dict increment under an uncontended lock, no I/O."""
        key = (client, endpoint, major, minor)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def flush(self) -> int:
        """Add the counts so far to this hour's buckets; returns how many were written."""
        from aggregation.metrics import CONTRACT_REQUESTS

        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return 0
        now = self.clock()
        hour = int(now // HOUR_SECONDS)
        cache = caches["default"]
        timeout = int(RETENTION.total_seconds())
        written = 0
        try:
            for key, count in counts.items():
                bucket = _bucket_key(key, hour)
                cache.add(bucket, 0, timeout=timeout)
                try:
                    cache.incr(bucket, count)
                except ValueError:  # expired between add and incr
                    cache.set(bucket, count, timeout=timeout)
                cache.set(_seen_key(key), now, timeout=timeout)
                written += count
                client, endpoint, major, minor = key
                CONTRACT_REQUESTS.labels(client, endpoint, str(major), str(minor)).inc(count)
                counts[key] = 0
        except Exception:  # noqa: BLE001 - keep the counts for the next flush
            logger.warning("could not flush usage counts to the cache", exc_info=True)
            with self._lock:
                for key, count in counts.items():
                    if count:
                        self._counts[key] = self._counts.get(key, 0) + count
        return written

    def start(self) -> None:
        """Flush from a daemon thread every ``FLUSH_SECONDS``; idempotent."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="usage-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        self._stop.clear()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()


counter = UsageCounter()
record = counter.record


def usage_of(
    client: str, endpoint: str, versions: Iterable[tuple[int, int]], *, now: float | None = None
) -> dict[tuple[int, int], Usage]:
    """Usage of each ``(major, minor)`` of one endpoint, from the shared cache."""
    now = time.time() if now is None else now
    hour = int(now // HOUR_SECONDS)
    versions = list(versions)
    keys: dict[str, tuple[tuple[int, int], int]] = {}
    for major, minor in versions:
        key = (client, endpoint, major, minor)
        for age in range(WEEK_HOURS):
            keys[_bucket_key(key, hour - age)] = ((major, minor), age)
        keys[_seen_key(key)] = ((major, minor), -1)
    try:
        found = caches["default"].get_many(list(keys))
    except Exception:  # noqa: BLE001 - the admin page still renders, saying it is unknown
        logger.warning("could not read usage counts from the cache", exc_info=True)
        found = {}
    day = dict.fromkeys(versions, 0)
    week = dict.fromkeys(versions, 0)
    seen: dict[tuple[int, int], datetime | None] = dict.fromkeys(versions)
    for name, value in found.items():
        version, age = keys[name]
        if age < 0:
            seen[version] = datetime.fromtimestamp(float(value), UTC)
            continue
        week[version] += int(value)
        if age < DAY_HOURS:
            day[version] += int(value)
    return {v: Usage(day[v], week[v], seen[v]) for v in versions}
