"""The response cache's rules, with an injected clock and random source, on real stores."""

from __future__ import annotations

import asyncio
import random

import pytest

from aggregation.cache import L1, Computed, Entry, Policy, ResponseCache, SharedError
from aggregation.cachestore import DjangoStore, RedisStore, StoreUnavailable
from tests.conftest import free_port
from tests.timing import FakeClock

POLICY = Policy(ttl_seconds=30, jitter_percent=10, stale_grace_seconds=300)
FINGERPRINT = "f" * 64
LABELS = ("mobile", "home")


class Computation:
    """A countable computation that can be made slow or failing."""

    def __init__(self, body: bytes = b'{"user":{"userId":"u1"}}') -> None:
        self.body = body
        self.calls = 0
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.degraded: tuple[str, ...] = ()

    async def __call__(self) -> Computed:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return Computed(self.body, self.degraded)


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.integration)])
def store(request):
    if request.param == "locmem":
        return DjangoStore()
    return RedisStore(request.getfixturevalue("redis_url"), timeout=0.5)


def cache_for(store, clock, seed=1, l1=None) -> ResponseCache:
    return ResponseCache(store, clock=clock, rng=random.Random(seed), l1=l1)


async def get(cache: ResponseCache, compute, key="bff:k", wait=2.0):
    return await cache.get_or_compute(key, compute, POLICY, fingerprint=FINGERPRINT,
                                      labels=LABELS, wait_seconds=wait)  # fmt: skip


def test_miss_then_hit(store) -> None:
    clock, compute = FakeClock(), Computation()

    async def scenario():
        cache = cache_for(store, clock)
        first = await get(cache, compute)
        second = await get(cache, compute)
        return first, second

    first, second = asyncio.run(scenario())
    assert (first.state, second.state) == ("miss", "hit")
    assert second.entry.body == compute.body
    assert second.entry.etag == first.entry.etag
    assert compute.calls == 1


def test_expired_entry_is_recomputed(store) -> None:
    clock, compute = FakeClock(), Computation()

    async def scenario():
        cache = cache_for(store, clock)
        await get(cache, compute)
        clock.now += POLICY.ttl_seconds + 1
        return await get(cache, compute)

    assert asyncio.run(scenario()).state == "miss"
    assert compute.calls == 2


def test_jittered_ttl_stays_within_bounds() -> None:
    cache = cache_for(DjangoStore(), FakeClock(), seed=7)
    ttls = [cache.jittered_ttl(POLICY) for _ in range(2000)]
    assert min(ttls) >= POLICY.ttl_seconds * 0.9
    assert max(ttls) <= POLICY.ttl_seconds
    assert max(ttls) - min(ttls) > POLICY.ttl_seconds * 0.08  # it does spread


def test_xfetch_probability_rises_as_expiry_nears() -> None:
    cache = cache_for(DjangoStore(), FakeClock(), seed=42)
    entry = Entry(b"{}", '"e"', delta=0.1, expiry=1000.0)

    def rate(now: float) -> float:
        return sum(cache.should_recompute_early(entry, now) for _ in range(5000)) / 5000

    far, near, nearer, at = rate(999.0), rate(999.8), rate(999.95), rate(1000.0)
    assert far < near < nearer < at
    assert far < 0.001 and at == 1.0


def test_single_flight_shares_one_computation(store) -> None:
    clock, compute = FakeClock(), Computation()

    async def scenario():
        cache = cache_for(store, clock)
        compute.gate = asyncio.Event()
        waiters = [asyncio.ensure_future(get(cache, compute)) for _ in range(50)]
        await asyncio.sleep(0.05)
        compute.gate.set()
        return await asyncio.gather(*waiters)

    outcomes = asyncio.run(scenario())
    assert compute.calls == 1
    assert {o.entry.body for o in outcomes} == {compute.body}


def test_failure_reaches_every_waiter_as_a_failure(store) -> None:
    clock, compute = FakeClock(), Computation()
    compute.fail = RuntimeError("user service down")

    async def scenario():
        cache = cache_for(store, clock)
        compute.gate = asyncio.Event()
        waiters = [asyncio.ensure_future(get(cache, compute)) for _ in range(10)]
        await asyncio.sleep(0.05)
        compute.gate.set()
        return await asyncio.gather(*waiters, return_exceptions=True)

    results = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) for r in results)
    assert compute.calls == 1


def test_a_second_process_shares_the_holders_404_instead_of_recomputing(redis_url) -> None:
    """A not-found is an answer too: the waiter in another process gets it, not a call."""
    from aggregation.errors import NotFound

    clock, compute = FakeClock(), Computation()
    compute.fail = NotFound()

    async def scenario():
        one = cache_for(RedisStore(redis_url, timeout=0.5), clock, seed=1)
        two = cache_for(RedisStore(redis_url, timeout=0.5), clock, seed=2)
        compute.gate = asyncio.Event()
        first = asyncio.ensure_future(get(one, compute))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(get(two, compute))
        await asyncio.sleep(0.05)
        compute.gate.set()
        return await asyncio.gather(first, second, return_exceptions=True)

    first, second = asyncio.run(scenario())
    assert compute.calls == 1
    assert isinstance(first, NotFound)
    assert isinstance(second, SharedError)
    assert (second.status, second.code, second.message) == (404, "NOT_FOUND", first.message)


