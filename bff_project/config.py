"""Parses and validates the environment into typed settings values.

Every function takes the environment as a plain mapping and raises ``ConfigError`` with
one line naming the variable at fault, so ``settings.py`` can stop start-up with that
line instead of a traceback. Nothing here reads ``os.environ`` itself.

The generic casts (bool, int, list, URL) are django-environ's (``environ.Env.parse_value``);
the checks around them are ours and stricter. Env's own readers are not used: they expand
a value starting with ``$`` as the name of another variable, so a secret that begins with
``$`` would silently become something else. Numbers with a fraction go through ``float``:
django-environ's float cast drops every character but digits, ``,``, ``.`` and ``-``
(``1e3`` would become 13).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit

import dj_database_url
import environ
from redis.connection import parse_url as parse_redis_url

CLIENTS = ("mobile", "web", "partner")

# The HMAC family and the public-key families must never be mixed for one client:
# accepting both is exactly the key-confusion attack (an HS256 token signed with the
# RS256 public key as its secret).
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

# The spellings accepted; django-environ would read anything else as false.
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_RATE = re.compile(r"^(\d+)/(s|sec|second|m|min|minute|h|hour|d|day)$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class ConfigError(Exception):
    """An environment variable is missing or malformed; the message names it."""


def _cast(raw: str, cast: Any) -> Any:
    """django-environ's cast of one raw value (no ``$`` interpolation)."""
    return environ.Env.parse_value(raw, cast)


@dataclass(frozen=True)
class ClientAuth:
    """How one client's tokens are verified."""

    algorithms: tuple[str, ...]
    secret: str | None = None
    public_key: str | None = None
    jwks_url: str | None = None


