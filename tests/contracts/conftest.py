"""Registry fixtures: the demo registry and its users, seeded through the service layer."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from contracts.models import Endpoint
from contracts.serving import registry


@pytest.fixture
def demo(db, settings):
    """The demo registry (approved v1 contracts, one proposal in review)."""
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    registry.refresh()
    return get_user_model().objects


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
