"""Who still calls what: request counts per client, endpoint and served version, read back.

Release managers look at these before retiring a version or sunsetting a major. The
serving process counts (``aggregation.usage``) into per-hour buckets in the shared cache
(Redis when configured), kept ``RETENTION``; this module names those buckets and sums
those of the last day and week. It is for the admin and the export, never for the
request path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.cache import caches

logger = logging.getLogger(__name__)

HOUR_SECONDS = 3600
RETENTION = timedelta(days=8)
DAY_HOURS = 24
WEEK_HOURS = 7 * 24

Key = tuple[str, str, int, int]  # client, endpoint, major, minor


def bucket_key(key: Key, hour: int) -> str:
    client, endpoint, major, minor = key
    return f"usage:{client}:{endpoint}:{major}.{minor}:{hour}"


def seen_key(key: Key) -> str:
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
            keys[bucket_key(key, hour - age)] = ((major, minor), age)
        keys[seen_key(key)] = ((major, minor), -1)
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
