"""The client surfaces' views: auth → serving contract → fan-out → projection → response."""

from __future__ import annotations

import logging
import re
import time
from contextlib import nullcontext
from datetime import UTC, datetime

import orjson
from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date

from aggregation import cachekeys, encoding, fanout, metrics, openapi, otel, surfaces, usage
from aggregation.auth import authenticate_request, require_scope
from aggregation.cache import Computed, Entry, Policy, etag_for, response_cache
from aggregation.conf import bff_settings
from aggregation.downstream import DownstreamNotFound
from aggregation.envelope import error_for
from aggregation.errors import (
    ContractUnavailable,
    DependencyUnavailable,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    VersionNotFound,
    VersionRetired,
)
from aggregation.surfaces import Surface
from aggregation.throttling import check_rate
from contract_core.projection import DriftLog
from contract_core.tracing import TRACE_HEADER, trace_context_for, trace_id_for
from contracts.models import CacheScope
from contracts.serving import ServingContract, registry

logger = logging.getLogger(__name__)

PRIVATE_CACHE_CONTROL = "private, max-age=30, s-maxage=0"
ALLOWED_METHODS = ("GET", "HEAD")
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
    if not drift:
        return
    log = _drift_log()
    fresh = log.to_log((contract.client, contract.endpoint), drift)
    if fresh:
        logger.warning(
            "schema drift",
            extra={"traceId": trace_id, "client": contract.client, "endpoint": contract.endpoint,
                   "drift": [f"{d.section}.{d.path}: {d.reason}" for d in fresh[:20]],
                   "quietSeconds": log.interval},
        )  # fmt: skip


def _drift_log() -> DriftLog:
    interval = bff_settings.SCHEMA_DRIFT_LOG_INTERVAL_SECONDS
    if _drift_logs.get(interval) is None:
        _drift_logs.clear()
        _drift_logs[interval] = DriftLog(interval)
    return _drift_logs[interval]


_drift_logs: dict[float, DriftLog] = {}


def _critical_failure(exc: fanout.CriticalDependencyFailed) -> Exception:
    if isinstance(exc.error, DownstreamNotFound):
        return NotFound()
    code = exc.dependency.unavailable_code
    message = _DEPENDENCY_MESSAGES.get(exc.dependency.name, "A required service is unavailable.")
    return DependencyUnavailable(code, message)


def _etag_matches(request: HttpRequest, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2), and any content coding's tag of the same entry."""
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    stem = etag[:-1]
    for tag in header.split(","):
        tag = tag.strip().removeprefix("W/")
        if tag == etag or tag == "*" or (tag.startswith(stem) and tag[len(stem) :] in _CODED_TAGS):
            return True
    return False


# An entry's tag per content coding: the representations differ, so do their strong tags
# (RFC 9110 8.8.3.3); If-None-Match with any of them matches the entry.
_CODED_TAGS = ('-gzip"', '-zstd"')


def _coded_etag(etag: str, coding: str) -> str:
    return etag if coding == encoding.IDENTITY else f'{etag[:-1]}-{coding}"'


def _coding(request: HttpRequest, entry: Entry) -> str:
    if not entry.gzip or not bff_settings.COMPRESSION:
        return encoding.IDENTITY
    accept = request.META.get("HTTP_ACCEPT_ENCODING")
    return encoding.negotiate(accept) if accept else encoding.IDENTITY


def _repeated_query_key(request: HttpRequest) -> None:
    if request.META.get("QUERY_STRING"):
        for name, values in request.GET.lists():
            if len(values) > 1:
                raise InvalidRequest(f"The query parameter {name[:40]!r} is given more than once.")


def cache_scope_for(surface: Surface, contract: ServingContract) -> str:
    """The registry's cache scope, except that a per-user page is never shared.

    The registry refuses the combination (``Endpoint.validate_cache_scope``); this is the
    second line: whatever a row says, the key of a per-user endpoint carries the user.
    """
    if contract.cache_scope == CacheScope.SHARED and surface.spec.per_user:
        return CacheScope.PER_USER
    return contract.cache_scope