def get_bool(env: Mapping[str, str], name: str, *, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ConfigError(f"{name} must be 1/true or 0/false, got {raw!r}")
    return _cast(value, bool)


def get_int(env: Mapping[str, str], name: str, *, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = _cast(raw, int)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def get_float(
    env: Mapping[str, str],
    name: str,
    *,
    default: float,
    minimum: float = 0.0,
    maximum: float = float("inf"),
) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    if value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {raw!r}")
    return value


def get_list(env: Mapping[str, str], name: str, *, default: list[str]) -> list[str]:
    raw = env.get(name)
    if raw is None:
        return list(default)
    items = [item.strip() for item in _cast(raw, list) if item.strip()]
    if not items:
        raise ConfigError(f"{name} must be a comma-separated list, got {raw!r}")
    return items


def get_str(env: Mapping[str, str], name: str, *, default: str | None) -> str | None:
    """The variable without surrounding blanks; ``default`` when unset or blank."""
    return env.get(name, "").strip() or default


def is_set(env: Mapping[str, str], name: str) -> bool:
    """Whether the variable is set to anything but the empty string."""
    return bool(env.get(name))


def require(env: Mapping[str, str], name: str, *, debug: bool, demo_default: str) -> str:
    """Return the variable, the demo default in debug mode, or fail naming it."""
    value = env.get(name, "").strip()
    if value:
        return value
    if debug:
        return demo_default
    raise ConfigError(f"{name} is required when DJANGO_DEBUG is off")


def database(env: Mapping[str, str], *, default_sqlite: Path) -> dict:
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite)}
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ConfigError(
            f"DATABASE_URL must start with postgres:// or sqlite:///, got scheme {scheme!r}"
        )
    try:
        parsed = dj_database_url.parse(raw, conn_max_age=0, conn_health_checks=True)
    except (ValueError, dj_database_url.ParseError) as exc:
        raise ConfigError(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if not parsed.get("NAME"):
        raise ConfigError("DATABASE_URL names no database (add /<name> to the URL)")
    if scheme != "sqlite" and not parsed.get("HOST"):
        raise ConfigError("DATABASE_URL names no host")
    return parsed


@dataclass(frozen=True)
class RedisTopology:
    """Where Redis is: one node (``redis://``), Sentinel or Cluster, from ``REDIS_URL``."""

    kind: str  # "node", "sentinel" or "cluster"
    url: str
    nodes: tuple[tuple[str, int], ...] = ()  # the sentinels, or the cluster's seed nodes
    service: str = ""  # the primary's name, as the sentinels know it
    db: int = 0
    username: str | None = None
    password: str | None = None


SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
_DEFAULT_PORTS = {SENTINEL_SCHEME: 26379, CLUSTER_SCHEME: 6379}


def _node(scheme: str, item: str) -> tuple[str, int]:
    host, port = item, ""
    if item.startswith("["):  # [::1]:26379
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    elif item.count(":") == 1:
        host, port = item.split(":")
    if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ConfigError(f"REDIS_URL has a malformed host:port {item!r}")
    return host, int(port) if port else _DEFAULT_PORTS[scheme]


def redis_topology(raw: str) -> RedisTopology:
    """Parse ``REDIS_URL``; ConfigError naming the problem in one line.

    ``redis+sentinel://[[user]:password@]host:port,host:port/<service>[/<db>]`` and
    ``redis+cluster://[[user]:password@]host:port,host:port``; anything else is a single
    node's URL as redis-py reads it.
    """
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme not in (SENTINEL_SCHEME, CLUSTER_SCHEME):
        return RedisTopology(kind="node", url=redis_url({"REDIS_URL": raw}) or raw)
    parts = urlsplit(raw)
    if parts.query or parts.fragment:
        raise ConfigError("REDIS_URL must not carry a query or fragment with " + scheme)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = tuple(_node(scheme, item.strip()) for item in hosts.split(",") if item.strip())
    if not nodes:
        raise ConfigError(f"REDIS_URL names no {scheme.removeprefix('redis+')} node")
    path = [segment for segment in parts.path.split("/") if segment]
    credentials = {"username": unquote(username) or None, "password": unquote(password) or None}
    if scheme == CLUSTER_SCHEME:
        if path not in ([], ["0"]):
            raise ConfigError("REDIS_URL: a Redis Cluster has only database 0; drop the path")
        return RedisTopology(kind="cluster", url=raw, nodes=nodes, **credentials)
    if not path or len(path) > 2:
        raise ConfigError(
            "REDIS_URL must name the Sentinel service: redis+sentinel://host:26379/mymaster/0"
        )
    if len(path) == 2 and not path[1].isdigit():
        raise ConfigError(f"REDIS_URL database must be a number, got {path[1]!r}")
    db = int(path[1]) if len(path) == 2 else 0
    if unquote(path[0]) != unquote(path[0]).lower():
        # django-redis reads the service name from a URL's host, which lower-cases it.
        raise ConfigError(f"REDIS_URL: name the Sentinel service in lower case, got {path[0]!r}")
    return RedisTopology(
        kind="sentinel", url=raw, nodes=nodes, service=unquote(path[0]), db=db, **credentials
    )


def django_redis_location(url: str, *, timeout: float) -> dict:
    """``LOCATION`` and extra ``OPTIONS`` for django-redis, by topology (merged by settings).

    Sentinel: django-redis's own connection factory, always on the primary (reads from a
    replica could miss a lock or a generation just written). Cluster: our factory
    (``aggregation.redisclients``); the URL goes in a one-item list because django-redis
    splits a string ``LOCATION`` at its commas into primary and replicas.
    """
    topology = redis_topology(url)
    if topology.kind == "node":
        return {}
    options = {
        "SOCKET_CONNECT_TIMEOUT": timeout,
        "SOCKET_TIMEOUT": timeout,
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
    }
    if topology.kind == "cluster":
        options["CONNECTION_FACTORY"] = "aggregation.redisclients.ClusterConnectionFactory"
        return {"LOCATION": [url], "OPTIONS": options}
    options["CONNECTION_FACTORY"] = "django_redis.pool.SentinelConnectionFactory"
    options["SENTINELS"] = list(topology.nodes)
    options["SENTINEL_KWARGS"] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if topology.password:
        options["PASSWORD"] = topology.password
    return {"LOCATION": [f"redis://{topology.service}/{topology.db}"], "OPTIONS": options}


def redis_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("REDIS_URL", "").strip()
    if not raw:
        return None
    if raw.lower().startswith((SENTINEL_SCHEME + "://", CLUSTER_SCHEME + "://")):
        redis_topology(raw)
        return raw
    try:
        parts = parse_redis_url(raw)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a valid Redis URL: {exc}") from None
    path = urlsplit(raw).path.strip("/")
    if raw.startswith(("redis://", "rediss://")):
        if not parts.get("host"):
            raise ConfigError("REDIS_URL names no host")
        if path and not path.isdigit():
            raise ConfigError(f"REDIS_URL database must be a number, got {path!r}")
    return raw


def circuit(env: Mapping[str, str]) -> dict:
    """The downstream breakers' policy: a failure rate over a sliding window."""
    if env.get("CIRCUIT_FAILURES", "").strip():
        raise ConfigError(
            "CIRCUIT_FAILURES is no longer read: breakers open on a failure rate "
            "(set CIRCUIT_FAILURE_RATE and CIRCUIT_MINIMUM_CALLS instead)"
        )
    rate = get_float(env, "CIRCUIT_FAILURE_RATE", default=50.0, minimum=1.0, maximum=100.0)
    return {
        "CIRCUIT_FAILURE_RATE": rate / 100,
        "CIRCUIT_MINIMUM_CALLS": get_int(env, "CIRCUIT_MINIMUM_CALLS", default=20, minimum=1),
        "CIRCUIT_WINDOW_SECONDS": get_float(
            env, "CIRCUIT_WINDOW_SECONDS", default=10.0, minimum=0.1, maximum=3600.0
        ),
        "CIRCUIT_HALF_OPEN_CALLS": get_int(env, "CIRCUIT_HALF_OPEN_CALLS", default=3, minimum=1),
        "CIRCUIT_RESET_SECONDS": get_float(
            env, "CIRCUIT_RESET_SECONDS", default=5.0, minimum=0.1, maximum=3600.0
        ),
    }


def service_url(env: Mapping[str, str], name: str, *, default: str) -> str:
    raw = env.get(name, "").strip() or default
    parts = _cast(raw, urlparse)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name} has an invalid port: {raw!r}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL with a host, got {raw!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not carry a query or fragment, got {raw!r}")
    del port
    return raw.rstrip("/")


def cache_prefix(env: Mapping[str, str]) -> str:
    raw = env.get("CACHE_KEY_PREFIX", "").strip() or "bff"
    if not _PREFIX.match(raw):
        raise ConfigError(
            f"CACHE_KEY_PREFIX must be 1-32 characters of letters, digits, '_', '.', '-', "
            f"got {raw!r}"
        )
    return raw


def get_rate(env: Mapping[str, str], name: str, *, default: str) -> str | None:
    """One rate in DRF's form (``600/min``), or None for ``off``."""
    raw = env.get(name, "").strip() or default
    if raw.lower() == "off":
        return None
    if not _RATE.match(raw):
        raise ConfigError(f"{name} must look like '600/min' or 'off', got {raw!r}")
    return raw


MAX_SUNSET_NOTICE_DAYS = 3650


def sunset_notice_days(env: Mapping[str, str]) -> int:
    """REGISTRY_MIN_SUNSET_NOTICE_DAYS: the least notice a major's sunset gives clients."""
    days = get_int(env, "REGISTRY_MIN_SUNSET_NOTICE_DAYS", default=30, minimum=0)
    if days > MAX_SUNSET_NOTICE_DAYS:
        raise ConfigError(
            f"REGISTRY_MIN_SUNSET_NOTICE_DAYS must be at most {MAX_SUNSET_NOTICE_DAYS}, got {days}"
        )
    return days


def rate_limits(env: Mapping[str, str]) -> dict[str, str] | None:
    """Per-client DRF rates, or None when throttling is off."""
    raw = env.get("RATE_LIMITS", "").strip() or "mobile=120/min,web=300/min,partner=600/min"
    if raw.lower() == "off":
        return None
    rates: dict[str, str] = {}
    for item in raw.split(","):
        client, sep, rate = item.strip().partition("=")
        if not sep or client not in CLIENTS or not _RATE.match(rate.strip()):
            raise ConfigError(
                f"RATE_LIMITS must look like 'mobile=120/min,web=300/min' or 'off', "
                f"got {item.strip()!r}"
            )
        if client in rates:
            raise ConfigError(f"RATE_LIMITS names {client!r} twice")
        rates[client] = rate.strip()
    return rates


def ops_token(env: Mapping[str, str]) -> str | None:
    """OPS_TOKEN: the bearer token for /metrics and /readyz details, or None."""
    token = get_str(env, "OPS_TOKEN", default=None)
    if token is not None and len(token) < 16:
        raise ConfigError("OPS_TOKEN must be at least 16 characters")
    return token


def otel_exporter(env: Mapping[str, str]) -> str | None:
    """OpenTelemetry's own OTEL_TRACES_EXPORTER: ``console``, ``otlp``, or None for none."""
    exporter = env.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter in ("", "none"):
        return None
    if exporter not in ("console", "otlp"):
        raise ConfigError(f"OTEL_TRACES_EXPORTER must be console, otlp or none, got {exporter!r}")
    return exporter


def log_level(env: Mapping[str, str]) -> str:
    level = env.get("LOG_LEVEL", "INFO").strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return level


def email(env: Mapping[str, str]) -> dict:
    """Django's EMAIL_HOST, EMAIL_PORT and DEFAULT_FROM_EMAIL (mail to release managers)."""
    return {
        "EMAIL_HOST": env.get("EMAIL_HOST", "localhost"),
        "EMAIL_PORT": get_int(env, "EMAIL_PORT", default=25, minimum=1),
        "DEFAULT_FROM_EMAIL": env.get("DEFAULT_FROM_EMAIL", "contract-registry@localhost"),
    }


def _public_key(name: str, raw: str) -> str:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = raw
    if not raw.lstrip().startswith("-----BEGIN"):
        path = Path(raw)
        if not path.is_file():
            raise ConfigError(f"{name} must be a PEM public key or the path of one")
        text = path.read_text()
    try:
        load_pem_public_key(text.encode())
    except ValueError:
        raise ConfigError(f"{name} is not a valid PEM public key") from None
    return text


def _algorithms(name: str, raw: str | None, *, default: tuple[str, ...]) -> tuple[str, ...]:
    if raw is None or not raw.strip():
        return default
    algorithms = tuple(a.strip() for a in raw.split(",") if a.strip())
    unknown = [a for a in algorithms if a not in HMAC_ALGORITHMS | PUBLIC_KEY_ALGORITHMS]
    if unknown or not algorithms:
        raise ConfigError(f"{name} has unsupported algorithms: {', '.join(unknown) or raw!r}")
    return algorithms


def client_auth(env: Mapping[str, str], *, debug: bool, demo_secret: str) -> dict[str, ClientAuth]:
    """Per-client verification keys: the client's own key, else the shared JWT_SECRET."""
    shared = env.get("JWT_SECRET", "").strip()
    result: dict[str, ClientAuth] = {}
    missing: list[str] = []
    for client in CLIENTS:
        prefix = f"JWT_{client.upper()}_"
        secret = env.get(prefix + "SECRET", "").strip()
        public_key = env.get(prefix + "PUBLIC_KEY", "").strip()
        jwks_url = env.get(prefix + "JWKS_URL", "").strip()
        algorithms_var = prefix + "ALGORITHMS"
        if sum(map(bool, (secret, public_key, jwks_url))) > 1:
            raise ConfigError(
                f"set only one of {prefix}SECRET, {prefix}PUBLIC_KEY, {prefix}JWKS_URL"
            )
        if public_key or jwks_url:
            algorithms = _algorithms(algorithms_var, env.get(algorithms_var), default=("RS256",))
            if set(algorithms) & HMAC_ALGORITHMS:
                raise ConfigError(
                    f"{algorithms_var} must not list HMAC algorithms with a public key"
                )
            if jwks_url:
                service_url(env, prefix + "JWKS_URL", default=jwks_url)
            result[client] = ClientAuth(
                algorithms=algorithms,
                public_key=_public_key(prefix + "PUBLIC_KEY", public_key) if public_key else None,
                jwks_url=jwks_url or None,
            )
            continue
        key = secret or shared or (demo_secret if debug else "")
        if not key:
            missing.append(client)
            continue
        algorithms = _algorithms(algorithms_var, env.get(algorithms_var), default=("HS256",))
        if set(algorithms) - HMAC_ALGORITHMS:
            raise ConfigError(f"{algorithms_var} must list only HMAC algorithms with a secret")
        if len(key.encode()) < 32:
            raise ConfigError(
                f"{prefix + 'SECRET' if secret else 'JWT_SECRET'} must be at least 32 bytes"
            )
        result[client] = ClientAuth(algorithms=algorithms, secret=key)
    if missing:
        raise ConfigError(
            "JWT_SECRET is required when DJANGO_DEBUG is off "
            f"(or a key of their own for: {', '.join(missing)})"
        )
    return result