def test_a_shared_failure_expires_after_the_negative_ttl(store) -> None:
    from aggregation.errors import DependencyUnavailable, ErrorCode

    clock, compute = FakeClock(), Computation()
    compute.fail = DependencyUnavailable(ErrorCode.USER_PROFILE_UNAVAILABLE, "down")

    async def attempt(cache):
        try:
            await get(cache, compute)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return exc
        return None

    async def run():
        cache = ResponseCache(store, clock=clock, rng=random.Random(1), negative_ttl=2.0)
        first = await attempt(cache)
        second = await attempt(cache)  # within the negative TTL: no call
        clock.now += 2.5
        compute.fail = None
        third = await get(cache, compute)
        return first, second, third

    first, second, third = asyncio.run(run())
    assert isinstance(first, DependencyUnavailable)
    assert isinstance(second, SharedError)
    assert (second.status, second.retryable) == (503, True)
    assert third.state == "miss"
    assert compute.calls == 2


def test_an_error_that_is_not_a_client_answer_is_not_shared(store) -> None:
    clock, compute = FakeClock(), Computation()
    compute.fail = RuntimeError("a bug")

    async def attempt(cache):
        try:
            await get(cache, compute)
        except RuntimeError:
            return "raised"
        return "served"

    async def run():
        cache = cache_for(store, clock)
        return [await attempt(cache), await attempt(cache)]

    assert asyncio.run(run()) == ["raised", "raised"]
    assert compute.calls == 2


def test_a_waiter_that_goes_away_does_not_cancel_the_computation(store) -> None:
    clock, compute = FakeClock(), Computation()

    async def scenario():
        cache = cache_for(store, clock)
        compute.gate = asyncio.Event()
        leaver = asyncio.ensure_future(get(cache, compute))
        stayer = asyncio.ensure_future(get(cache, compute))
        await asyncio.sleep(0.05)
        leaver.cancel()  # the client disconnected
        compute.gate.set()
        return await stayer, await get(cache, compute)

    stayed, later = asyncio.run(scenario())
    assert stayed.entry.body == compute.body
    assert later.state == "hit"
    assert compute.calls == 1


def test_stale_entry_is_served_when_recomputing_fails(store) -> None:
    clock, compute = FakeClock(), Computation()

    async def scenario():
        cache = cache_for(store, clock)
        await get(cache, compute)
        clock.now += POLICY.ttl_seconds + 5
        compute.fail = RuntimeError("down")
        return await get(cache, compute)

    outcome = asyncio.run(scenario())
    assert outcome.state == "stale"
    assert outcome.entry.body == compute.body


def test_no_stale_entry_past_its_grace(store) -> None:
    clock, compute = FakeClock(), Computation()

    async def scenario():
        cache = cache_for(store, clock)
        await get(cache, compute)
        clock.now += POLICY.ttl_seconds + POLICY.stale_grace_seconds + 1
        compute.fail = RuntimeError("down")
        return await get(cache, compute)

    with pytest.raises(RuntimeError):
        asyncio.run(scenario())


def test_degraded_results_are_never_stored(store) -> None:
    clock, compute = FakeClock(), Computation()
    compute.degraded = ("recommendations",)

    async def scenario():
        cache = cache_for(store, clock)
        first = await get(cache, compute)
        compute.degraded = ()
        second = await get(cache, compute)
        return first, second

    first, second = asyncio.run(scenario())
    assert first.entry.degraded == ("recommendations",)
    assert (first.state, second.state) == ("miss", "miss")
    assert compute.calls == 2


def test_a_second_process_waits_for_the_lock_holder_instead_of_recomputing(redis_url) -> None:
    """Two caches on one Redis are two processes; only one recomputes a missing key."""
    clock, compute = FakeClock(), Computation()

    async def scenario():
        one = cache_for(RedisStore(redis_url, timeout=0.5), clock, seed=1)
        two = cache_for(RedisStore(redis_url, timeout=0.5), clock, seed=2)
        compute.gate = asyncio.Event()
        first = asyncio.ensure_future(get(one, compute))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(get(two, compute))
        await asyncio.sleep(0.05)
        compute.gate.set()
        return await first, await second

    first, second = asyncio.run(scenario())
    assert compute.calls == 1
    assert (first.state, second.state) == ("miss", "hit")
    assert second.entry.body == compute.body


