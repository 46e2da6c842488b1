"""The remote CLI against a real registry server: CI with a token and no database.

One BFF runs under uvicorn on its own database; the CLI runs as a subprocess whose
environment has no DATABASE_URL, no DJANGO_DEBUG and none of the server's secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets

import pytest

from contracts.gate import Finding, evaluate
from tests.contracts.api.receiver import Receiver
from tests.live import LiveBFF, manage

WEBHOOK_SECRET = "live-webhook-secret"
ADD_WEBHOOK = (
    "from contracts.api.models import Webhook; "
    "Webhook.objects.create(name='local', url='{url}', secret='" + WEBHOOK_SECRET + "')"
)


def production(env: dict[str, str]) -> dict[str, str]:
    """The server as production runs it: DEBUG off, real secrets."""
    return {
        **env,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "JWT_SECRET": secrets.token_urlsafe(40),
        "INTERNAL_SERVICE_TOKEN": secrets.token_urlsafe(32),
    }


def new_token(env: dict[str, str], *args: str) -> str:
    result = manage("registry_token", "create", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split()[-1]


def ci_env(token: str, code: str | None = None) -> dict[str, str]:
    """What a CI job has: a PATH, the token, the checkout. No database, no secrets."""
    env = {"PATH": os.environ["PATH"], "CONTRACTS_REGISTRY_TOKEN": token}
    if code:
        env["BFF_ENDPOINTS"] = code
    return env


# The checkout as it is, then after a source declaration changed (each subprocess costs
# a Django start-up, so three states: serveable, breaking, a rule's field gone).
BREAKING = "tests.contracts.code_doubles.BREAKING"
CHANGES = (
    None,
    BREAKING,
    "tests.contracts.code_doubles.RENAMED_UPSTREAM",
)


def test_remote_check_gives_the_local_verdict_exit_code_and_output(registry) -> None:
    token = new_token(registry, "--user", "release-manager", "--scopes", "check")
    with LiveBFF(production(registry), migrate=False) as server:
        for code in CHANGES:
            local_env = {**registry, **({"BFF_ENDPOINTS": code} if code else {})}
            for output in ("text", "json"):
                local = manage("contracts", "check", "--format", output, env=local_env)
                remote = manage("contracts", "check", "--format", output, "--registry",
                                server.url, env=ci_env(token, code))  # fmt: skip
                assert (remote.returncode, remote.stdout) == (local.returncode, local.stdout), (
                    code, remote.stderr)  # fmt: skip
            assert local.returncode == (0 if code is None else 1)


def test_remote_propose_and_export_work_as_the_local_commands(registry) -> None:
    proposer = new_token(registry, "--user", "mobile-dev", "--scopes", "propose,read",
                         "--client", "mobile")  # fmt: skip
    checker = new_token(registry, "--user", "mobile-dev", "--scopes", "check")
    with Receiver() as receiver:
        assert manage("shell", "-c", ADD_WEBHOOK.format(url=receiver.url),
                      env=registry).returncode == 0  # fmt: skip
        with LiveBFF(production(registry), migrate=False) as server:
            code = "tests.contracts.code_doubles.ADDITIVE"
            refused = manage("contracts", "propose", "mobile", "home", "--registry", server.url,
                             env=ci_env(checker, code))  # fmt: skip
            assert refused.returncode == 1
            assert "403" in refused.stderr and "'propose' scope" in refused.stderr
            proposed = manage("contracts", "propose", "mobile", "home", "--registry", server.url,
                              env=ci_env(proposer, code))  # fmt: skip
            assert proposed.returncode == 0, proposed.stderr
            assert "additive  user.avatarUrl: is never null any more" in proposed.stdout
            assert proposed.stdout.strip().splitlines()[-1].startswith(
                "proposed mobile/home v1 as version #")  # fmt: skip
            propose_v1 = ("contracts", "propose", "mobile", "home", "--major", "1")
            breaking = manage(*propose_v1, "--registry", server.url,
                              env=ci_env(proposer, BREAKING))  # fmt: skip
            local = manage(*propose_v1, env={**registry, "BFF_ENDPOINTS": BREAKING})
            assert breaking.returncode == local.returncode == 1
            assert breaking.stderr == local.stderr
            remote_export = manage("contracts", "export", "--registry", server.url,
                                   env=ci_env(proposer))  # fmt: skip
            local_export = manage("contracts", "export", env=registry)
            assert remote_export.returncode == 0
            # A mobile-only token exports the mobile contracts.
            assert json.loads(remote_export.stdout) == {
                "mobile": json.loads(local_export.stdout)["mobile"]}  # fmt: skip
            received = receiver.wait_for(1)
    assert len(received) == 1
    delivery = received[0]
    expected = hmac.new(WEBHOOK_SECRET.encode(), delivery["body"], hashlib.sha256).hexdigest()
    assert delivery["headers"]["X-Registry-Signature"] == f"sha256={expected}"
    payload = json.loads(delivery["body"])
    assert payload["event"] == "submitted"
    assert payload["text"].startswith("mobile/home v1: mobile-dev submitted")


@pytest.mark.integration  # a subprocess
def test_remote_commands_need_a_token_and_a_reachable_registry() -> None:
    no_token = manage("contracts", "check", "--registry", "http://127.0.0.1:9", env=ci_env(""))
    assert no_token.returncode == 1
    assert "CONTRACTS_REGISTRY_TOKEN" in no_token.stderr
    unreachable = manage("contracts", "check", "--registry", "http://127.0.0.1:9",
                         env=ci_env("bffreg_x"))  # fmt: skip
    assert unreachable.returncode == 1
    assert "cannot reach the registry" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr + no_token.stderr


@pytest.mark.django_db
def test_findings_survive_the_trip_through_json(demo, settings) -> None:
    for code in (*CHANGES[1:], "tests.contracts.code_doubles.NEW_ENDPOINT"):
        settings.BFF = {**settings.BFF, "ENDPOINTS": code}
        findings = evaluate()
        assert findings
        assert [Finding.from_dict(f.as_dict()) for f in findings] == findings


def test_every_propose_command_the_remote_gate_prints_works_remotely(registry) -> None:
    token = new_token(registry, "--user", "mobile-dev", "--scopes", "check,propose",
                      "--client", "mobile")  # fmt: skip
    renamed = "tests.contracts.code_doubles.RENAMED_UPSTREAM"
    with LiveBFF(production(registry), migrate=False) as server:
        check = manage("contracts", "check", "--format", "json", "--registry", server.url,
                       env=ci_env(token, renamed))  # fmt: skip
        assert check.returncode == 1
        commands = [f["propose"] for f in json.loads(check.stdout)["findings"] if f["propose"]]
        assert any("--remap user.avatarUrl=profileImageUrl" in c for c in commands), commands
        for command in commands:
            args = command.split("manage.py ", 1)[1].split()
            proposed = manage(*args, "--registry", server.url, env=ci_env(token, renamed))
            assert proposed.returncode == 0, (command, proposed.stderr)
            assert "[remap]" in proposed.stdout
