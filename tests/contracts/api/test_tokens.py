"""Registry API tokens: hashed at rest, shown once, scoped, revocable, rate limited."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from contracts.api import tokens
from contracts.api.models import ApiToken, digest
from tests.contracts.api.conftest import API, TokenClient

pytestmark = pytest.mark.django_db


def create(*args: str) -> str:
    out = StringIO()
    call_command("registry_token", "create", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_the_token_as_the_last_word(demo) -> None:
    output = create("--user", "mobile-dev", "--scopes", "check,propose", "--client", "mobile")
    secret = output.strip().splitlines()[-1].split()[-1]
    assert secret.startswith("bffreg_")
    token = ApiToken.objects.get()
    assert token.scopes == ["check", "propose"]
    assert token.client.name == "mobile"
    assert TokenClient(secret).post(f"{API}/check", {"endpoints": []},
                                    format="json").status_code == 200  # fmt: skip


def test_tokens_are_not_stored_in_clear_text(demo) -> None:
    secret = create("--user", "mobile-dev", "--scopes", "read").split()[-1]
    token = ApiToken.objects.get()
    assert token.digest == digest(secret)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM contracts_apitoken")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert secret not in stored
    assert secret[len("bffreg_") + 6 :] not in stored


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--user", "nobody", "--scopes", "read"), "no user 'nobody'"),
        (("--user", "mobile-dev", "--scopes", "read,admin"), "scopes must be some of"),
        (("--user", "mobile-dev", "--scopes", "read", "--client", "tablet"), "unknown client"),
        (("--user", "mobile-dev", "--scopes", "read", "--expires", "soon"), "--expires must"),
        (("--user", "mobile-dev", "--scopes", "read", "--expires", "2001-01-01"), "in the past"),
    ],
)
def test_bad_token_requests_are_command_errors(demo, args, message) -> None:
    with pytest.raises(CommandError, match=message):
        create(*args)
    assert not ApiToken.objects.exists()


def test_revoked_and_expired_tokens_are_401_and_use_is_recorded(demo) -> None:
    user = demo.get(username="mobile-dev")
    token, secret = tokens.issue(user, name="ci", scopes=["read"])
    api = TokenClient(secret)
    assert api.get(f"{API}/clients").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    call_command("registry_token", "revoke", token.prefix, stdout=StringIO())
    response = api.get(f"{API}/clients")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="registry"'
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    _, expiring = tokens.issue(user, name="short", scopes=["read"],
                               expires_at=timezone.now() + timedelta(seconds=60))  # fmt: skip
    ApiToken.objects.filter(name="short").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert TokenClient(expiring).get(f"{API}/clients").status_code == 401


def test_an_inactive_owner_makes_the_token_useless(demo) -> None:
    user = demo.get(username="mobile-dev")
    _, secret = tokens.issue(user, name="ci", scopes=["read"])
    user.is_active = False
    user.save()
    assert TokenClient(secret).get(f"{API}/clients").status_code == 401


def test_each_token_has_its_own_rate_limit_in_the_shared_cache(demo, settings) -> None:
    settings.REGISTRY_API = {**settings.REGISTRY_API, "RATE": "2/min"}
    user = demo.get(username="mobile-dev")
    first = TokenClient(tokens.issue(user, name="a", scopes=["read"])[1])
    second = TokenClient(tokens.issue(user, name="b", scopes=["read"], rate="5/min")[1])
    assert [first.get(f"{API}/clients").status_code for _ in range(3)] == [200, 200, 429]
    limited = first.get(f"{API}/clients")
    assert limited.json()["error"] == {**limited.json()["error"], "code": "RATE_LIMITED",
                                       "retryable": True}  # fmt: skip
    assert int(limited["Retry-After"]) >= 1
    assert [second.get(f"{API}/clients").status_code for _ in range(5)] == [200] * 5


def test_staff_create_a_token_in_the_admin_and_see_it_once(demo, client) -> None:
    admin = demo.get(username="admin")
    client.force_login(admin)
    owner = demo.get(username="web-dev")
    response = client.post("/admin/contracts/apitoken/add/", {
        "name": "web CI", "user": owner.pk, "scopes": ["check", "propose"], "rate": "",
    })  # fmt: skip
    assert response.status_code == 200, response.content[:2000]
    page = response.content.decode()
    token = ApiToken.objects.get()
    secret = page.split('id="registry-token-secret">')[1].split("<")[0]
    assert token.digest == digest(secret)
    assert token.created_by == admin
    listing = client.get("/admin/contracts/apitoken/").content.decode()
    assert secret not in listing
    assert token.prefix in listing
    client.post("/admin/contracts/apitoken/", {"action": "revoke_tokens",
                                               "_selected_action": [token.pk]})  # fmt: skip
    assert ApiToken.objects.get().revoked_at is not None


def test_the_rate_limit_is_counted_in_the_shared_redis(demo, settings, redis_url) -> None:
    import redis

    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url,
        "OPTIONS": {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
    }}  # fmt: skip
    settings.REGISTRY_API = {**settings.REGISTRY_API, "RATE": "1/min"}
    token, secret = tokens.issue(demo.get(username="web-dev"), name="ci", scopes=["read"])
    api = TokenClient(secret)
    assert api.get(f"{API}/clients").status_code == 200
    keys = redis.Redis.from_url(redis_url).keys(f"*throttle_registry_token_token:{token.pk}")
    assert len(keys) == 1
    # The count lives only in Redis, where every process of every instance reads it.
    assert TokenClient(secret).get(f"{API}/clients").status_code == 429


def test_a_dead_cache_lets_requests_through(demo, settings) -> None:
    from tests.conftest import free_port

    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
    }}  # fmt: skip
    settings.REGISTRY_API = {**settings.REGISTRY_API, "RATE": "1/min"}
    _, secret = tokens.issue(demo.get(username="web-dev"), name="ci", scopes=["read"])
    api = TokenClient(secret)
    assert [api.get(f"{API}/clients").status_code for _ in range(2)] == [200, 200]