def _cache_control(scope: str, contract: ServingContract) -> dict[str, str]:
    if scope == CacheScope.SHARED:
        ttl = contract.cache_ttl_seconds
        return {
            "Cache-Control": f"public, max-age={ttl}, s-maxage={ttl}, "
            f"stale-while-revalidate={contract.cache_stale_grace_seconds}",
            "Vary": "Accept-Encoding",
        }
    return {"Cache-Control": PRIVATE_CACHE_CONTROL, "Vary": "Authorization, Accept-Encoding"}


async def serve(surface: Surface, request: HttpRequest, major: int, **path) -> HttpResponse:
    tracer = otel.tracer()
    if tracer is None:
        return await _serve(surface, request, major, path, None)
    trace = trace_context_for(request)
    name = f"{request.method} {surface.spec.client} {surface.spec.name} v{major}"
    with otel.request_span(tracer, name, trace, client_sent=trace.parent_id is not None) as span:
        response = await _serve(surface, request, major, path, tracer)
        span.set_attribute("http.response.status_code", response.status_code)
        return response


async def _serve(surface: Surface, request: HttpRequest, major: int, path, tracer) -> HttpResponse:
    started = time.perf_counter()
    trace = trace_context_for(request)
    trace_id = trace.trace_id
    client, endpoint = surface.spec.client, surface.spec.name
    try:
        if request.method not in ALLOWED_METHODS:
            raise MethodNotAllowed(ALLOWED_METHODS)
        principal = await authenticate_request(request.META.get("HTTP_AUTHORIZATION"), client)
        await check_rate(principal)
        if surface.scope is not None:
            require_scope(principal, surface.scope)
        contract, lifecycle = serving_contract(request, client, endpoint, major)
        _repeated_query_key(request)
        params = surface.params_from(request.GET, path)
        downstream = bff_settings.DOWNSTREAM
        deadline = downstream["REQUEST_DEADLINE_SECONDS"]
        context = fanout.CallContext(
            client=client,
            endpoint=endpoint,
            subject=principal.subject,
            trace_id=trace_id,
            timeout=downstream["TIMEOUT_SECONDS"],
            params=params,
            trace=trace,
        )

        async def compute() -> Computed:
            try:
                result = await fanout.run(surface.dependencies, context, deadline=deadline)
            except fanout.CriticalDependencyFailed as exc:
                raise _critical_failure(exc) from exc
            sections, drift = contract.plan.project_all(surface.sections_from(result.values))
            _record_drift(contract, drift, trace_id)
            body = orjson.dumps(sections)
            # Compressed once here, for every response the entry will serve.
            gzip, zstd = encoding.compressed_forms(body)
            return Computed(body, result.degraded, gzip, zstd)

        scope = cache_scope_for(surface, contract)
        if scope == CacheScope.NONE:
            computed = await compute()
            etag = etag_for(computed.body, contract.fingerprint)
            entry = Entry(computed.body, etag, 0.0, 0.0, computed.degraded, computed.gzip,
                          computed.zstd)  # fmt: skip
            state = "bypass"
        else:
            prefix = bff_settings.CACHE_KEY_PREFIX
            if scope == CacheScope.SHARED:
                shared_id = surface.cache_id(params) if surface.cache_id else "all"
                key = cachekeys.shared_key(prefix, contract, shared_id)
            else:
                key = cachekeys.user_key(prefix, contract, principal.subject)
            policy = Policy(
                contract.cache_ttl_seconds,
                contract.cache_jitter_percent,
                contract.cache_stale_grace_seconds,
            )
            with otel.span(tracer, "cache lookup") if tracer else nullcontext() as span:
                outcome = await response_cache(scope).get_or_compute(
                    key,
                    compute,
                    policy,
                    fingerprint=contract.fingerprint,
                    labels=(client, endpoint),
                    wait_seconds=deadline,
                )
                if span is not None:
                    span.set_attribute("bff.cache", outcome.state)
            entry, state = outcome.entry, outcome.state
        coding = _coding(request, entry)
        headers = {**_cache_control(scope, contract), "ETag": _coded_etag(entry.etag, coding),
                   **lifecycle}  # fmt: skip
        if _etag_matches(request, entry.etag) and not entry.degraded:
            # RFC 9110 15.4.5: the validators and caching headers a 200 would carry, and
            # none of the body's (a shared cache would copy them onto the stored body).
            response = HttpResponse(status=304)
            del response["Content-Type"]
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
            head = b'{"meta":' + orjson.dumps(meta)
            body = encoding.encode(head, entry.body, coding, entry.gzip, entry.zstd)
            response = HttpResponse(
                b"" if request.method == "HEAD" else body, content_type="application/json"
            )
            response["Content-Length"] = str(len(body))
            if coding != encoding.IDENTITY:
                response["Content-Encoding"] = coding
            if entry.degraded:
                # A degraded page is nobody's to keep: not the client's, not a proxy's.
                response["X-BFF-Degraded"] = ",".join(entry.degraded)
                headers["Cache-Control"] = "no-store"
                del headers["ETag"]
        for name, value in headers.items():
            response[name] = value
        usage.record(client, endpoint, contract.major, contract.minor)
    except Exception as exc:  # noqa: BLE001 - error_for is the one mapping to the envelope
        response = error_for(exc, trace_id)
    response[TRACE_HEADER] = trace_id
    metrics.child(metrics.REQUESTS, client, endpoint, str(response.status_code)).inc()
    metrics.child(metrics.REQUEST_LATENCY, client, endpoint).observe(time.perf_counter() - started)
    return response