def test_a_second_process_serves_stale_while_the_holder_recomputes(redis_url) -> None:
    clock, compute = FakeClock(), Computation()

    async def scenario():
        store = RedisStore(redis_url, timeout=0.5)
        one, two = cache_for(store, clock, 1), cache_for(RedisStore(redis_url, timeout=0.5),
                                                         clock, 2)  # fmt: skip
        await get(one, compute)
        clock.now += POLICY.ttl_seconds + 1
        compute.gate = asyncio.Event()
        holder = asyncio.ensure_future(get(one, compute))
        await asyncio.sleep(0.05)
        other = await get(two, compute)
        compute.gate.set()
        return await holder, other

    holder, other = asyncio.run(scenario())
    assert (holder.state, other.state) == ("miss", "stale")
    assert compute.calls == 2


def test_a_dead_store_costs_hits_not_requests() -> None:
    clock, compute = FakeClock(), Computation()
    dead = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)

    async def scenario():
        cache = cache_for(dead, clock)
        return [await get(cache, compute) for _ in range(5)]

    outcomes = asyncio.run(scenario())
    assert all(o.entry.body == compute.body for o in outcomes)
    assert compute.calls == 5
    assert not dead.healthy()  # the breaker opened: later calls skip Redis entirely


def test_store_errors_are_typed() -> None:
    async def scenario():
        await RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2).get("k")

    with pytest.raises(StoreUnavailable):
        asyncio.run(scenario())


def test_early_recomputation_refreshes_in_the_background(store) -> None:
    clock, compute = FakeClock(), Computation()

    async def scenario():
        cache = cache_for(store, clock, seed=3)
        await get(cache, compute)
        stored = Entry.decode(await cache.store.get("bff:k"))
        # XFetch fires when delta * -ln(rand) exceeds the time left; with a microsecond
        # left it fails only if -ln(rand) < 1e-6 / delta, so delta must not be tiny.
        stored = Entry(stored.body, stored.etag, delta=0.05, expiry=stored.expiry)
        await cache.store.set("bff:k", stored.encode(), ttl_ms=60_000)
        clock.now = stored.expiry - 1e-6
        outcome = await get(cache, compute)
        for _ in range(50):
            if compute.calls == 2:
                break
            await asyncio.sleep(0.01)
        return outcome

    outcome = asyncio.run(scenario())
    assert outcome.state == "hit"
    assert compute.calls == 2


def test_l1_answers_without_the_store() -> None:
    clock, compute = FakeClock(), Computation()
    l1 = L1(clock=clock)

    async def scenario():
        cache = cache_for(DjangoStore(), clock, l1=l1)
        await get(cache, compute, key="bff:shared")
        cache.store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
        return await get(cache, compute, key="bff:shared")

    assert asyncio.run(scenario()).state == "hit"
    assert compute.calls == 1


def test_an_l1_hit_is_refreshed_early_too() -> None:
    """XFetch applies to entries held in the L1, so a hot key rarely sees a miss."""
    clock, compute = FakeClock(), Computation()

    async def scenario():
        cache = cache_for(DjangoStore(), clock, seed=3, l1=L1(clock=clock))
        await get(cache, compute, key="bff:hot")
        held = cache.l1.get("bff:hot")
        cache.l1.put("bff:hot", Entry(held.body, held.etag, 0.05, held.expiry), 60.0)
        clock.now = held.expiry - 1e-6
        outcome = await get(cache, compute, key="bff:hot")
        for _ in range(50):
            if compute.calls == 2:
                break
            await asyncio.sleep(0.01)
        return outcome, cache.l1.get("bff:hot")

    outcome, refreshed = asyncio.run(scenario())
    assert outcome.state == "hit"
    assert compute.calls == 2
    assert refreshed is not None and refreshed.expiry > clock.now + 1  # replaced in the L1


def test_per_user_and_shared_caches_both_hold_an_l1(settings) -> None:
    from aggregation.cache import response_cache

    assert response_cache("per_user").l1 is not None
    assert response_cache("shared").l1 is not None
    assert response_cache("per_user").l1 is not response_cache("shared").l1


def test_a_corrupt_value_under_our_key_is_a_miss(redis_url) -> None:
    import redis

    redis.Redis.from_url(redis_url).set("bff:k", b"\x80\x04pickled?")
    compute = Computation()
    outcome = asyncio.run(get(cache_for(RedisStore(redis_url, timeout=0.5), FakeClock()), compute))
    assert outcome.state == "miss"


def test_an_unresolvable_redis_host_costs_hits_not_requests() -> None:
    compute = Computation()
    unknown = RedisStore("redis://no-such-redis-host.invalid:6379/0", timeout=0.2)

    async def scenario():
        cache = cache_for(unknown, FakeClock())
        return [await get(cache, compute) for _ in range(3)]

    assert all(o.entry.body == compute.body for o in asyncio.run(scenario()))
    assert compute.calls == 3
