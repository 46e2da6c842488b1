"""Shared domain data (not per user): read through the in-process L1 and Redis."""

from __future__ import annotations

import hashlib

import orjson

from aggregation import calls, sources
from aggregation.cache import Computed, Policy, response_cache
from aggregation.conf import bff_settings
from aggregation.fanout import CallContext

# Categories change rarely; a long grace keeps them available through a catalog outage.
CATEGORIES_POLICY = Policy(ttl_seconds=300, jitter_percent=10, stale_grace_seconds=3600)
# Keys carry the declared source schema, so a change of what we read from the catalog
# moves to new entries just as a contract bump does.
_CATEGORY_SCHEMA = hashlib.sha256(repr(sources.CATEGORY).encode()).hexdigest()


async def categories(context: CallContext) -> list:
    async def compute() -> Computed:
        return Computed(orjson.dumps(await calls.categories(context)))

    key = f"{bff_settings.CACHE_KEY_PREFIX}:data:catalog:categories:{_CATEGORY_SCHEMA[:8]}"
    outcome = await response_cache("shared").get_or_compute(
        key,
        compute,
        CATEGORIES_POLICY,
        fingerprint=_CATEGORY_SCHEMA,
        labels=("shared", "categories"),
        wait_seconds=context.timeout,
    )
    return orjson.loads(outcome.entry.body)
