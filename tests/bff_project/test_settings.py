"""Start-up as an operator sees it: clear one-line errors, and clean production settings."""

from __future__ import annotations

import os
import secrets

import pytest

from tests.live import manage, seed

# Starts servers or subprocesses of its own.
pytestmark = pytest.mark.integration

PRODUCTION_SECRETS = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "JWT_SECRET": secrets.token_urlsafe(40),
    "INTERNAL_SERVICE_TOKEN": secrets.token_urlsafe(24),
}
_OURS = (
    "DJANGO_",
    "JWT_",
    "DATABASE_URL",
    "REDIS_URL",
    "INTERNAL_SERVICE_TOKEN",
    "ALLOWED_HOSTS",
    "RATE_LIMITS",
    "CACHE_KEY_PREFIX",
    "_SERVICE_URL",
    "OPS_TOKEN",
    "MAX_HEADER_BYTES",
    "MAX_REQUEST_TARGET_BYTES",
)


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any of the product's variables, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not any(part in k for part in _OURS)}
    env["DJANGO_SETTINGS_MODULE"] = "bff_project.settings"
    env.update(values)
    return env


def assert_one_line_error(result, variable: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]], result.stderr
    assert lines[0].startswith("configuration error: ")
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("missing", sorted(PRODUCTION_SECRETS))
def test_production_start_up_names_the_missing_secret(missing: str) -> None:
    values = {k: v for k, v in PRODUCTION_SECRETS.items() if k != missing}
    assert_one_line_error(manage("check", env=clean_env(**values)), missing)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "postgres://:@:99999/"),
        ("DATABASE_URL", "mysql://root@127.0.0.1/test"),
        ("REDIS_URL", "redis://127.0.0.1:notaport/0"),
        ("REDIS_URL", "memcached://127.0.0.1"),
        ("DJANGO_DEBUG", "perhaps"),
        ("ALLOWED_HOSTS", ","),
        ("RATE_LIMITS", "mobile=lots"),
        ("USER_SERVICE_URL", "user-service:9101"),
        ("CACHE_KEY_PREFIX", "bad prefix"),
        ("REDIS_SOCKET_TIMEOUT", "never"),
        ("LOG_LEVEL", "chatty"),
        ("OPS_TOKEN", "short"),
        ("MAX_HEADER_BYTES", "lots"),
        ("MAX_HEADER_BYTES", "10"),
        ("MAX_REQUEST_TARGET_BYTES", "-1"),
        ("SHUTDOWN_DRAIN_SECONDS", "-1"),
        ("SHUTDOWN_GRACE_SECONDS", "3600"),
        ("CACHE_L1_MAX_ENTRIES", "-5"),
        ("CACHE_L1_MAX_ENTRIES", "plenty"),
    ],
)
def test_malformed_variable_stops_start_up_with_one_line(variable: str, value: str) -> None:
    result = manage("check", env=clean_env(**PRODUCTION_SECRETS, **{variable: value}))
    assert_one_line_error(result, variable)


def test_production_settings_pass_check_deploy_without_warnings(tmp_path) -> None:
    # The deploy checks include the contract gate, which needs a migrated, seeded registry.
    env = clean_env(**PRODUCTION_SECRETS, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    seed(env)
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_demo_mode_needs_no_secrets() -> None:
    result = manage("check", env=clean_env(DJANGO_DEBUG="1"))
    assert result.returncode == 0, result.stderr


def test_a_remote_registry_command_needs_no_database_and_no_secrets() -> None:
    env = clean_env(CONTRACTS_REGISTRY_TOKEN="bffreg_x")
    result = manage("contracts", "check", "--registry", "http://127.0.0.1:9", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("CommandError: cannot reach the registry"), result.stderr


def test_the_registry_client_mode_has_no_database() -> None:
    # Set by hand on a server, the mode cannot serve with demo secrets: it has no database.
    result = manage("migrate", env=clean_env(BFF_REGISTRY_CLIENT="1"))
    assert result.returncode != 0
    assert "settings.DATABASES is improperly configured" in result.stderr


def test_the_app_defaults_are_what_an_empty_environment_gives() -> None:
    """aggregation.conf.DEFAULTS and settings.py's environment defaults must agree."""
    script = (
        "from django.conf import settings; from aggregation.conf import DEFAULTS; "
        "print(sorted(k for k, v in DEFAULTS.items() if settings.BFF[k] != v))"
    )
    result = manage("shell", "--no-imports", "-c", script, env=clean_env(**PRODUCTION_SECRETS))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
