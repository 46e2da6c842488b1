"""Operational endpoints: liveness, readiness and Prometheus metrics.

Readiness means "send me traffic". A probe registered as critical (the contract registry's)
makes ``/readyz`` answer 503 when it fails; the others (database, Redis) only report their
health in the body and in ``bff_readiness_check_ok``, because requests are still served
while they are down. A draining process (after SIGTERM) answers 503 at once.
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector

# A probe that hangs must not hang the load balancer's health check with it.
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one readiness probe; ``detail`` is safe to show to operators."""

    ok: bool
    detail: dict = field(default_factory=dict)


Probe = Callable[[], Awaitable[ProbeResult]]
_probes: dict[str, Probe] = {}
_critical: dict[str, bool] = {}

CHECK_OK = Gauge(
    "bff_readiness_check_ok",
    "1 when a /readyz check passed at its last run, 0 when it failed.",
    ["check", "critical"],
    multiprocess_mode="livemin",
)
DRAINING = Gauge(
    "bff_draining",
    "1 once the process received SIGTERM and stopped accepting new traffic.",
    multiprocess_mode="livemax",
)


def register_readiness_probe(name: str, probe: Probe, *, critical: bool = True) -> None:
    """Add a check to ``/readyz``; apps call this from ``AppConfig.ready()``.

    Only a critical probe's failure makes the instance unready; the others are reported.
    """
    _probes[name] = probe
    _critical[name] = critical


_draining = False


def start_draining() -> None:
    """From now on ``/readyz`` answers 503, so the load balancer stops sending traffic."""
    global _draining
    _draining = True
    DRAINING.set(1)


def draining() -> bool:
    return _draining


def _check_database() -> ProbeResult:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return ProbeResult(ok=True, detail={"vendor": connection.vendor})


async def database_probe() -> ProbeResult:
    return await sync_to_async(_check_database)()


async def cache_probe() -> ProbeResult:
    cache = caches["default"]
    # A key of its own: probes of several instances on one Redis must not read each
    # other's value back.
    token = uuid.uuid4().hex
    key = f"readyz:probe:{token}"
    await cache.aset(key, token, timeout=10)
    seen = await cache.aget(key)
    await cache.adelete(key)
    backend = type(cache).__name__
    if seen != token:
        return ProbeResult(ok=False, detail={"backend": backend, "error": "read-back mismatch"})
    return ProbeResult(ok=True, detail={"backend": backend})


# Requests are served from the in-process registry snapshot and without the cache when
# either is down: their outages are reported, not turned into a full outage.
register_readiness_probe("database", database_probe, critical=False)
register_readiness_probe("cache", cache_probe, critical=False)


async def _run(name: str, probe: Probe) -> tuple[str, ProbeResult]:
    try:
        return name, await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        return name, ProbeResult(ok=False, detail={"error": "timed out"})
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; named by type
        return name, ProbeResult(ok=False, detail={"error": type(exc).__name__})


async def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def ops_access(request: HttpRequest) -> bool:
    """May this caller see operational detail (probe errors, versions, metrics)?

    With ``OPS_TOKEN`` set: only a request carrying it as a bearer token. Without it:
    everyone in demo mode, nobody in production (SECURITY.md).
    """
    token = settings.BFF.get("OPS_TOKEN")
    if token is None:
        return settings.BFF.get("DEMO_MODE", False)
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


def _refused(request: HttpRequest) -> HttpResponse:
    from aggregation.envelope import error_response
    from aggregation.errors import ErrorCode
    from aggregation.tracing import trace_id_for

    trace_id = trace_id_for(request)
    if settings.BFF.get("OPS_TOKEN") is None:
        return error_response(
            403,
            ErrorCode.FORBIDDEN,
            "Set OPS_TOKEN to serve operational detail.",
            trace_id=trace_id,
        )
    return error_response(
        401,
        ErrorCode.UNAUTHENTICATED,
        "Send the operations token as a bearer token.",
        trace_id=trace_id,
        headers={"WWW-Authenticate": 'Bearer realm="ops"'},
    )


async def _run_all() -> list[tuple[str, ProbeResult]]:
    results = await asyncio.gather(*(_run(name, probe) for name, probe in _probes.items()))
    for name, result in results:
        CHECK_OK.labels(name, str(_critical[name]).lower()).set(1 if result.ok else 0)
    return results


async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready or not for everyone; which check failed and why only for operators."""
    if _draining:
        # Not a probe: the answer must not wait for the database or Redis.
        response = JsonResponse({"status": "draining"}, status=503)
        response["Cache-Control"] = "no-store"
        return response
    results = await _run_all()
    ready = all(result.ok for name, result in results if _critical[name])
    body: dict = {"status": "ready" if ready else "unavailable"}
    if ops_access(request):
        body["checks"] = {
            name: {"ok": result.ok, "critical": _critical[name], **result.detail}
            for name, result in results
        }
    response = JsonResponse(body, status=200 if ready else 503)
    response["Cache-Control"] = "no-store"
    return response


def _registry() -> CollectorRegistry:
    # Under several worker processes each has its own counters; prometheus_client's
    # multiprocess mode aggregates them when PROMETHEUS_MULTIPROC_DIR is set.
    if settings.BFF["PROMETHEUS_MULTIPROC"]:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return DEFAULT_REGISTRY


async def metrics(request: HttpRequest) -> HttpResponse:
    if not ops_access(request):
        return _refused(request)
    # The checks run at scrape time too, so alerts on the database or Redis do not depend
    # on how often the load balancer asks /readyz.
    await _run_all()
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
