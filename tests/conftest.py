"""Fixtures shared by the whole suite: a real Redis and free ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import redis

# Private Redis processes (one to stop, Sentinel, Cluster) as fixtures for every test module.
pytest_plugins = ["tests.redis_topologies"]

HOW_TO_GET_REDIS = (
    "These tests need Redis. Set REDIS_URL (for example redis://127.0.0.1:6379/7) or install "
    "redis-server (Debian: apt-get install redis-server) so the suite can start a private one."
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_redis(url: str, timeout: float = 10.0) -> None:
    client = redis.Redis.from_url(url, socket_timeout=0.5)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis URL: REDIS_URL when set, otherwise a private redis-server for this session."""
    url = os.environ.get("REDIS_URL")
    if url:
        _wait_for_redis(url)
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(HOW_TO_GET_REDIS, pytrace=False)
    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_redis(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied of this suite's database before each test."""
    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture(autouse=True)
def fresh_response_caches():
    """Every test starts with empty response caches: no entry leaks from one to the next."""
    from django.conf import settings

    if not settings.configured:  # the demo-service tests may run without Django
        yield
        return
    from django.core.cache import caches

    from aggregation import auth, cache

    cache.reset()
    auth.verified_tokens.clear()
    # A test about a dead cache must still be able to start.
    with contextlib.suppress(Exception):
        caches["default"].clear()
    yield
    cache.reset()


@pytest.fixture(autouse=True)
def fresh_registry():
    """Every test starts as a new process: no snapshot, never ready, nothing served yet."""
    from django.conf import settings

    if settings.configured:
        from contracts.serving import registry

        registry.forget()
    yield


@pytest.fixture
def demo(db, settings):
    """The demo registry (approved v1 contracts, one proposal in review) and its users."""
    from io import StringIO

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from contracts.serving import registry

    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    registry.refresh()
    return get_user_model().objects


@pytest.fixture(scope="session")
def demo_services():
    """The four demo internal services in one subprocess, for the whole session."""
    from demo_services.testing import DemoServices

    with DemoServices() as running:
        yield running


# --- tiers ---------------------------------------------------------------------------
# Every test is unit, integration or browser. A test is integration when it needs a real
# part: the database, Redis, the demo services, a live server, a subprocess. Modules whose
# tests start those themselves say so with ``pytestmark = pytest.mark.integration``.
# ``make test-fast`` runs the unit tier; ``make test`` runs all three.
INTEGRATION_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_setup", "demo", "bff", "demo_services", "services",
     "redis_server", "redis_url", "client", "admin_client", "live_server", "tmp_path",
     "tmp_path_factory"}
)  # fmt: skip


# --- Hypothesis profiles ---------------------------------------------------------------
# ``make test`` explores with Hypothesis's defaults (100 examples a property, 50 steps a
# state machine); the unit tier alone (``make test-fast``, ``pytest -m unit``) is the loop
# run while working, so it tries fewer. Examples that once failed are kept in
# .hypothesis/ and replayed first by both. HYPOTHESIS_PROFILE=thorough|fast chooses.
# No deadline in either: a loaded machine makes a slow example, not a wrong one.
hypothesis.settings.register_profile("thorough", deadline=None)
hypothesis.settings.register_profile("fast", deadline=None, max_examples=20, stateful_step_count=25)


def pytest_configure(config: pytest.Config) -> None:
    unit_only = (config.getoption("markexpr", "") or "").strip() == "unit"
    default = "fast" if unit_only else "thorough"
    hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("browser") or item.get_closest_marker("integration"):
            continue
        if item.get_closest_marker("django_db") or INTEGRATION_FIXTURES.intersection(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)