async def mobile_home(request: HttpRequest, major: int) -> HttpResponse:
    return await serve(surfaces.MOBILE_HOME, request, major)


async def web_dashboard(request: HttpRequest, major: int) -> HttpResponse:
    return await serve(surfaces.WEB_DASHBOARD, request, major)


async def partner_product(request: HttpRequest, major: int, product_id: str) -> HttpResponse:
    return await serve(surfaces.PARTNER_PRODUCT, request, major, product_id=product_id)


async def partner_products(request: HttpRequest, major: int) -> HttpResponse:
    return await serve(surfaces.PARTNER_PRODUCTS, request, major)


async def openapi_document(request: HttpRequest, client: str, major: int) -> HttpResponse:
    """``/{client}/v{major}/openapi.json``: the surface as this instance serves it now."""
    trace_id = trace_id_for(request)
    if request.method not in ALLOWED_METHODS:
        return error_for(MethodNotAllowed(ALLOWED_METHODS), trace_id)
    if not registry.loaded:
        return error_for(ContractUnavailable(), trace_id)
    snapshot, now = registry.snapshot, datetime.now(UTC)
    document = openapi.document(snapshot, client, major, server=_origin(request), now=now)
    if document is None:
        if openapi.retired(snapshot, client, major, now):
            return error_for(VersionRetired(f"v{major} of the {client} API was retired."), trace_id)
        # A major approved for newer code is answered like its other URLs: retry later.
        approved = any(
            key[0] == client and key[2] == major and state.approved
            for key, state in snapshot.majors.items()
        )
        error = ContractUnavailable() if approved else VersionNotFound(f"{client} has no v{major}.")
        return error_for(error, trace_id)
    body = orjson.dumps(document)
    response = HttpResponse(
        b"" if request.method == "HEAD" else body, content_type="application/json"
    )
    response["Content-Length"] = str(len(body))
    response["Cache-Control"] = "no-cache"
    response[TRACE_HEADER] = trace_id
    return response


def _origin(request: HttpRequest) -> str:
    # The Host header was checked against ALLOWED_HOSTS by the handler.
    return f"{request.scheme}://{request.get_host()}"


# A version segment no route accepts: "v0", "v01" (routes take only canonical majors).
_VERSION_SEGMENT = re.compile(r"^v(0|0[0-9]+)[0-9]*/")


async def surface_not_found(request: HttpRequest, client: str, rest: str) -> HttpResponse:
    """Unknown paths of a client surface: a malformed or unknown major, or no such route."""
    trace_id = trace_id_for(request)
    if _VERSION_SEGMENT.match(rest):
        error = VersionNotFound(f"{client} has no such version of this API.")
    else:
        error = NotFound()
    response = error_for(error, trace_id)
    response[TRACE_HEADER] = trace_id
    return response
