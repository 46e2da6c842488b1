"""Registry fixtures: the demo registry and its users, seeded through the service layer."""

from __future__ import annotations

import pytest

from contracts.models import Endpoint


@pytest.fixture
def mobile_dev(demo):
    return demo.get(username="mobile-dev")


@pytest.fixture
def web_dev(demo):
    return demo.get(username="web-dev")


@pytest.fixture
def manager(demo):
    return demo.get(username="release-manager")


@pytest.fixture
def mobile_home(demo) -> Endpoint:
    return Endpoint.objects.get(client__name="mobile", name="home")
