"""Admin logins: throttled by django-axes, and every admin page under a CSP."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from tests.contracts.test_admin import PASSWORDS

LOGIN = "/admin/login/?next=/admin/"


def attempt(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


@pytest.fixture
def axes(demo):
    from axes.models import AccessAttempt

    with override_settings(AXES_ENABLED=True):
        yield
    AccessAttempt.objects.all().delete()


def test_the_sixth_wrong_password_locks_the_login(axes) -> None:
    client = Client()
    for _ in range(5):
        assert attempt(client, "mobile-dev", "wrong-password").status_code == 200
    assert attempt(client, "mobile-dev", "wrong-password").status_code == 429
    response = attempt(client, "mobile-dev", PASSWORDS["mobile-dev"])
    assert not logged_in(response)
    assert response.status_code == 429
    assert b"Login locked" in response.content


def test_fewer_failures_do_not_lock_and_success_resets_them(axes) -> None:
    client = Client()
    for _ in range(5):
        attempt(client, "mobile-dev", "wrong-password")
    assert logged_in(attempt(client, "mobile-dev", PASSWORDS["mobile-dev"]))
    other = Client()
    for _ in range(5):
        attempt(other, "mobile-dev", "wrong-password")
    assert logged_in(attempt(other, "mobile-dev", PASSWORDS["mobile-dev"]))


def test_a_locked_account_does_not_lock_another(axes) -> None:
    for _ in range(7):
        attempt(Client(), "mobile-dev", "wrong-password")
    assert logged_in(attempt(Client(), "web-dev", PASSWORDS["web-dev"]))


def test_admin_pages_carry_a_content_security_policy(demo) -> None:
    response = Client().get(LOGIN)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy
