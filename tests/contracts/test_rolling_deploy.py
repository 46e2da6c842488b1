"""Real processes: the gate as CI and a load balancer see it, and a rolling deploy where
old and new code each serve their own version without ever mixing shapes."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shlex
import time

import httpx
import pytest
import redis

from demo_services import payloads
from demo_services.testing import DemoServices
from tests.live import LiveBFF, base_env, manage, seed

DOUBLE = "tests.contracts.code_doubles.ADDITIVE"
RENAMED = "tests.contracts.code_doubles.RENAMED_UPSTREAM"
BREAKING = "tests.contracts.code_doubles.BREAKING"
APPROVE_BOT_PROPOSAL = (
    "from contracts import services; from contracts.models import ContractVersion; "
    "from django.contrib.auth import get_user_model; "
    "v = ContractVersion.objects.get(status='submitted', author__username='contracts-bot'); "
    "services.Approve(get_user_model().objects.get(username='release-manager'), v).execute()"
)


@pytest.fixture
def registry_env(tmp_path, demo_services, redis_url):
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'registry.sqlite3'}",
        REDIS_URL=redis_url,
        RATE_LIMITS="off",
        **demo_services.env,
    )
    seed(env)
    return env


def production(env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**env, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "JWT_SECRET": "demo-jwt-secret-shared-by-every-client-change-me",
            "INTERNAL_SERVICE_TOKEN": env.get("INTERNAL_SERVICE_TOKEN", "demo-internal-token"),
            **extra}  # fmt: skip


def serving(bff: LiveBFF) -> tuple[int, dict]:
    response = httpx.get(f"{bff.url}/readyz", timeout=3)
    return response.status_code, response.json()["checks"]["contracts"]


def test_the_gate_blocks_then_propose_and_approve_unblock_it(registry_env) -> None:
    changed = {**registry_env, "BFF_ENDPOINTS": DOUBLE}
    check = manage("contracts", "check", env=changed)
    assert check.returncode == 1
    assert "became_non_nullable" in check.stdout
    assert "contracts propose mobile home --major 1" in check.stdout
    deploy = manage("check", "--deploy", env=production(changed))
    assert deploy.returncode != 0
    assert "contracts.E001" in deploy.stderr
    assert "Traceback" not in deploy.stderr

    with LiveBFF(changed, migrate=False) as bff:
        status, contracts = serving(bff)
        assert status == 503
        assert "mobile/home/v1" in contracts["unserveable"]

        assert manage("contracts", "propose", "mobile", "home", env=changed).returncode == 0
        assert manage("shell", "-c", APPROVE_BOT_PROPOSAL, env=changed).returncode == 0

        deadline = time.monotonic() + 5
        while serving(bff)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        status, contracts = serving(bff)
        assert status == 200
        assert contracts["serving"]["mobile/home/v1"] == "1.1"
    assert manage("contracts", "check", env=changed).returncode == 0
    deploy = manage("check", "--deploy", env=production(changed))
    assert "contracts.E" not in deploy.stderr


def test_check_deploy_on_an_unmigrated_database_is_an_error_not_a_traceback(tmp_path) -> None:
    env = production(base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}"))
    result = manage("check", "--deploy", env=env)
    assert result.returncode != 0
    assert "contracts.E004" in result.stderr
    assert "Traceback" not in result.stderr


async def _hammer(urls: list[str], tokens: list[str], rounds: int) -> list[tuple[str, dict]]:
    async with httpx.AsyncClient(timeout=10) as client:

        async def one(url: str, value: str):
            response = await client.get(
                f"{url}/mobile/v1/home", headers={"Authorization": f"Bearer {value}"}
            )
            return url, response.json()

        results = []
        for _ in range(rounds):
            results += await asyncio.gather(*(one(url, value) for url in urls for value in tokens))
        return results


def wait_for(probe, deadline_seconds: float = 5.0):
    """Poll ``probe`` (a cheap HTTP read) until it returns something truthy."""
    deadline = time.monotonic() + deadline_seconds
    while not (result := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def test_old_and_new_code_each_serve_their_own_version_during_a_rolling_deploy(
    registry_env, redis_url
) -> None:
    new_env = {**registry_env, "BFF_ENDPOINTS": DOUBLE}
    tokens = [
        manage(
            "mint_token", "--client", "mobile", "--sub", f"usr_{n}", env=registry_env
        ).stdout.strip()
        for n in range(500, 510)
    ]
    with LiveBFF(registry_env, migrate=False) as old:
        assert serving(old)[0] == 200
        assert manage("contracts", "propose", "mobile", "home", env=new_env).returncode == 0
        assert manage("shell", "-c", APPROVE_BOT_PROPOSAL, env=new_env).returncode == 0
        # The old instance sees v1.1 and stays ready on the v1.0 its code produces.
        assert wait_for(lambda: serving(old)[1].get("olderMinor"))
        with LiveBFF(new_env, migrate=False) as new:
            assert serving(old)[0] == 200
            assert serving(old)[1]["serving"]["mobile/home/v1"] == "1.0"
            assert serving(new)[0] == 200
            assert serving(new)[1]["serving"]["mobile/home/v1"] == "1.1"

            results = asyncio.run(_hammer([old.url, new.url], tokens, rounds=3))
    expected = {old.url: "1.0", new.url: "1.1"}
    for url, body in results:
        assert body["meta"]["schemaVersion"] == expected[url], (url, body["meta"])
    states = {body["meta"]["cache"] for _, body in results}
    assert states == {"miss", "hit"}

    # Every served response's version is the version in its cache key, per instance.
    keys = {key.decode() for key in redis.Redis.from_url(redis_url).keys("bff:mobile:home:*")}
    versions = {key.split(":")[3] for key in keys if ":u:usr_5" in key}
    assert versions == {"v1.0", "v1.1"}
    for n in range(500, 510):
        assert {k.split(":")[3] for k in keys if k.endswith(f":u:usr_{n}")} == {"v1.0", "v1.1"}


def home(bff: LiveBFF, token: str, major: int = 1) -> httpx.Response:
    return httpx.get(f"{bff.url}/mobile/v{major}/home",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip


@pytest.fixture
def renamed_user_service():
    """A user service that finished renaming ``avatarUrl`` to ``profileImageUrl``."""
    with DemoServices(args=["--user-avatar-field", "profileImageUrl"]) as running:
        yield running


def test_a_service_renaming_a_field_is_absorbed_in_the_same_major(
    registry_env, renamed_user_service, redis_url
) -> None:
    new_env = {**registry_env, "BFF_ENDPOINTS": RENAMED,
               "USER_SERVICE_URL": renamed_user_service.urls["user"]}  # fmt: skip
    with LiveBFF(registry_env, migrate=False) as old:
        assert serving(old)[0] == 200
        check = manage("contracts", "check", env=new_env)
        assert check.returncode == 1
        commands = re.findall(r"python manage\.py contracts propose [^\n]+", check.stdout)
        assert commands == [
            "python manage.py contracts propose mobile home --major 1 "
            "--remap user.avatarUrl=profileImageUrl"
        ]
        findings = json.loads(manage("contracts", "check", "--format", "json",
                                     env=new_env).stdout)["findings"]  # fmt: skip
        assert [f["propose"] for f in findings] == commands
        for command in commands:
            words = shlex.split(command)
            assert words[:2] == ["python", "manage.py"]
            assert manage(*words[2:], env=new_env).returncode == 0, command
        assert manage("shell", "-c", APPROVE_BOT_PROPOSAL, env=new_env).returncode == 0
        assert manage("contracts", "check", env=new_env).returncode == 0
        exported = json.loads(manage("contracts", "export", env=new_env).stdout)
        assert sorted(exported["mobile"]["home"]) == ["1.0", "1.1"]  # v1 live, no v2

        assert wait_for(lambda: serving(old)[1].get("olderMinor"))
        with LiveBFF(new_env, migrate=False) as new:
            assert serving(new)[0] == 200 and serving(old)[0] == 200
            for n in range(700, 706):
                sub = f"usr_{n}"
                token = manage("mint_token", "--client", "mobile", "--sub", sub,
                               env=registry_env).stdout.strip()  # fmt: skip
                avatar = payloads.user(sub)["avatarUrl"]
                new_body = home(new, token).json()
                old_body = home(old, token).json()
                assert new_body["meta"]["schemaVersion"] == "1.1", new_body
                assert old_body["meta"]["schemaVersion"] == "1.0", old_body
                assert new_body["user"]["avatarUrl"] == avatar == old_body["user"]["avatarUrl"]
                assert "profileImageUrl" not in new_body["user"]
                assert set(new_body["user"]) == set(old_body["user"])
    keys = {key.decode() for key in redis.Redis.from_url(redis_url).keys("bff:mobile:home:*")}
    assert {key.split(":")[3] for key in keys if key.endswith(":u:usr_700")} == {"v1.0", "v1.1"}


def test_a_new_major_for_newer_code_keeps_old_instances_ready_and_answers_503_there(
    registry_env,
) -> None:
    newer = {**registry_env, "BFF_ENDPOINTS": BREAKING}
    token = manage("mint_token", "--client", "mobile", "--sub", "usr_42",
                   env=registry_env).stdout.strip()  # fmt: skip
    with LiveBFF(registry_env, migrate=False) as old:
        assert serving(old)[0] == 200
        propose = manage("contracts", "propose", "mobile", "home", "--major", "2", env=newer)
        assert propose.returncode == 0, propose.stderr
        assert manage("shell", "-c", APPROVE_BOT_PROPOSAL, env=newer).returncode == 0
        assert wait_for(lambda: serving(old)[1].get("approvedForNewerCode"))
        status, contracts = serving(old)
        assert status == 200
        assert "mobile/home/v2" in contracts["approvedForNewerCode"]
        response = home(old, token, major=2)
        assert response.status_code == 503
        error = response.json()["error"]
        assert (error["code"], error["retryable"]) == ("CONTRACT_UNAVAILABLE", True)
        assert home(old, token).json()["meta"]["schemaVersion"] == "1.0"
        document = httpx.get(f"{old.url}/mobile/v2/openapi.json", timeout=10)
        assert document.status_code == 503
        assert document.json()["error"]["code"] == "CONTRACT_UNAVAILABLE"
        assert httpx.get(f"{old.url}/mobile/v3/openapi.json", timeout=10).status_code == 404
