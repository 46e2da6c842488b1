"""Redis Sentinel and Redis Cluster, against real local topologies the tests start.

Skipped only when the Redis binaries are missing; CI sets BFF_REQUIRE_REDIS_TOPOLOGIES so
a missing binary fails there instead.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from django.core.cache import caches
from django.test import override_settings

from aggregation.cachestore import RedisStore
from aggregation.throttling import RedisCounter
from bff_project import config
from tests.live import LiveBFF, approve_submitted, base_env, seed


def django_caches(url: str) -> dict:
    """CACHES as settings.py builds them for ``url``."""
    default = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        },
        "KEY_PREFIX": "bfftest",
    }
    default.update(config.django_redis_location(url, timeout=0.5))
    return {"default": default}


def exercise_store(url: str) -> dict:
    """Every operation the response cache and the rate limits make, on one event loop."""

    async def scenario() -> dict:
        store = RedisStore(url, timeout=0.5)
        counter = RedisCounter(url, timeout=0.5)
        seen = {}
        # Keys on different slots of a cluster: each operation must reach its own node.
        for n in range(20):
            key = f"bfftest:mobile:home:v1.0:abcdef12:u:usr_{n}"
            await store.set(key, b"entry", ttl_ms=10_000)
            seen.setdefault("get", []).append(await store.get(key))
            assert await store.acquire(key + ":lock", "token", 5_000)
            seen.setdefault("second_acquire", []).append(
                await store.acquire(key + ":lock", "other", 5_000)
            )
            await store.release(key + ":lock", "token")
            seen.setdefault("holder", []).append(await store.holder(key + ":lock"))
            seen.setdefault("counts", []).append(
                [await counter.hit(f"bfftest:throttle:mobile:usr_{n}:1", 60_000) for _ in range(3)]
            )
        await store.aclose()
        await counter.aclose()
        return seen

    return asyncio.run(scenario())


def assert_store_works(seen: dict) -> None:
    assert seen["get"] == [b"entry"] * 20
    assert seen["second_acquire"] == [False] * 20  # the lock excludes a second holder
    assert seen["holder"] == [None] * 20  # released by its owner
    assert seen["counts"] == [[1, 2, 3]] * 20  # exact, atomic counts


def assert_django_cache_works(url: str) -> None:
    with override_settings(CACHES=django_caches(url)):
        cache = caches["default"]
        for n in range(10):
            cache.set(f"generation-{n}", n, timeout=30)
        assert [cache.get(f"generation-{n}") for n in range(10)] == list(range(10))
        assert cache.add("lock", "a", timeout=30) is True
        assert cache.add("lock", "b", timeout=30) is False
        assert cache.incr("generation-3") == 4
        cache.delete("lock")
        assert cache.get("lock") is None


def test_sentinel_serves_the_cache_locks_and_rate_limits(redis_sentinel) -> None:
    assert_store_works(exercise_store(redis_sentinel.url))
    keys = redis_sentinel.primary.client().keys("bfftest:*")
    assert keys, "nothing reached the primary"


def test_sentinel_serves_djangos_cache_from_the_primary(redis_sentinel) -> None:
    assert_django_cache_works(redis_sentinel.url)
    assert redis_sentinel.primary.client().keys("bfftest:*generation-*")


def test_cluster_serves_the_cache_locks_and_rate_limits(redis_cluster) -> None:
    assert_store_works(exercise_store(redis_cluster.url))
    per_node = [len(node.client().keys("bfftest:*")) for node in redis_cluster.nodes]
    assert all(per_node), f"keys should spread over every node: {per_node}"


def test_cluster_serves_djangos_cache(redis_cluster) -> None:
    assert_django_cache_works(redis_cluster.url)
    assert len(redis_cluster.keys("bfftest:*generation-*")) == 10


def _seeded_env(tmp_path, demo_services, redis_url: str, **extra: str) -> dict[str, str]:
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'topology.sqlite3'}",
        REDIS_URL=redis_url,
        **demo_services.env,
        **{"RATE_LIMITS": "off", **extra},
    )
    seed(env)
    return env


def _home(client: httpx.Client, user: str) -> httpx.Response:
    from aggregation.tokens import mint_token

    token = mint_token("mobile", user)
    return client.get("/mobile/v1/home", headers={"Authorization": f"Bearer {token}"})


def test_a_sentinel_failover_during_load_loses_no_request(
    tmp_path, demo_services, redis_sentinel
) -> None:
    demo_services.reset()
    env = _seeded_env(tmp_path, demo_services, redis_sentinel.url)
    old_primary = redis_sentinel.primary.port
    with LiveBFF(env, migrate=False) as bff:
        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=bff.url, timeout=10) as client:
                n = 0
                while not stop.is_set():
                    statuses.append(_home(client, f"usr_{n % 50}").status_code)
                    n += 1

        worker = threading.Thread(target=load)
        worker.start()
        try:
            for _ in range(200):  # some load on the old primary first
                if len(statuses) >= 30:
                    break
                stop.wait(0.05)
            redis_sentinel.primary.stop()
            promoted = False
            for _ in range(600):  # the sentinels promote the replica (down after 1 s)
                if redis_sentinel.primary_port() == redis_sentinel.replica.port:
                    promoted = True
                    break
                stop.wait(0.05)
            assert promoted, "the sentinels did not promote the replica"
            before = len(statuses)
            # The BFF finds the new primary: cache entries appear there.
            new_primary = redis_sentinel.replica.client()
            for _ in range(400):
                if new_primary.info("replication")["role"] == "master" and new_primary.keys(
                    "bff:mobile:home:*"
                ):
                    break
                stop.wait(0.05)
        finally:
            stop.set()
            worker.join(timeout=30)
        assert redis_sentinel.replica.port != old_primary
        assert len(statuses) > before, "no request was made after the failover"
        assert set(statuses) == {200}, f"requests lost: {sorted(set(statuses))}"
        assert new_primary.keys("bff:mobile:home:*"), "the BFF never wrote to the new primary"


def test_the_bff_runs_on_a_cluster(tmp_path, demo_services, redis_cluster) -> None:
    demo_services.reset()
    env = _seeded_env(
        tmp_path, demo_services, redis_cluster.url, RATE_LIMITS="mobile=3/min,web=3/min"
    )
    with LiveBFF(env, migrate=False) as bff, httpx.Client(base_url=bff.url, timeout=10) as client:
        ready = client.get("/readyz").json()
        assert ready["checks"]["cache"]["ok"] is True, ready
        assert ready["checks"]["responseCache"]["ok"] is True, ready
        states = [_home(client, "usr_5").json()["meta"]["cache"] for _ in range(2)]
        assert states == ["miss", "hit"]
        assert _home(client, "usr_5").status_code == 200  # the third: the budget is 3
        assert _home(client, "usr_5").status_code == 429  # the fourth in a minute
        cluster = redis_cluster.client()
        assert redis_cluster.keys("bff:mobile:home:*:u:usr_5")
        assert redis_cluster.keys("bff:throttle:mobile:usr_5:*")
        # An approval publishes the registry generation in the cluster.
        approve_submitted(env)
        assert cluster.get("bff:1:contracts:generation") is not None


@pytest.mark.parametrize(
    "url",
    ["redis+sentinel://127.0.0.1:1/mymaster/0", "redis+cluster://127.0.0.1:1"],
    ids=["sentinel", "cluster"],
)
def test_an_unreachable_topology_costs_hits_not_requests(url: str) -> None:
    from aggregation.cachestore import StoreUnavailable

    async def scenario() -> str:
        store = RedisStore(url, timeout=0.2)
        try:
            await store.get("bfftest:k")
        except StoreUnavailable as exc:
            return str(exc)
        return "answered"

    assert asyncio.run(scenario()) != "answered"
