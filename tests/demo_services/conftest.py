"""Fixtures for the demo services: one real subprocess per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from demo_services.testing import DemoServices


@pytest.fixture(scope="session")
def services() -> Iterator[DemoServices]:
    with DemoServices() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_services(request: pytest.FixtureRequest) -> None:
    """Zero the counters and clear the faults before each test that talks to the services
    (the others, plans and payloads in process, start no subprocess)."""
    if "services" in request.fixturenames:
        request.getfixturevalue("services").reset()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0, trust_env=False) as http:
        yield http


@pytest.fixture
def headers(services: DemoServices) -> dict[str, str]:
    return services.headers()
