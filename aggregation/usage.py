"""Who still calls what, counted: requests per client, endpoint and served version.

The request path only increments an in-process dict; a daemon thread flushes it every
``FLUSH_SECONDS`` into the shared cache's per-hour buckets (``contracts.usage`` names
them and reads them back for the admin and the export) and into a Prometheus counter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.core.cache import caches

from aggregation.metrics import CONTRACT_REQUESTS
from contracts.usage import HOUR_SECONDS, RETENTION, Key, bucket_key, seen_key

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0


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
                bucket = bucket_key(key, hour)
                cache.add(bucket, 0, timeout=timeout)
                try:
                    cache.incr(bucket, count)
                except ValueError:  # expired between add and incr
                    cache.set(bucket, count, timeout=timeout)
                cache.set(seen_key(key), now, timeout=timeout)
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


counter = UsageCounter()
record = counter.record
