"""Fixtures for the client surfaces over real HTTP: demo services, a seeded registry, tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import StringIO

import pytest
from django.core.management import call_command

from aggregation.downstream import services
from aggregation.tokens import mint_token
from contracts.serving import registry
from demo_services.testing import DemoServices

# Short enough that a timeout test costs a second, long enough that a healthy demo service
# answers well inside it on a loaded two-core machine (at 0.5 s, a healthy call sometimes
# timed out there with both cores busy).
TEST_DOWNSTREAM = {
    "TIMEOUT_SECONDS": 1.0,
    "REQUEST_DEADLINE_SECONDS": 2.0,
    "MAX_RESPONSE_BYTES": 65_536,
    # Three failures in a row open a breaker (3 of 3 calls failed, at least 3 calls).
    "CIRCUIT_FAILURE_RATE": 0.5,
    "CIRCUIT_MINIMUM_CALLS": 3,
    "CIRCUIT_WINDOW_SECONDS": 30.0,
    "CIRCUIT_HALF_OPEN_CALLS": 1,
    "CIRCUIT_RESET_SECONDS": 30.0,
}


@pytest.fixture(scope="session")
def demo_services() -> Iterator[DemoServices]:
    """The four demo services in one subprocess, for the whole session."""
    with DemoServices() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_demo_services(request: pytest.FixtureRequest) -> None:
    """Zero the counters and clear the faults before each test that talks to the services."""
    if "demo_services" in request.fixturenames:
        request.getfixturevalue("demo_services").reset()


@pytest.fixture
def bff(db, settings, demo_services: DemoServices) -> Iterator[DemoServices]:
    """The BFF in this process, wired to the demo services, serving the demo registry.

    Every test starts with fresh downstream clients, so no circuit breaker remembers the
    failures of an earlier test.
    """
    call_command("seed_demo", stdout=StringIO())
    registry.refresh()
    settings.BFF = {
        **settings.BFF,
        "SERVICES": dict(demo_services.urls),
        "INTERNAL_SERVICE_TOKEN": demo_services.token,
        "DOWNSTREAM": dict(TEST_DOWNSTREAM),
    }
    services.reset()
    yield demo_services
    services.reset()


@pytest.fixture
def token() -> Callable[..., str]:
    """``token(sub)``: a valid bearer token for the mobile surface (or ``client=``)."""

    def make(sub: str = "usr_1", *, client: str = "mobile", **options: object) -> str:
        return mint_token(client, sub, **options)

    return make


@pytest.fixture(scope="session")
def live_bff(demo_services: DemoServices, tmp_path_factory: pytest.TempPathFactory):
    """A real BFF server (uvicorn, one worker) on the demo services, seeded, for the session.

    Shared: tests using it pick users and products no other test of it uses.
    """
    from tests.live import LiveBFF, base_env, seed

    database = tmp_path_factory.mktemp("live-bff") / "bff.sqlite3"
    env = base_env(
        DATABASE_URL=f"sqlite:///{database}",
        RATE_LIMITS="off",
        DOWNSTREAM_TIMEOUT_SECONDS="10",
        REQUEST_DEADLINE_SECONDS="15",
        # Tests that inject faults open breakers; the next test should not wait long.
        CIRCUIT_RESET_SECONDS="0.5",
        LOG_LEVEL="WARNING",
        **demo_services.env,
    )
    env.pop("REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    seed(env)
    with LiveBFF(env, migrate=False) as live:
        yield live
