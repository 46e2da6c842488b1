"""Django settings: the only module that reads the environment (SPEC section 8), every
variable through ``bff_project.config``."""

from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from csp.constants import UNSAFE_INLINE as CSP_UNSAFE_INLINE

from bff_project import config

BASE_DIR = Path(__file__).resolve().parent.parent

# Demo values, used only while DJANGO_DEBUG is on. Production refuses to start without
# real ones (config.require, config.client_auth).
_DEMO_SECRET_KEY = "django-insecure-demo-key-only-for-DJANGO_DEBUG-never-in-production"  # noqa: S105
_DEMO_JWT_SECRET = "demo-jwt-secret-shared-by-every-client-change-me"  # noqa: S105
_DEMO_INTERNAL_TOKEN = "demo-internal-token"  # noqa: S105

_env = os.environ
try:
    # `manage.py contracts check|propose|export --registry URL` (manage.py sets this): a
    # client of a remote registry, run in CI with no database and none of the server's
    # secrets. It signs, stores and serves nothing, so it gets a throwaway key, no
    # database (Django's dummy backend: any query fails loudly) and no client keys.
    REGISTRY_CLIENT = config.get_bool(_env, "BFF_REGISTRY_CLIENT", default=False)
    DEBUG = config.get_bool(_env, "DJANGO_DEBUG", default=False)
    SECRET_KEY = (
        secrets.token_urlsafe(50)
        if REGISTRY_CLIENT
        else config.require(_env, "DJANGO_SECRET_KEY", debug=DEBUG, demo_default=_DEMO_SECRET_KEY)
    )
    ALLOWED_HOSTS = config.get_list(
        _env, "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"]
    )
    _database = (
        {} if REGISTRY_CLIENT else config.database(_env, default_sqlite=BASE_DIR / "db.sqlite3")
    )
    _redis_url = config.redis_url(_env)
    _internal_token = (
        ""
        if REGISTRY_CLIENT
        else config.require(
            _env, "INTERNAL_SERVICE_TOKEN", debug=DEBUG, demo_default=_DEMO_INTERNAL_TOKEN
        )
    )
    _client_auth = (
        {}
        if REGISTRY_CLIENT
        else config.client_auth(_env, debug=DEBUG, demo_secret=_DEMO_JWT_SECRET)
    )
    _services = {
        "user": config.service_url(_env, "USER_SERVICE_URL", default="http://127.0.0.1:9101"),
        "order": config.service_url(_env, "ORDER_SERVICE_URL", default="http://127.0.0.1:9102"),
        "recommendation": config.service_url(
            _env, "RECOMMENDATION_SERVICE_URL", default="http://127.0.0.1:9103"
        ),
        "catalog": config.service_url(_env, "CATALOG_SERVICE_URL", default="http://127.0.0.1:9104"),
    }
    _cache_prefix = config.cache_prefix(_env)
    _rate_limits = config.rate_limits(_env)
    _registry_api_rate = config.get_rate(_env, "REGISTRY_API_RATE", default="600/min")
    _email = config.email(_env)
    _jwt_issuer = config.get_str(_env, "JWT_ISSUER", default=None)
    _redis_timeout = config.get_float(_env, "REDIS_SOCKET_TIMEOUT", default=0.25, minimum=0.01)
    _downstream = {
        "TIMEOUT_SECONDS": config.get_float(
            _env, "DOWNSTREAM_TIMEOUT_SECONDS", default=1.0, minimum=0.01
        ),
        "REQUEST_DEADLINE_SECONDS": config.get_float(
            _env, "REQUEST_DEADLINE_SECONDS", default=2.5, minimum=0.01
        ),
        "MAX_RESPONSE_BYTES": config.get_int(
            _env, "DOWNSTREAM_MAX_BYTES", default=1_048_576, minimum=1024
        ),
        **config.circuit(_env),
    }
    _shutdown = {
        # How long /readyz answers 503 before the listener closes: long enough for the
        # load balancer to notice. No load balancer watches the demo (DJANGO_DEBUG).
        "DRAIN_SECONDS": config.get_float(
            _env, "SHUTDOWN_DRAIN_SECONDS", default=0.0 if DEBUG else 5.0, maximum=300.0
        ),
        "GRACE_SECONDS": config.get_float(
            _env, "SHUTDOWN_GRACE_SECONDS", default=10.0, minimum=0.1, maximum=300.0
        ),
    }
    _edge = {
        # nginx's default large_client_header_buffers is 4 x 8 KB; these sit just above.
        "MAX_REQUEST_TARGET_BYTES": config.get_int(
            _env, "MAX_REQUEST_TARGET_BYTES", default=8192, minimum=256
        ),
        "MAX_HEADER_BYTES": config.get_int(_env, "MAX_HEADER_BYTES", default=32_768, minimum=1024),
    }
    # Bearer token for /metrics and /readyz details; unset: open in demo mode, closed in
    # production (SECURITY.md).
    _ops_token = config.ops_token(_env)
    _min_sunset_notice_days = config.sunset_notice_days(_env)
    # Response compression (gzip, zstd) when the client asks; off only to measure its cost.
    _compression = config.get_bool(_env, "BFF_COMPRESSION", default=True)
    # Schema drift: one log line per field and reason per this many seconds.
    _drift_log_interval = config.get_float(
        _env, "SCHEMA_DRIFT_LOG_INTERVAL_SECONDS", default=60.0, minimum=0.0
    )
    # Entries each worker keeps in memory in front of the store (per-user and shared each);
    # 0: none, every read goes to the store.
    _l1_entries = config.get_int(_env, "CACHE_L1_MAX_ENTRIES", default=10_000, minimum=0)
    # OpenTelemetry's own variable: spans only when it names an exporter (aggregation/otel.py).
    _otel_exporter = config.otel_exporter(_env)
    # The benchmark's own views (bench/views.py); never on unless a benchmark asks.
    _bench_views = config.get_bool(_env, "BFF_BENCH_VIEWS", default=False)
    _log_level = config.log_level(_env)
    # The token `contracts … --registry URL` sends; a CI secret, never a server setting.
    _registry_client_token = config.get_str(_env, "CONTRACTS_REGISTRY_TOKEN", default="")
    # The module attribute declaring the endpoints this code serves; tests point it at a
    # double of "the code after a change" to exercise the deploy gate for real.
    _endpoints = config.get_str(_env, "BFF_ENDPOINTS", default="aggregation.endpoints.ENDPOINTS")
    # prometheus_client reads the directory itself; this only says to aggregate it.
    _prometheus_multiproc = config.is_set(_env, "PROMETHEUS_MULTIPROC_DIR")
