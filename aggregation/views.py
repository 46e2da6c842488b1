"""The client surfaces' views: auth → serving contract → fan-out → projection → response."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import orjson
from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date

from aggregation import cachekeys, fanout, metrics, surfaces
from aggregation.auth import authenticate
from aggregation.cache import L1, Computed, Entry, Policy, ResponseCache, etag_for
from aggregation.cachestore import DjangoStore, RedisStore
from aggregation.conf import bff_settings
from aggregation.downstream import DownstreamNotFound
from aggregation.envelope import error_for
from aggregation.errors import (
    ContractUnavailable,
    DependencyUnavailable,
    NotFound,
    VersionNotFound,
    VersionRetired,
)
from aggregation.surfaces import Surface
from aggregation.tracing import TRACE_HEADER, trace_id_for
from contracts.models import CacheScope
from contracts.serving import ServingContract, registry

logger = logging.getLogger(__name__)

PRIVATE_CACHE_CONTROL = "private, max-age=30, s-maxage=0"
_DEPENDENCY_MESSAGES = {
    "user": "The user profile is temporarily unavailable.",
    "catalog": "The catalog is temporarily unavailable.",
}


def serving_contract(request: HttpRequest, client: str, endpoint: str, major: int):
    """The contract this instance serves for the URL's major, with lifecycle headers."""
    if not registry.loaded:
        raise ContractUnavailable()
    state = registry.snapshot.majors.get((client, endpoint, major))
    if state is None:
        raise VersionNotFound(f"{client} has no v{major} of {endpoint}.")
    now = datetime.now(UTC)
    if state.sunset_at is not None and now >= state.sunset_at:
        raise VersionRetired(f"v{major} of {endpoint} was retired on {state.sunset_at:%Y-%m-%d}.")
    if state.serving is None:
        raise ContractUnavailable()
    headers: dict[str, str] = {}
    if state.deprecated_at is not None:
        headers["Deprecation"] = f"@{int(state.deprecated_at.timestamp())}"  # RFC 9745
    if state.sunset_at is not None:
        headers["Sunset"] = http_date(state.sunset_at.timestamp())  # RFC 8594
    successor = state.serving.successor_major
    if successor is not None and state.deprecated_at is not None:
        path = request.path.replace(f"/v{major}/", f"/v{successor}/", 1)
        headers["Link"] = f'<{path}>; rel="successor-version"'
    return state.serving, headers


def _record_drift(contract: ServingContract, drift, trace_id: str) -> None:
    for item in drift:
        metrics.SCHEMA_DRIFT.labels(contract.client, contract.endpoint, item.section,
                                    item.reason).inc()  # fmt: skip
    if drift:
        logger.warning(
            "schema drift",
            extra={"traceId": trace_id, "client": contract.client, "endpoint": contract.endpoint,
                   "drift": [f"{d.section}.{d.path}: {d.reason}" for d in drift[:20]]},
        )  # fmt: skip


def _critical_failure(exc: fanout.CriticalDependencyFailed) -> Exception:
    if isinstance(exc.error, DownstreamNotFound):
        return NotFound()
    code = exc.dependency.unavailable_code
    message = _DEPENDENCY_MESSAGES.get(exc.dependency.name, "A required service is unavailable.")
    return DependencyUnavailable(code, message)


def response_cache(scope: str) -> ResponseCache:
    """The process's response caches (shared data also gets an in-process L1)."""
    config = (bff_settings.REDIS_URL, bff_settings.REDIS_SOCKET_TIMEOUT)
    if _caches.get("config") != config:
        url, timeout = config
        store = RedisStore(url, timeout=timeout) if url else DjangoStore()
        _caches.clear()
        _caches.update(config=config, per_user=ResponseCache(store),
                       shared=ResponseCache(store, l1=L1()))  # fmt: skip
    return _caches["shared" if scope == CacheScope.SHARED else "per_user"]


_caches: dict = {}


def _etag_matches(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag in candidates


def _body(meta: dict, sections: bytes) -> bytes:
    # The cached sections are spliced in as stored: no parse, no re-serialisation per hit.
    head = b'{"meta":' + orjson.dumps(meta)
    return head + b"}" if sections == b"{}" else head + b"," + sections[1:]


async def serve(
    surface: Surface, request: HttpRequest, major: int, *, cache_id: str | None = None
) -> HttpResponse:
    started = time.perf_counter()
    trace_id = trace_id_for(request)
    client, endpoint = surface.spec.client, surface.spec.name
    try:
        principal = authenticate(request.headers.get("Authorization"), client)
        contract, lifecycle = serving_contract(request, client, endpoint, major)
        downstream = bff_settings.DOWNSTREAM
        deadline = downstream["REQUEST_DEADLINE_SECONDS"]
        context = fanout.CallContext(
            client=client,
            endpoint=endpoint,
            subject=principal.subject,
            trace_id=trace_id,
            timeout=downstream["TIMEOUT_SECONDS"],
        )

        async def compute() -> Computed:
            try:
                result = await fanout.run(surface.dependencies, context, deadline=deadline)
            except fanout.CriticalDependencyFailed as exc:
                raise _critical_failure(exc) from exc
            sections, drift = contract.plan.project_all(surface.sections_from(result.values))
            _record_drift(contract, drift, trace_id)
            return Computed(orjson.dumps(sections), result.degraded)

        if contract.cache_scope == CacheScope.NONE:
            computed = await compute()
            entry = Entry(computed.body, etag_for(computed.body, contract.fingerprint), 0.0, 0.0,
                          computed.degraded)  # fmt: skip
            state = "bypass"
        else:
            prefix = bff_settings.CACHE_KEY_PREFIX
            if contract.cache_scope == CacheScope.SHARED:
                key = cachekeys.shared_key(prefix, contract, cache_id or "all")
            else:
                key = cachekeys.user_key(prefix, contract, principal.subject)
            outcome = await response_cache(contract.cache_scope).get_or_compute(
                key,
                compute,
                Policy(
                    contract.cache_ttl_seconds,
                    contract.cache_jitter_percent,
                    contract.cache_stale_grace_seconds,
                ),
                fingerprint=contract.fingerprint,
                labels=(client, endpoint),
                wait_seconds=deadline,
            )
            entry, state = outcome.entry, outcome.state
        headers = {
            "Cache-Control": PRIVATE_CACHE_CONTROL,
            "Vary": "Authorization",
            "ETag": entry.etag,
            **lifecycle,
        }
        if _etag_matches(request, entry.etag) and not entry.degraded:
            response = HttpResponse(status=304)
        else:
            meta = {
                "traceId": trace_id,
                "generatedAt": datetime.now(UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "latencyMs": round((time.perf_counter() - started) * 1000),
                "schemaVersion": contract.schema_version,
                "degraded": bool(entry.degraded),
                "degradedDependencies": list(entry.degraded),
                "cache": state,
            }
            response = HttpResponse(_body(meta, entry.body), content_type="application/json")
            if entry.degraded:
                response["X-BFF-Degraded"] = ",".join(entry.degraded)
                del headers["ETag"]
        for name, value in headers.items():
            response[name] = value
    except Exception as exc:  # noqa: BLE001 - error_for is the one mapping to the envelope
        response = error_for(exc, trace_id)
    response[TRACE_HEADER] = trace_id
    metrics.REQUESTS.labels(client, endpoint, str(response.status_code)).inc()
    metrics.REQUEST_LATENCY.labels(client, endpoint).observe(time.perf_counter() - started)
    return response


async def mobile_home(request: HttpRequest, major: int) -> HttpResponse:
    return await serve(surfaces.MOBILE_HOME, request, major)
