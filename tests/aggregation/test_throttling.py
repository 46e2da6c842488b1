"""Per-client rate limits on real Redis and on the in-process cache, with an injected clock."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis

from aggregation import throttling
from aggregation.auth import Principal
from aggregation.errors import RateLimited
from aggregation.throttling import (
    ClientRateThrottle,
    DjangoCounter,
    RedisCounter,
    check_rate,
    encode_subject,
    parse_rate,
)
from tests.conftest import free_port

RATES = {"mobile": "3/min", "web": "5/min", "partner": "2/s"}
# A minute boundary, plus 20 seconds into that minute.
START = 1_700_000_040.0 + 20


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def who(subject: str = "usr_1", client: str = "mobile") -> Principal:
    return Principal(client=client, subject=subject, scopes=frozenset())


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.integration), "django"])
def store(request, settings) -> str:
    """Settings with the test rates, on Redis or (REDIS_URL unset) on Django's cache."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings.BFF = {**settings.BFF, "REDIS_URL": url, "RATE_LIMITS": dict(RATES)}
    throttling.reset()
    yield request.param
    throttling.reset()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    # DRF's seam: the throttle's timer is a class attribute tests replace.
    monkeypatch.setattr(ClientRateThrottle, "timer", clock)
    return clock


async def admitted(principal: Principal, times: int) -> list[bool]:
    results = []
    for _ in range(times):
        try:
            await check_rate(principal)
        except RateLimited:
            results.append(False)
        else:
            results.append(True)
    return results


def test_the_request_over_the_rate_is_refused_with_retry_after(store, clock) -> None:
    async def scenario() -> RateLimited:
        for _ in range(3):
            await check_rate(who())
        with pytest.raises(RateLimited) as refused:
            await check_rate(who())
        return refused.value

    refused = asyncio.run(scenario())
    assert refused.status == 429
    assert refused.code == "RATE_LIMITED"
    assert refused.headers == {"Retry-After": "40"}  # 20 s into a one-minute window


def test_retry_after_rounds_up_to_the_window_end(store, clock) -> None:
    clock.now = START + 39.2
    assert asyncio.run(admitted(who(), 3)) == [True] * 3
    with pytest.raises(RateLimited) as refused:
        asyncio.run(check_rate(who()))
    assert refused.value.headers["Retry-After"] == "1"


def test_each_user_has_their_own_budget(store, clock) -> None:
    assert asyncio.run(admitted(who("usr_1"), 4)) == [True, True, True, False]
    assert asyncio.run(admitted(who("usr_2"), 4)) == [True, True, True, False]


def test_each_client_has_its_own_rate(store, clock) -> None:
    assert asyncio.run(admitted(who("u", "mobile"), 6)) == [True] * 3 + [False] * 3
    assert asyncio.run(admitted(who("u", "web"), 6)) == [True] * 5 + [False]
    assert asyncio.run(admitted(who("u", "partner"), 3)) == [True, True, False]


def test_the_budget_comes_back_in_the_next_window(store, clock) -> None:
    assert asyncio.run(admitted(who(), 4)) == [True, True, True, False]
    clock.now = START + 39.999
    assert asyncio.run(admitted(who(), 1)) == [False]
    clock.now = START + 40
    assert asyncio.run(admitted(who(), 4)) == [True, True, True, False]


def test_off_never_throttles(store, clock, settings) -> None:
    settings.BFF = {**settings.BFF, "RATE_LIMITS": None}
    assert all(asyncio.run(admitted(who(), 50)))


def test_a_client_without_a_rate_is_not_throttled(store, clock, settings) -> None:
    settings.BFF = {**settings.BFF, "RATE_LIMITS": {"web": "1/min"}}
    assert all(asyncio.run(admitted(who(client="mobile"), 20)))
    assert asyncio.run(admitted(who(client="web"), 2)) == [True, False]


def test_concurrent_requests_admit_exactly_the_limit(store, clock, settings) -> None:
    """Fifty at once against a limit of ten, through two separate store clients (two
    processes' worth of connection pools, on Redis): exactly ten get through."""
    settings.BFF = {**settings.BFF, "RATE_LIMITS": {"mobile": "10/min"}}
    url = settings.BFF["REDIS_URL"]

    def counter():
        return RedisCounter(url, timeout=0.5) if url else DjangoCounter()

    first, second = counter(), counter()

    async def one(store) -> bool:
        throttle = ClientRateThrottle("mobile")
        throttle.cache = store
        return await throttle.allow(who())

    async def together() -> list[bool]:
        return await asyncio.gather(*(one(first if i % 2 else second) for i in range(50)))

    assert sum(asyncio.run(together())) == 10


def test_the_window_key_is_prefixed_and_expires(redis_url, settings, clock) -> None:
    settings.BFF = {**settings.BFF, "REDIS_URL": redis_url, "RATE_LIMITS": dict(RATES)}
    throttling.reset()
    asyncio.run(check_rate(who("usr:1@x")))
    window = int(START // 60)
    key = f"{settings.BFF['CACHE_KEY_PREFIX']}:throttle:mobile:usr%3A1%40x:{window}"
    client = redis.Redis.from_url(redis_url)
    assert client.get(key) == b"1"
    # The window has 40 s left; the key lives that long plus a second of grace.
    assert 40_000 < client.pttl(key) <= 41_000
    throttling.reset()


def test_a_dead_redis_lets_everything_through_and_logs_once(settings, clock, caplog) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.BFF = {
        **settings.BFF,
        "REDIS_URL": dead,
        "REDIS_SOCKET_TIMEOUT": 0.2,
        "RATE_LIMITS": {"mobile": "1/min"},
    }
    throttling.reset()
    with caplog.at_level(logging.WARNING, logger="aggregation.throttling"):
        assert all(asyncio.run(admitted(who(), 20)))
        clock.now += 59
        assert all(asyncio.run(admitted(who(), 5)))
    warnings = [r for r in caplog.records if r.name == "aggregation.throttling"]
    assert len(warnings) == 1
    clock.now += 1
    with caplog.at_level(logging.WARNING, logger="aggregation.throttling"):
        assert all(asyncio.run(admitted(who(), 1)))
    assert len([r for r in caplog.records if r.name == "aggregation.throttling"]) == 2
    throttling.reset()


def test_a_failing_django_cache_lets_everything_through(settings, clock) -> None:
    class Broken(DjangoCounter):
        def _count(self, key: str, ttl_ms: int) -> int:
            raise ConnectionError("cache backend down")

    async def scenario() -> list[bool]:
        throttle = ClientRateThrottle("mobile")
        throttle.cache = Broken()
        return [await throttle.allow(who()) for _ in range(10)]

    settings.BFF = {**settings.BFF, "RATE_LIMITS": {"mobile": "1/min"}}
    assert all(asyncio.run(scenario()))


@pytest.mark.parametrize(
    ("victim", "attacker"),
    [
        ("a:b", "a%3Ab"),
        ("usr_1:999", "usr_1"),
        ("usr_1", "usr_1:" + str(int(START // 60))),
        ("x" * 200, "x" * 201),
        ("é", "%C3%A9"),
        ("usr_1", "USR_1"),
        ("usr 1", "usr\n1"),
        ("#" + "0" * 64, "\ud800"),
    ],
)
def test_malformed_subjects_cannot_share_a_budget(store, clock, victim, attacker) -> None:
    assert asyncio.run(admitted(who(attacker), 4)) == [True, True, True, False]
    assert asyncio.run(admitted(who(victim), 3)) == [True, True, True]


def test_encoded_subjects_are_one_colon_free_key_segment() -> None:
    subjects = ["a:b", "a%3Ab", "../x", "a b", "\n", "é", "x" * 500, "\ud800", "#abc"]
    encoded = [encode_subject(s) for s in subjects]
    assert len(set(encoded)) == len(subjects)
    assert all(":" not in e and " " not in e and "\n" not in e for e in encoded)
    assert all(len(e) <= 128 for e in encoded)


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("120/min", (120, 60)), ("2/s", (2, 1)), ("3/hour", (3, 3600)), ("1/d", (1, 86400))],
)
def test_rates_are_read_as_drf_reads_them(rate, parsed) -> None:
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["fast", "10/fortnight", "-1/min", "1/", "/min"])
def test_a_malformed_rate_is_named(rate) -> None:
    with pytest.raises(ValueError, match="a rate must look like '120/min'"):
        parse_rate(rate)
