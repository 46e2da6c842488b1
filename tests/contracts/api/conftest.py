"""Registry API fixtures: the demo registry, tokens with chosen scopes, an API client."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from contracts.api import tokens
from tests.live import base_env, seed

API = "/registry/api/v1"


class TokenClient(APIClient):
    """An API client that sends one bearer token on every request."""

    def __init__(self, secret: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if secret:
            self.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def token_for(demo):
    """``token_for("mobile-dev", "check", "propose")`` → an API client with such a token."""

    def make(username: str, *scopes: str, client: str | None = None) -> TokenClient:
        user = demo.get(username=username)
        _, secret = tokens.issue(user, name="test", scopes=scopes, client=client)
        api = TokenClient(secret)
        api.secret = secret
        return api

    return make


@pytest.fixture
def registry(tmp_path, redis_url) -> dict[str, str]:
    """The environment of a registry server: its own seeded database file, the real Redis."""
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'registry.sqlite3'}",
                   REDIS_URL=redis_url)  # fmt: skip
    seed(env)
    return env
