"""Two users never receive each other's page, whatever the registry row says (SECURITY.md)."""

from __future__ import annotations

import itertools

import pytest
from django.test import Client

from contracts.models import CacheScope
from contracts.serving import registry
from tests.contracts.test_admin_security import force_scope

PER_USER_PAGES = [("mobile", "home", "/mobile/v1/home"), ("web", "dashboard", "/web/v1/dashboard")]


@pytest.mark.parametrize(
    ("page", "scope"), itertools.product(PER_USER_PAGES, [s.value for s in CacheScope])
)
def test_per_user_pages_stay_per_user_under_every_scope(bff, token, page, scope) -> None:
    client, name, url = page
    force_scope(client, name, scope)
    registry.refresh()
    seen = {}
    for user in ("usr_1", "usr_2", "usr_1", "usr_2"):
        response = Client().get(
            url, headers={"Authorization": f"Bearer {token(user, client=client)}"}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["user"]["userId"] == user
        assert response["Cache-Control"].startswith("private")
        assert "public" not in response["Cache-Control"]
        seen.setdefault(user, body["user"])
        assert body["user"] == seen[user]
    assert seen["usr_1"] != seen["usr_2"]
