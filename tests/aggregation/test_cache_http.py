"""The response cache through real HTTP: the incident, isolation, 304s, Redis failing,
and one recomputation per expiry across two BFF processes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import replace

import httpx
import pytest
import redis
from django.test import AsyncClient, Client

from aggregation.cache import Entry
from contract_core.schema import Rule
from contracts import services as registry_services
from contracts.models import Endpoint
from tests.conftest import free_port
from tests.live import LiveBFF, base_env, manage, seed
from tests.timing import until


@pytest.fixture
def on_redis(bff, settings, redis_url):
    settings.BFF = {**settings.BFF, "REDIS_URL": redis_url, "REDIS_SOCKET_TIMEOUT": 0.25}
    return redis_url


def get(client: Client, token: str, major: int = 1, **headers):
    return client.get(f"/mobile/v{major}/home", HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def approve(rules: list[Rule], *, new_major: bool, capture) -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    home = Endpoint.objects.get(client__name="mobile", name="home")
    base = registry_services.latest_approved(home.majors.get(number=1))
    draft = registry_services.CreateDraft(users.get(username="mobile-dev"), home,
                                          from_version=base, rules=rules,
                                          new_major=new_major).execute()  # fmt: skip
    registry_services.SubmitForReview(users.get(username="mobile-dev"), draft).execute()
    with capture(execute=True):
        registry_services.Approve(users.get(username="release-manager"), draft).execute()


def test_the_incident_a_renamed_field_never_comes_from_an_old_cache_entry(
    on_redis, token, django_capture_on_commit_callbacks
) -> None:
    client, user_token = Client(), token("usr_77")
    assert get(client, user_token).json()["meta"]["cache"] == "miss"
    cached = get(client, user_token).json()
    assert cached["meta"]["cache"] == "hit"
    assert "avatarUrl" in cached["user"]
    old_keys = redis.Redis.from_url(on_redis).keys("bff:mobile:home:v1.0:*:u:usr_77")
    assert len(old_keys) == 1

    # The rename is breaking, so the registry only takes it as a new major: v2.
    from aggregation.surfaces import MOBILE_HOME  # noqa: F401 - the code serving both

    home = Endpoint.objects.get(client__name="mobile", name="home")
    v1_rules = registry_services.rules_of(
        registry_services.latest_approved(home.majors.get(number=1))
    )
    renamed = [r for r in v1_rules if r.source != "avatarUrl"] + [
        Rule("user", "avatarUrl", "profileImageUrl")
    ]
    approve(renamed, new_major=True, capture=django_capture_on_commit_callbacks)

    for _ in range(3):
        v1 = get(client, user_token, 1).json()
        assert "avatarUrl" in v1["user"] and "profileImageUrl" not in v1["user"]
        assert v1["meta"]["schemaVersion"] == "1.0"
        v2 = get(client, user_token, 2).json()
        assert "profileImageUrl" in v2["user"] and "avatarUrl" not in v2["user"]
        assert v2["meta"]["schemaVersion"] == "2.0"
    # No flush happened: the v1.0 entry is still there, simply no longer read by v2.
    assert redis.Redis.from_url(on_redis).exists(old_keys[0])


def test_an_additive_bump_is_served_at_once_despite_a_warm_cache(
    on_redis, token, django_capture_on_commit_callbacks
) -> None:
    client, user_token = Client(), token("usr_78")
    get(client, user_token)
    assert get(client, user_token).json()["meta"]["cache"] == "hit"
    home = Endpoint.objects.get(client__name="mobile", name="home")
    rules = registry_services.rules_of(registry_services.latest_approved(home.majors.get(number=1)))
    approve([*rules, Rule("user", "country")], new_major=False,
            capture=django_capture_on_commit_callbacks)  # fmt: skip
    body = get(client, user_token).json()
    assert body["meta"]["schemaVersion"] == "1.1"
    assert body["meta"]["cache"] == "miss"
    assert "country" in body["user"]


def test_users_never_receive_each_others_entries_under_concurrency(on_redis, token) -> None:
    tokens = {f"usr_{n}": token(f"usr_{n}") for n in range(300, 360)}

    async def round_trip():
        client = AsyncClient()
        responses = await asyncio.gather(*(
            client.get("/mobile/v1/home", headers={"Authorization": f"Bearer {value}"})
            for value in tokens.values()
        ))  # fmt: skip
        return [r.json() for r in responses]

    for expected_state in ("miss", "hit"):
        bodies = asyncio.run(round_trip())
        assert [b["user"]["userId"] for b in bodies] == list(tokens)
        assert {b["meta"]["cache"] for b in bodies} == {expected_state}


def test_etag_and_if_none_match(on_redis, token) -> None:
    client, user_token = Client(), token("usr_79")
    first = get(client, user_token)
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = get(client, user_token, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert again["Cache-Control"] == "private, max-age=30, s-maxage=0"
    assert again["X-Trace-Id"]
    other = get(client, user_token, HTTP_IF_NONE_MATCH='"something-else"')
    assert other.status_code == 200


def test_a_degraded_page_is_not_cached(on_redis, token, bff) -> None:
    client, user_token = Client(), token("usr_80")
    bff.set_faults("recommendation", status=503)
    degraded = get(client, user_token)
    assert degraded.json()["meta"]["degraded"] is True
    assert "ETag" not in degraded
    bff.clear_faults("recommendation")
    whole = get(client, user_token).json()
    assert whole["meta"]["degraded"] is False
    assert whole["meta"]["cache"] == "miss"
    assert len(whole["recommendations"]) == 6


@pytest.fixture
def private_redis(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()

    def start() -> subprocess.Popen:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=port, socket_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return process
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    servers = {"process": start()}
    yield port, servers, start
    servers["process"].terminate()
    servers["process"].wait()


def test_requests_keep_succeeding_while_redis_stops_and_comes_back(
    bff, settings, token, private_redis
) -> None:
    port, servers, start = private_redis
    settings.BFF = {**settings.BFF, "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                    "REDIS_SOCKET_TIMEOUT": 0.2}  # fmt: skip
    client, user_token = Client(), token("usr_81")
    assert get(client, user_token).json()["meta"]["cache"] == "miss"
    assert get(client, user_token).json()["meta"]["cache"] == "hit"

    servers["process"].terminate()
    servers["process"].wait()
    for n in range(5):
        # The page this worker holds in memory is still served while it is fresh.
        held = get(client, user_token)
        assert held.status_code == 200
        assert held.json()["user"]["userId"] == "usr_81"
        assert held.json()["meta"]["cache"] == "hit"
        # Another user's page needs the store: a dead Redis costs a miss, not seconds
        # (the latency the BFF reports for it).
        response = get(client, token(f"usr_9{n}"))
        assert response.status_code == 200
        body = response.json()
        assert body["user"]["userId"] == f"usr_9{n}"
        assert body["meta"]["cache"] == "miss"
        assert body["meta"]["latencyMs"] < 1500

    servers["process"] = start()
    states = []

    def cached_again() -> bool:
        states.append(get(client, token("usr_99")).json()["meta"]["cache"])
        return states[-1] == "hit"

    until(cached_again, interval=0.2, message=f"never a hit again: {states}")


def _two_bff_processes(tmp_path, demo_services, redis_url, ttl_seconds: int):
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'stampede.sqlite3'}",
        REDIS_URL=redis_url,
        RATE_LIMITS="off",
        # Entries expire here by moving their expiry in Redis (or by deleting them), which
        # a worker's in-memory copy cannot see: in real time both expire together. Off, so
        # every read meets the store, where the processes coordinate.
        CACHE_L1_MAX_ENTRIES="0",
        **demo_services.env,
    )
    seed(env)
    policy = (
        "from contracts.models import Endpoint; "
        f"Endpoint.objects.filter(name='home').update(cache_ttl_seconds={ttl_seconds}, "
        "cache_jitter_percent=0)"
    )
    assert manage("shell", "-c", policy, env=env).returncode == 0
    return LiveBFF(env, migrate=False), LiveBFF(env, migrate=False)


async def _burst(urls: list[str], user_token: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        return await asyncio.gather(*(
            client.get(f"{urls[i % len(urls)]}/mobile/v1/home",
                       headers={"Authorization": f"Bearer {user_token}"})
            for i in range(count)
        ))  # fmt: skip


def _expire(redis_url: str, pattern: str) -> None:
    """Make the entries under ``pattern`` expire now, as if their TTL had run out: the
    logical expiry moves into the past, the stored value stays (a TTL of ttl + grace),
    exactly what the processes find once the TTL has passed, without waiting for it."""
    client = redis.Redis.from_url(redis_url)
    keys = [key for key in client.keys(pattern) if not key.endswith(b":lock")]
    assert keys, pattern
    for key in keys:
        entry = Entry.decode(client.get(key))
        client.set(key, replace(entry, expiry=time.time() - 0.2).encode(), keepttl=True)


def test_one_recomputation_for_200_requests_across_two_processes(
    tmp_path, demo_services, redis_url, token
) -> None:
    demo_services.reset()
    # A slower page widens the window in which a stampede could happen.
    demo_services.set_faults("recommendation", latency_ms=150)
    # A TTL far longer than a burst takes on a loaded machine: a burst outliving the fresh
    # entry would rightly cause a second recomputation and blur the count.
    first, second = _two_bff_processes(tmp_path, demo_services, redis_url, ttl_seconds=300)
    user_token = token("usr_4242")
    with first, second:
        urls = [first.url, second.url]

        def user_calls() -> int:
            return demo_services.stats("user")["by_user"].get("usr_4242", 0)

        warm = asyncio.run(_burst(urls, user_token, 1))
        assert warm[0].status_code == 200
        assert user_calls() == 1

        # The hot key expires; 200 requests arrive on both processes.
        _expire(redis_url, "bff:mobile:home:*:u:usr_4242")
        responses = asyncio.run(_burst(urls, user_token, 200))
        assert {r.status_code for r in responses} == {200}
        assert user_calls() == 2, "an expired hot key was recomputed more than once"
        states = {r.json()["meta"]["cache"] for r in responses}
        assert states <= {"hit", "miss", "stale"}

        # The key vanishes altogether (evicted, flushed): still one recomputation.
        redis.Redis.from_url(redis_url).delete(
            *redis.Redis.from_url(redis_url).keys("bff:mobile:home:*")
        )
        responses = asyncio.run(_burst(urls, user_token, 200))
        assert {r.status_code for r in responses} == {200}
        assert user_calls() == 3, "a missing hot key was recomputed more than once"
        assert all(r.json()["user"]["userId"] == "usr_4242" for r in responses)


def test_200_requests_for_an_unknown_user_share_one_404(
    tmp_path, demo_services, redis_url, token
) -> None:
    """Negative results are shared: in process by the single flight, across processes by
    a short negative entry written before the lock is released."""
    demo_services.reset()
    # A fast 404: requests arriving after one flight has ended must not start another.
    first, second = _two_bff_processes(tmp_path, demo_services, redis_url, ttl_seconds=30)
    ghost = token("usr_ghost")  # not a user id the user service knows
    with first, second:
        urls = [first.url, second.url]
        # Two waves: the second arrives after the first's flights have ended, which is
        # what only a shared negative result (not the single flight alone) answers.
        responses = asyncio.run(_burst(urls, ghost, 100)) + asyncio.run(_burst(urls, ghost, 100))
        assert {r.status_code for r in responses} == {404}
        assert {r.json()["error"]["code"] for r in responses} == {"NOT_FOUND"}
        calls = demo_services.stats("user")["by_user"].get("usr_ghost", 0)
        assert 1 <= calls <= 2, f"{calls} user-service calls for one unknown user"
