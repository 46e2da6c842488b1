"""The product's own settings: ``settings.BFF`` over declared defaults, like DRF's api_settings.

``bff_settings.NAME`` reads ``settings.BFF["NAME"]``, or ``DEFAULTS["NAME"]`` when the
project's ``BFF`` does not set it (``bff_project/settings.py`` sets every key from the
environment; the defaults are what an empty production environment gives, and a test pins
that they agree). The two keys without a default, ``INTERNAL_SERVICE_TOKEN`` and
``CLIENT_AUTH``, are secrets: the project must set them.

Objects built from these settings (connection pools, caches, counters) are rebuilt when
the settings change, which only tests do (``override_settings``, pytest-django's
``settings``): Django then sends ``setting_changed``, ``bff_settings`` reloads, and every
``Derived`` value that read a changed key is dropped and built again on its next use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.signals import setting_changed

T = TypeVar("T")

DEFAULTS: dict[str, Any] = {
    # The internal services' base URLs, by service name.
    "SERVICES": {
        "user": "http://127.0.0.1:9101",
        "order": "http://127.0.0.1:9102",
        "recommendation": "http://127.0.0.1:9103",
        "catalog": "http://127.0.0.1:9104",
    },
    # Calls to them: time limits, the body size limit, the circuit breakers' policy.
    "DOWNSTREAM": {
        "TIMEOUT_SECONDS": 1.0,
        "REQUEST_DEADLINE_SECONDS": 2.5,
        "MAX_RESPONSE_BYTES": 1_048_576,
        "CIRCUIT_FAILURE_RATE": 0.5,
        "CIRCUIT_MINIMUM_CALLS": 20,
        "CIRCUIT_WINDOW_SECONDS": 10.0,
        "CIRCUIT_HALF_OPEN_CALLS": 3,
        "CIRCUIT_RESET_SECONDS": 5.0,
    },
    # Tokens must carry this ``iss`` when set.
    "JWT_ISSUER": None,
    # The first part of every cache and rate-limit key.
    "CACHE_KEY_PREFIX": "bff",
    # Per-client rates in DRF's form; None turns throttling off.
    "RATE_LIMITS": {"mobile": "120/min", "web": "300/min", "partner": "600/min"},
    # None: Django's cache (in-process) for responses and rate limits.
    "REDIS_URL": None,
    "REDIS_SOCKET_TIMEOUT": 0.25,
    # The module attribute declaring the endpoints this code serves.
    "ENDPOINTS": "aggregation.endpoints.ENDPOINTS",
    # Aggregate prometheus_client's multi-process files for /metrics.
    "PROMETHEUS_MULTIPROC": False,
    # The benchmark's own views (bench/views.py).
    "BENCH_VIEWS": False,
    # Request lines and headers above these sizes answer 414 and 431.
    "EDGE": {"MAX_REQUEST_TARGET_BYTES": 8192, "MAX_HEADER_BYTES": 32_768},
    # Bearer token for /metrics and /readyz details; None: open in demo mode only.
    "OPS_TOKEN": None,
    # DJANGO_DEBUG as read at start-up: the demo secrets and open ops endpoints.
    "DEMO_MODE": False,
    # After SIGTERM: how long /readyz answers 503 first, then how long requests may finish.
    "SHUTDOWN": {"DRAIN_SECONDS": 5.0, "GRACE_SECONDS": 10.0},
    # gzip/zstd bodies when the client asks.
    "COMPRESSION": True,
    # "console" or "otlp" for spans; None for none.
    "OTEL_TRACES_EXPORTER": None,
    # Schema drift: one log line per field and reason per this many seconds.
    "SCHEMA_DRIFT_LOG_INTERVAL_SECONDS": 60.0,
    # Response-cache entries each worker holds in front of the store, per cache; 0: none.
    "CACHE_L1_MAX_ENTRIES": 10_000,
}

_ABSENT = object()


class BFFSettings:
    """Attribute access to ``settings.BFF`` over ``DEFAULTS``.

    The merged dict is built once and kept: going through Django's lazy settings object
    costs a few microseconds per access, and a request reads a dozen of these. Tests that
    change ``BFF`` send ``setting_changed``, which rebuilds it (as DRF's
    ``reload_api_settings`` does) and tells the callbacks watching a changed key.
    """

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._values: dict[str, Any] | None = None
        self._watchers: list[tuple[tuple[str, ...], Callable[[], None]]] = []

    def __getattr__(self, name: str) -> Any:
        values = self._values
        if values is None:
            values = self._values = self._load()
        try:
            return values[name]
        except KeyError:
            raise AttributeError(f"settings.BFF has no {name!r}") from None

    def _load(self) -> dict[str, Any]:
        return {**self.defaults, **getattr(settings, "BFF", {})}

    def on_change(self, callback: Callable[[], None], *names: str) -> None:
        """Call ``callback`` after a reload that changed any of ``names``."""
        self._watchers.append((names, callback))

    def reload(self) -> None:
        """Read ``settings.BFF`` again and tell the watchers of the keys that changed."""
        previous, current = self._values, self._load()
        self._values = current
        for names, callback in self._watchers:
            if previous is None or any(
                previous.get(name, _ABSENT) != current.get(name, _ABSENT) for name in names
            ):
                callback()


bff_settings = BFFSettings(DEFAULTS)


class Derived(Generic[T]):
    """A value built from ``bff_settings`` on first use and dropped when any of ``names``
    changes: a connection pool, a cache, a counter store."""

    def __init__(self, build: Callable[[], T], *names: str) -> None:
        self._build = build
        self._value: T | None = None
        bff_settings.on_change(self.reset, *names)

    def get(self) -> T:
        value = self._value
        if value is None:
            value = self._value = self._build()
        return value

    @property
    def built(self) -> T | None:
        """The value if it has been built, without building it."""
        return self._value

    def reset(self) -> None:
        """Forget the value; the next ``get`` builds it again from the settings."""
        self._value = None


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "BFF":
        bff_settings.reload()


setting_changed.connect(_reload)
