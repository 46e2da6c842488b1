"""seed_demo: the demo logins and roles, idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from contracts import roles

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_creates_the_demo_logins_with_their_roles(settings) -> None:
    settings.DEBUG = True
    output = seed()
    assert "mobile-demo-password" in output
    admin = authenticate(username="admin", password="admin-demo-password")
    assert admin is not None and admin.is_superuser
    mobile = authenticate(username="mobile-dev", password="mobile-demo-password")
    assert list(mobile.groups.values_list("name", flat=True)) == [roles.frontend_team("mobile")]
    assert mobile.is_staff and not mobile.is_superuser
    manager = authenticate(username="release-manager", password="release-demo-password")
    assert list(manager.groups.values_list("name", flat=True)) == [roles.RELEASE_MANAGERS]


def test_running_twice_changes_nothing(settings) -> None:
    settings.DEBUG = True
    seed()
    users = list(get_user_model().objects.order_by("username").values_list("username", "is_staff"))
    seed()
    assert (
        list(get_user_model().objects.order_by("username").values_list("username", "is_staff"))
        == users
    )
    assert get_user_model().objects.get(username="mobile-dev").groups.count() == 1


def test_production_never_uses_a_well_known_password(settings) -> None:
    settings.DEBUG = False
    output = seed()
    assert "admin-demo-password" not in output
    assert authenticate(username="admin", password="admin-demo-password") is None
    second = seed()
    assert "(unchanged)" in second
