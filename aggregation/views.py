"""The client surfaces' views: auth → serving contract → fan-out → projection → response."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime

import orjson
from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date

from aggregation import cachekeys, fanout, metrics, openapi, surfaces, usage
from aggregation.auth import authenticate_request, require_scope
from aggregation.cache import Computed, Entry, Policy, etag_for, response_cache
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
from aggregation.throttling import check_rate
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
            f"stale-while-revalidate={contract.cache_stale_grace_seconds}"
        }
    return {"Cache-Control": PRIVATE_CACHE_CONTROL, "Vary": "Authorization"}


async def serve(surface: Surface, request: HttpRequest, major: int, **path) -> HttpResponse:
    started = time.perf_counter()
    trace_id = trace_id_for(request)
    client, endpoint = surface.spec.client, surface.spec.name
    try:
        principal = await authenticate_request(request.headers.get("Authorization"), client)
        await check_rate(principal)
        if surface.scope is not None:
            require_scope(principal, surface.scope)
        contract, lifecycle = serving_contract(request, client, endpoint, major)
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
        )

        async def compute() -> Computed:
            try:
                result = await fanout.run(surface.dependencies, context, deadline=deadline)
            except fanout.CriticalDependencyFailed as exc:
                raise _critical_failure(exc) from exc
            sections, drift = contract.plan.project_all(surface.sections_from(result.values))
            _record_drift(contract, drift, trace_id)
            return Computed(orjson.dumps(sections), result.degraded)

        scope = cache_scope_for(surface, contract)
        if scope == CacheScope.NONE:
            computed = await compute()
            etag = etag_for(computed.body, contract.fingerprint)
            entry = Entry(computed.body, etag, 0.0, 0.0, computed.degraded)
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
            outcome = await response_cache(scope).get_or_compute(
                key,
                compute,
                policy,
                fingerprint=contract.fingerprint,
                labels=(client, endpoint),
                wait_seconds=deadline,
            )
            entry, state = outcome.entry, outcome.state
        headers = {**_cache_control(scope, contract), "ETag": entry.etag, **lifecycle}
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
    metrics.REQUESTS.labels(client, endpoint, str(response.status_code)).inc()
    metrics.REQUEST_LATENCY.labels(client, endpoint).observe(time.perf_counter() - started)
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
    if not registry.loaded:
        return error_for(ContractUnavailable(), trace_id)
    document = openapi.document(registry.snapshot, client, major)
    if document is None:
        # A major approved for newer code is answered like its other URLs: retry later.
        approved = any(
            key[0] == client and key[2] == major and state.approved
            for key, state in registry.snapshot.majors.items()
        )
        error = ContractUnavailable() if approved else VersionNotFound(f"{client} has no v{major}.")
        return error_for(error, trace_id)
    response = HttpResponse(orjson.dumps(document), content_type="application/json")
    response["Cache-Control"] = "no-cache"
    response[TRACE_HEADER] = trace_id
    return response


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
