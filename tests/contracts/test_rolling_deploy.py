"""Real processes: the gate as CI and a load balancer see it, and a rolling deploy where
old and new code each serve their own version without ever mixing shapes."""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
import pytest
import redis

from tests.live import LiveBFF, base_env, manage

DOUBLE = "tests.contracts.code_doubles.ADDITIVE"
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
    assert manage("migrate", "--noinput", env=env).returncode == 0
    assert manage("seed_demo", env=env).returncode == 0
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


def test_old_and_new_code_each_serve_their_own_version_during_a_rolling_deploy(
    registry_env, redis_url
) -> None:
    new_env = {**registry_env, "BFF_ENDPOINTS": DOUBLE}
    assert manage("contracts", "propose", "mobile", "home", env=new_env).returncode == 0
    assert manage("shell", "-c", APPROVE_BOT_PROPOSAL, env=new_env).returncode == 0
    tokens = [
        manage(
            "mint_token", "--client", "mobile", "--sub", f"usr_{n}", env=registry_env
        ).stdout.strip()
        for n in range(500, 510)
    ]
    with LiveBFF(registry_env, migrate=False) as old, LiveBFF(new_env, migrate=False) as new:
        assert serving(old) == (200, serving(old)[1])
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