except config.ConfigError as exc:
    # One line naming the variable, no traceback: this is an operator's mistake, not a bug.
    sys.exit(f"configuration error: {exc}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "simple_history",
    "axes",
    "contracts",
    "aggregation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Admin logins: the sixth wrong password for one username from one address locks that pair
# out for 15 minutes; the right password is refused until then. The address
# is REMOTE_ADDR, which uvicorn sets from X-Forwarded-For only for trusted proxies
# (FORWARDED_ALLOW_IPS), so a client cannot spoof its way past the counter.
AXES_FAILURE_LIMIT = 6
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_VERBOSE = False

# The admin's Content-Security-Policy (the API's JSON needs none). Scripts and styles come
# only from our own static files; the admin's templates still set a few inline style
# attributes, hence 'unsafe-inline' for styles alone.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF],
        "style-src": [CSP_SELF, CSP_UNSAFE_INLINE],
        "img-src": [CSP_SELF, "data:"],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "frame-ancestors": [CSP_NONE],
        "form-action": [CSP_SELF],
    }
}

ROOT_URLCONF = "bff_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "bff_project.asgi.application"
WSGI_APPLICATION = "bff_project.wsgi.application"

DATABASES = {"default": _database}

if _redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": _redis_url,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Values are JSON, never pickle: a poisoned cache entry must not be code.
                "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
                # A dead Redis must cost a cache miss, not seconds per request.
                "SOCKET_CONNECT_TIMEOUT": _redis_timeout,
                "SOCKET_TIMEOUT": _redis_timeout,
            },
            "KEY_PREFIX": _cache_prefix,
        }
    }
    CACHES["default"].update(config.django_redis_location(_redis_url, timeout=_redis_timeout))
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "bff",
            "KEY_PREFIX": _cache_prefix,
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One date format across the admin (lists, history, audit trail): bff_project/formats/.
FORMAT_MODULE_PATH = ["bff_project.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# TLS ends at the load balancer. The app trusts its X-Forwarded-Proto, keeps cookies
# secure and sends HSTS, but never redirects to HTTPS itself, so health probes and
# plain HTTP on 127.0.0.1 keep working.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0 if DEBUG else 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SILENCED_SYSTEM_CHECKS = [
    "security.W008",  # SECURE_SSL_REDIRECT: TLS terminates at the load balancer (see above).
]

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The registry API's OpenAPI document (/registry/api/v1/openapi.json).
SPECTACULAR_SETTINGS = {
    "TITLE": "Contract registry API",
    "DESCRIPTION": "The contract registry over HTTP: reads, the deploy gate, proposals and "
    "reviews, with scoped bearer tokens. Errors use the project's envelope.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["contracts.api.schema.only_the_registry_api"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "contracts.api.schema.error_responses",
    ],
}

# The registry API's per-token default rate, and who is told about registry events.
REGISTRY_API = {
    "RATE": _registry_api_rate,
    "CLIENT_TOKEN": _registry_client_token,
}
EMAIL_BACKEND = (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = _email["EMAIL_HOST"]
EMAIL_PORT = _email["EMAIL_PORT"]
DEFAULT_FROM_EMAIL = _email["DEFAULT_FROM_EMAIL"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "bff_project.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
        }
    },
    "root": {"handlers": ["stdout"], "level": _log_level},
    "loggers": {
        # Django's own DEBUG-mode console handler would print each line a second time.
        "django": {"handlers": ["stdout"], "level": _log_level, "propagate": False},
        "django.server": {"level": "WARNING"},
        # One line per downstream call, full URL included, is noise: our own lines say
        # what failed, with the trace id.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# The registry: the least notice (in days) a major's sunset must give its clients.
REGISTRY_MIN_SUNSET_NOTICE_DAYS = _min_sunset_notice_days

# Product settings, read lazily through aggregation.conf.bff_settings (over its DEFAULTS).
BFF = {
    "SERVICES": _services,
    "DOWNSTREAM": _downstream,
    "INTERNAL_SERVICE_TOKEN": _internal_token,
    "CLIENT_AUTH": _client_auth,
    "JWT_ISSUER": _jwt_issuer,
    "CACHE_KEY_PREFIX": _cache_prefix,
    "RATE_LIMITS": _rate_limits,
    "REDIS_URL": _redis_url,
    "REDIS_SOCKET_TIMEOUT": _redis_timeout,
    "ENDPOINTS": _endpoints,
    "PROMETHEUS_MULTIPROC": _prometheus_multiproc,
    "BENCH_VIEWS": _bench_views,
    "EDGE": _edge,
    "OPS_TOKEN": _ops_token,
    # DJANGO_DEBUG as read at start-up (test runners turn settings.DEBUG off by themselves).
    "DEMO_MODE": DEBUG,
    "SHUTDOWN": _shutdown,
    "COMPRESSION": _compression,
    "OTEL_TRACES_EXPORTER": _otel_exporter,
    "SCHEMA_DRIFT_LOG_INTERVAL_SECONDS": _drift_log_interval,
    "CACHE_L1_MAX_ENTRIES": _l1_entries,
}
