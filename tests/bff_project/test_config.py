"""Unit tests of environment parsing: every malformed value is named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bff_project import config
from bff_project.config import ConfigError
from contract_core.clients import CLIENTS

SECRET = "x" * 40


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("TRUE", True), ("0", False), ("false", False), ("", False)],
)
def test_debug_flag_accepts_the_documented_spellings(raw: str, expected: bool) -> None:
    assert config.get_bool({"DJANGO_DEBUG": raw}, "DJANGO_DEBUG") is expected


def test_debug_flag_is_off_when_unset() -> None:
    assert config.get_bool({}, "DJANGO_DEBUG") is False


def test_debug_flag_refuses_anything_else() -> None:
    with pytest.raises(ConfigError, match="DJANGO_DEBUG"):
        config.get_bool({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG")


def test_allowed_hosts_is_comma_separated() -> None:
    assert config.get_list(
        {"ALLOWED_HOSTS": "a.example, b.example"}, "ALLOWED_HOSTS", default=[]
    ) == ["a.example", "b.example"]


def test_allowed_hosts_refuses_an_empty_list() -> None:
    with pytest.raises(ConfigError, match="ALLOWED_HOSTS"):
        config.get_list({"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS", default=[])


def test_database_defaults_to_the_sqlite_file(tmp_path: Path) -> None:
    db = config.database({}, default_sqlite=tmp_path / "db.sqlite3")
    assert db == {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}


def test_database_url_for_postgres_is_parsed() -> None:
    db = config.database(
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"}, default_sqlite=Path("x")
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == (
        "127.0.0.1",
        5432,
        "test",
        "postgres",
    )


@pytest.mark.parametrize(
    "raw",
    [
        "nonsense",
        "mysql://u@h/db",
        "http://h/db",
        "postgres://:@:99999/",
        "postgres://127.0.0.1:5432",
        "postgres:///db",
    ],
)
def test_malformed_database_url_is_named(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_URL"):
        config.database({"DATABASE_URL": raw}, default_sqlite=Path("x"))


def test_redis_url_unset_means_in_process_cache() -> None:
    assert config.redis_url({}) is None


@pytest.mark.parametrize(
    "raw",
    [
        "redis://127.0.0.1:6379/5",
        "rediss://cache.internal:6380/0",
        "unix:///run/redis.sock",
        "redis+sentinel://s1:26379,s2:26380,[::1]/mymaster/2",
        "redis+cluster://:secret@c1:7000,c2:7001",
    ],
)
def test_valid_redis_urls_pass(raw: str) -> None:
    assert config.redis_url({"REDIS_URL": raw}) == raw


def test_sentinel_and_cluster_urls_are_parsed() -> None:
    sentinel = config.redis_topology("redis+sentinel://:pw@s1:26379,s2/mymaster/2")
    expected = ("sentinel", "mymaster", 2, "pw")
    assert (sentinel.kind, sentinel.service, sentinel.db, sentinel.password) == expected
    assert sentinel.nodes == (("s1", 26379), ("s2", 26379))
    cluster = config.redis_topology("redis+cluster://c1:7000,c2")
    assert (cluster.kind, cluster.nodes) == ("cluster", (("c1", 7000), ("c2", 6379)))
    assert config.redis_topology("redis://h:6379/0").kind == "node"


@pytest.mark.parametrize(
    "raw",
    [
        "nonsense",
        "http://h:6379/0",
        "redis://h:99999/0",
        "redis://h:6379/abc",
        "redis://:6379/0",
        "redis+sentinel://s1:26379",
        "redis+sentinel://s1:26379/mymaster/x",
        "redis+sentinel://s1:port/mymaster",
        "redis+sentinel:///mymaster",
        "redis+sentinel://s1/MyMaster",
        "redis+cluster://c1:7000/3",
        "redis+cluster://c1:7000?ssl=1",
    ],
)
def test_malformed_redis_url_is_named(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^REDIS_URL"):
        config.redis_url({"REDIS_URL": raw})


@pytest.mark.parametrize(
    "raw", ["ftp://h:1", "127.0.0.1:9101", "http://", "http://h:port", "http://h:1/?q=1"]
)
def test_malformed_service_url_is_named(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^USER_SERVICE_URL"):
        config.service_url({"USER_SERVICE_URL": raw}, "USER_SERVICE_URL", default="http://x")


def test_service_url_drops_a_trailing_slash() -> None:
    assert config.service_url({}, "X", default="http://127.0.0.1:9101/") == "http://127.0.0.1:9101"


def test_rate_limits_have_a_default_per_client() -> None:
    assert config.rate_limits({}) == {"mobile": "120/min", "web": "300/min", "partner": "600/min"}


def test_rate_limits_off_disables_throttling() -> None:
    assert config.rate_limits({"RATE_LIMITS": "off"}) is None


@pytest.mark.parametrize(
    "raw",
    ["mobile=fast", "mobile=10/fortnight", "desktop=10/min", "mobile", "mobile=1/min,mobile=2/min"],
)
def test_malformed_rate_limits_are_named(raw: str) -> None:
    with pytest.raises(ConfigError, match="RATE_LIMITS"):
        config.rate_limits({"RATE_LIMITS": raw})


def test_a_single_rate_has_a_default_and_can_be_off() -> None:
    assert config.get_rate({}, "REGISTRY_API_RATE", default="600/min") == "600/min"
    assert config.get_rate({"R": "30/s"}, "R", default="600/min") == "30/s"
    assert config.get_rate({"R": "off"}, "R", default="600/min") is None
    with pytest.raises(ConfigError, match="R must look like"):
        config.get_rate({"R": "fast"}, "R", default="600/min")


@pytest.mark.parametrize("raw", ["has space", "a:b", "x" * 33])
def test_cache_prefix_must_not_break_the_key_format(raw: str) -> None:
    with pytest.raises(ConfigError, match="CACHE_KEY_PREFIX"):
        config.cache_prefix({"CACHE_KEY_PREFIX": raw})


@pytest.mark.parametrize(
    ("name", "raw"), [("BFF_TIMEOUT", "soon"), ("BFF_TIMEOUT", "-1"), ("BFF_TIMEOUT", "nan")]
)
def test_numbers_are_validated(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        config.get_float({name: raw}, name, default=1.0)


def test_numbers_above_their_maximum_are_refused() -> None:
    with pytest.raises(ConfigError, match="SHUTDOWN_GRACE_SECONDS must be at most 300"):
        config.get_float(
            {"SHUTDOWN_GRACE_SECONDS": "301"}, "SHUTDOWN_GRACE_SECONDS", default=10.0, maximum=300.0
        )
    assert config.get_float({"X": "300"}, "X", default=1.0, maximum=300.0) == 300.0


def test_circuit_policy_defaults_and_percent() -> None:
    assert config.circuit({}) == {
        "CIRCUIT_FAILURE_RATE": 0.5,
        "CIRCUIT_MINIMUM_CALLS": 20,
        "CIRCUIT_WINDOW_SECONDS": 10.0,
        "CIRCUIT_HALF_OPEN_CALLS": 3,
        "CIRCUIT_RESET_SECONDS": 5.0,
    }
    assert config.circuit({"CIRCUIT_FAILURE_RATE": "25"})["CIRCUIT_FAILURE_RATE"] == 0.25


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CIRCUIT_FAILURE_RATE", "0"),
        ("CIRCUIT_FAILURE_RATE", "101"),
        ("CIRCUIT_MINIMUM_CALLS", "0"),
        ("CIRCUIT_WINDOW_SECONDS", "never"),
        ("CIRCUIT_HALF_OPEN_CALLS", "0"),
        ("CIRCUIT_FAILURES", "5"),
    ],
)
def test_circuit_policy_is_validated(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        config.circuit({name: raw})


def test_required_secret_falls_back_to_the_demo_value_only_in_debug() -> None:
    assert config.require({}, "DJANGO_SECRET_KEY", debug=True, demo_default="demo") == "demo"
    with pytest.raises(ConfigError, match="DJANGO_SECRET_KEY is required"):
        config.require({}, "DJANGO_SECRET_KEY", debug=False, demo_default="demo")


def test_the_config_layer_knows_the_clients_of_the_core_list() -> None:
    # config.py keeps its own tuple (the settings layer imports nothing of the product);
    # the client names' one source is contract_core.clients.
    assert config.CLIENTS == CLIENTS


def test_every_client_shares_jwt_secret_by_default() -> None:
    auth = config.client_auth({"JWT_SECRET": SECRET}, debug=False, demo_secret="")
    assert {c: (a.algorithms, a.secret) for c, a in auth.items()} == {
        c: (("HS256",), SECRET) for c in config.CLIENTS
    }


def test_production_without_any_jwt_key_names_jwt_secret() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET is required"):
        config.client_auth({}, debug=False, demo_secret="demo")


def test_production_with_every_client_keyed_needs_no_shared_secret() -> None:
    env = {f"JWT_{c.upper()}_SECRET": SECRET + c for c in config.CLIENTS}
    auth = config.client_auth(env, debug=False, demo_secret="")
    assert auth["web"].secret == SECRET + "web"


def test_short_hmac_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET must be at least 32 bytes"):
        config.client_auth({"JWT_SECRET": "short"}, debug=False, demo_secret="")


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_public_key_client_pins_rs256() -> None:
    auth = config.client_auth(
        {"JWT_SECRET": SECRET, "JWT_PARTNER_PUBLIC_KEY": _pem()}, debug=False, demo_secret=""
    )
    assert auth["partner"].algorithms == ("RS256",)
    assert auth["partner"].secret is None
    assert auth["mobile"].secret == SECRET


def test_public_key_may_be_a_file_path(tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text(_pem())
    auth = config.client_auth(
        {"JWT_SECRET": SECRET, "JWT_WEB_PUBLIC_KEY": str(pem)}, debug=False, demo_secret=""
    )
    assert auth["web"].public_key.startswith("-----BEGIN PUBLIC KEY-----")


def test_garbage_public_key_is_named() -> None:
    with pytest.raises(ConfigError, match="JWT_WEB_PUBLIC_KEY"):
        config.client_auth(
            {"JWT_SECRET": SECRET, "JWT_WEB_PUBLIC_KEY": "-----BEGIN nope"},
            debug=False,
            demo_secret="",
        )


def test_hmac_algorithm_beside_a_public_key_is_refused() -> None:
    env = {"JWT_SECRET": SECRET, "JWT_WEB_PUBLIC_KEY": _pem(), "JWT_WEB_ALGORITHMS": "RS256,HS256"}
    with pytest.raises(ConfigError, match="JWT_WEB_ALGORITHMS"):
        config.client_auth(env, debug=False, demo_secret="")


def test_alg_none_is_never_accepted() -> None:
    with pytest.raises(ConfigError, match="JWT_MOBILE_ALGORITHMS"):
        config.client_auth(
            {"JWT_SECRET": SECRET, "JWT_MOBILE_ALGORITHMS": "none"}, debug=False, demo_secret=""
        )


def test_two_kinds_of_key_for_one_client_are_refused() -> None:
    env = {"JWT_WEB_SECRET": SECRET, "JWT_WEB_JWKS_URL": "https://idp.example/jwks.json"}
    with pytest.raises(ConfigError, match="set only one of JWT_WEB_"):
        config.client_auth(env, debug=True, demo_secret=SECRET)


def test_jwks_url_is_validated() -> None:
    with pytest.raises(ConfigError, match="JWT_WEB_JWKS_URL"):
        config.client_auth({"JWT_WEB_JWKS_URL": "not a url"}, debug=True, demo_secret=SECRET)


def test_sunset_notice_defaults_to_thirty_days() -> None:
    assert config.sunset_notice_days({}) == 30
    assert config.sunset_notice_days({"REGISTRY_MIN_SUNSET_NOTICE_DAYS": "90"}) == 90


@pytest.mark.parametrize("raw", ["-1", "soon", "3651"])
def test_sunset_notice_refuses_nonsense(raw: str) -> None:
    with pytest.raises(ConfigError, match="REGISTRY_MIN_SUNSET_NOTICE_DAYS"):
        config.sunset_notice_days({"REGISTRY_MIN_SUNSET_NOTICE_DAYS": raw})


def test_a_string_is_stripped_and_blank_means_its_default() -> None:
    assert config.get_str({"JWT_ISSUER": " https://idp "}, "JWT_ISSUER", default=None) == (
        "https://idp"
    )
    assert config.get_str({"JWT_ISSUER": "  "}, "JWT_ISSUER", default=None) is None
    assert config.is_set({"X": "/tmp/prom"}, "X") and not config.is_set({"X": ""}, "X")


def test_ops_token_is_optional_but_never_short() -> None:
    assert config.ops_token({}) is None
    assert config.ops_token({"OPS_TOKEN": "o" * 16}) == "o" * 16
    with pytest.raises(ConfigError, match=r"^OPS_TOKEN must be at least 16 characters$"):
        config.ops_token({"OPS_TOKEN": "short"})


def test_otel_exporter_and_log_level_are_checked() -> None:
    assert config.otel_exporter({}) is None
    assert config.otel_exporter({"OTEL_TRACES_EXPORTER": " OTLP "}) == "otlp"
    with pytest.raises(ConfigError, match=r"^OTEL_TRACES_EXPORTER must be console, otlp or none"):
        config.otel_exporter({"OTEL_TRACES_EXPORTER": "zipkin"})
    assert config.log_level({}) == "INFO"
    assert config.log_level({"LOG_LEVEL": "debug"}) == "DEBUG"
    with pytest.raises(ConfigError, match=r"^LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR"):
        config.log_level({"LOG_LEVEL": "chatty"})


def test_email_settings() -> None:
    assert config.email({}) == {
        "EMAIL_HOST": "localhost",
        "EMAIL_PORT": 25,
        "DEFAULT_FROM_EMAIL": "contract-registry@localhost",
    }
    with pytest.raises(ConfigError, match=r"^EMAIL_PORT must be an integer"):
        config.email({"EMAIL_PORT": "smtp"})


@pytest.mark.parametrize("raw", ["y", "ok", "2", "tru"])
def test_booleans_refuse_what_django_environ_alone_would_read(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^BFF_COMPRESSION must be 1/true or 0/false"):
        config.get_bool({"BFF_COMPRESSION": raw}, "BFF_COMPRESSION")


def test_a_secret_starting_with_a_dollar_is_taken_as_written() -> None:
    # django-environ's readers would look up a variable named after the dollar.
    assert config.get_str({"JWT_ISSUER": "$HOME"}, "JWT_ISSUER", default=None) == "$HOME"
    assert config.get_list({"ALLOWED_HOSTS": "$HOME"}, "ALLOWED_HOSTS", default=[]) == ["$HOME"]


def test_floats_keep_their_exponent() -> None:
    assert config.get_float({"X": "1e-1"}, "X", default=1.0) == 0.1
