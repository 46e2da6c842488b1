"""One request to a client surface, in four named stages: admit → contract → entry → render.

``run`` is the whole of it, and both ways a request arrives use it: Django's view
(``aggregation/views.py``, for the test client and anything the URLconf routes) and the
API handler's direct path (``bff_project/handlers.py``), which answers surface requests
without building Django's request and response objects. What a stage needs of the request
is in ``Incoming`` (a handful of headers, the method, path and query); what the pipeline
answers is a ``Reply`` (status, headers, the bytes to send), which each caller turns into
its own response. So the two paths cannot drift: they differ only in how bytes come in
and go out, and ``tests/aggregation/test_pipeline.py`` compares them header for header.

- **admit**: the method, the bearer token (``aggregation/auth.py``), the client's rate
  and the surface's scope: who is asking, and may they.
- **contract**: the serving contract for the URL's major from the in-memory registry
  snapshot, and its lifecycle headers (``Deprecation``, ``Sunset``, ``Link``).
- **entry**: the sections, from the response cache (``aggregation/cache.py``) or from a
  fan-out to the internal services projected through the contract; a per-user page is
  keyed by the user whatever the registry row says.
- **render**: content coding, ETag and ``304``, ``meta`` spliced in front of the cached
  sections (never stored), caching and degradation headers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.utils.datastructures import MultiValueDict
from django.utils.http import http_date

from aggregation import cachekeys, encoding, fanout, metrics, otel, usage
from aggregation.auth import Principal, authenticate_request, require_scope
from aggregation.cache import Computed, Entry, Policy, etag_for, response_cache
from aggregation.conf import Derived, bff_settings
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
from contract_core.tracing import TRACE_HEADER, TraceContext, trace_context_for, trace_context_of
from contracts.models import CacheScope
from contracts.serving import ServingContract, registry

logger = logging.getLogger(__name__)

PRIVATE_CACHE_CONTROL = "private, max-age=30, s-maxage=0"
ALLOWED_METHODS = ("GET", "HEAD")
_DEPENDENCY_MESSAGES = {
    "user": "The user profile is temporarily unavailable.",
    "catalog": "The catalog is temporarily unavailable.",
}
# An entry's tag per content coding: the representations differ, so do their strong tags
# (RFC 9110 8.8.3.3); If-None-Match with any of them matches the entry.
_CODED_TAGS = ('-gzip"', '-zstd"')


@dataclass(slots=True)
class Incoming:
    """What the pipeline reads of a request: method, path, query and six headers."""

    # The request headers read (lower-case, as ASGI gives them): from_headers needs no more.
    HEADERS: ClassVar[frozenset[bytes]] = frozenset(
        {
            b"authorization",
            b"accept-encoding",
            b"if-none-match",
            b"traceparent",
            b"tracestate",
            b"x-trace-id",
        }
    )

    method: str
    path: str
    query_string: str
    authorization: str | None
    accept_encoding: str | None
    if_none_match: str | None
    trace: TraceContext

    @classmethod
    def from_request(cls, request: HttpRequest) -> Incoming:
        meta = request.META
        return cls(
            request.method or "GET",
            request.path,
            meta.get("QUERY_STRING", ""),
            meta.get("HTTP_AUTHORIZATION"),
            meta.get("HTTP_ACCEPT_ENCODING"),
            meta.get("HTTP_IF_NONE_MATCH"),
            trace_context_for(request),
        )

    @classmethod
    def from_headers(
        cls, method: str, path: str, query_string: str, headers: Mapping[str, str]
    ) -> Incoming:
        """From header values by lower-case name, repeated headers joined by commas."""
        trace = trace_context_of(
            headers.get("traceparent"), headers.get("tracestate"), headers.get("x-trace-id")
        )
        return cls(
            method,
            path,
            query_string,
            headers.get("authorization"),
            headers.get("accept-encoding"),
            headers.get("if-none-match"),
            trace,
        )

    def query(self) -> QueryDict:
        return QueryDict(self.query_string)


@dataclass(slots=True)
class Reply:
    """A response as the pipeline gives it: the body is what goes on the wire."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def from_response(cls, response: HttpResponseBase) -> Reply:
        body = response.content if isinstance(response, HttpResponse) else b""
        headers = [item for item in response.items() if item[0].lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        return cls(response.status_code, headers, body)

    def response(self) -> HttpResponse:
        """As a Django response (the view's way out)."""
        response = HttpResponse(self.body, status=self.status)
        del response["Content-Type"]  # only what the reply says
        for name, value in self.headers:
            response[name] = value
        return response


# -- admit


async def admit(surface: Surface, incoming: Incoming) -> Principal:
    """Who is asking, and whether they may: method, token, rate, scope."""
    if incoming.method not in ALLOWED_METHODS:
        raise MethodNotAllowed(ALLOWED_METHODS)
    principal = await authenticate_request(incoming.authorization, surface.spec.client)
    await check_rate(principal)
    if surface.scope is not None:
        require_scope(principal, surface.scope)
    return principal


# -- contract


def contract(incoming: Incoming, client: str, endpoint: str, major: int):
    """The contract this instance serves for the URL's major, with lifecycle headers."""
    if not registry.loaded:
        raise ContractUnavailable()
    state = registry.snapshot.majors.get((client, endpoint, major))
    if state is None:
        raise VersionNotFound(f"{client} has no v{major} of {endpoint}.")
    sunset_at, deprecated_at = state.sunset_at, state.deprecated_at
    if sunset_at is not None and datetime.now(UTC) >= sunset_at:
        raise VersionRetired(f"v{major} of {endpoint} was retired on {sunset_at:%Y-%m-%d}.")
    if state.serving is None:
        raise ContractUnavailable()
    headers: dict[str, str] = {}
    if deprecated_at is not None:
        headers["Deprecation"] = f"@{int(deprecated_at.timestamp())}"  # RFC 9745
    if sunset_at is not None:
        headers["Sunset"] = http_date(sunset_at.timestamp())  # RFC 8594
    successor = state.serving.successor_major
    if successor is not None and deprecated_at is not None:
        path = incoming.path.replace(f"/v{major}/", f"/v{successor}/", 1)
        headers["Link"] = f'<{path}>; rel="successor-version"'
    return state.serving, headers


def cache_scope_for(surface: Surface, contract: ServingContract) -> str:
    """The registry's cache scope, except that a per-user page is never shared.

    The registry refuses the combination (``Endpoint.validate_cache_scope``); this is the
    second line: whatever a row says, the key of a per-user endpoint carries the user.
    """
    if contract.cache_scope == CacheScope.SHARED and surface.spec.per_user:
        return CacheScope.PER_USER
    return contract.cache_scope


def params_of(surface: Surface, incoming: Incoming, path: Mapping[str, Any]) -> Mapping[str, Any]:
    """The call parameters from the query and the path; a repeated query key is refused."""
    if not incoming.query_string:
        return surface.params_from(_NO_QUERY, path)
    try:
        query = incoming.query()
    except SuspiciousOperation:  # more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS
        raise InvalidRequest("The query string has too many parameters.") from None
    for name, values in query.lists():
        if len(values) > 1:
            raise InvalidRequest(f"The query parameter {name[:40]!r} is given more than once.")
    return surface.params_from(query, path)


_NO_QUERY: MultiValueDict = MultiValueDict()


# -- entry


@dataclass(slots=True)
class Served:
    """The entry chosen for a request, how the cache answered, and under which scope."""

    entry: Entry
    state: str  # hit, miss, stale, bypass
    scope: str


async def entry(
    surface: Surface,
    contract: ServingContract,
    principal: Principal,
    params: Mapping[str, Any],
    trace: TraceContext,
    tracer: Any,
) -> Served:
    """The sections: from the cache, or computed by a fan-out and projected."""
    downstream = bff_settings.DOWNSTREAM
    deadline = downstream["REQUEST_DEADLINE_SECONDS"]

    async def compute() -> Computed:
        context = fanout.CallContext(
            client=contract.client,
            endpoint=contract.endpoint,
            subject=principal.subject,
            trace_id=trace.trace_id,
            timeout=downstream["TIMEOUT_SECONDS"],
            params=params,
            trace=trace,
        )
        try:
            result = await fanout.run(surface.dependencies, context, deadline=deadline)
        except fanout.CriticalDependencyFailed as exc:
            raise _critical_failure(exc) from exc
        sections, drift = contract.plan.project_all(surface.sections_from(result.values))
        record_drift(contract, drift, trace.trace_id)
        body = orjson.dumps(sections)
        # Compressed once here, for every response the entry will serve.
        gzip, zstd = encoding.compressed_forms(body)
        return Computed(body, result.degraded, gzip, zstd)

    scope = cache_scope_for(surface, contract)
    if scope == CacheScope.NONE:
        computed = await compute()
        etag = etag_for(computed.body, contract.fingerprint)
        return Served(
            Entry(computed.body, etag, 0.0, 0.0, computed.degraded, computed.gzip, computed.zstd),
            "bypass",
            scope,
        )
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
            labels=(contract.client, contract.endpoint),
            wait_seconds=deadline,
        )
        if span is not None:
            span.set_attribute("bff.cache", outcome.state)
    return Served(outcome.entry, outcome.state, scope)


def _critical_failure(exc: fanout.CriticalDependencyFailed) -> Exception:
    if isinstance(exc.error, DownstreamNotFound):
        return NotFound()
    code = exc.dependency.unavailable_code
    message = _DEPENDENCY_MESSAGES.get(exc.dependency.name, "A required service is unavailable.")
    return DependencyUnavailable(code, message)


def record_drift(contract: ServingContract, drift, trace_id: str) -> None:
    """Count every drift in the metric; log each field's drift once per interval."""
    if not drift:
        return
    for item in drift:
        labels = (contract.client, contract.endpoint, item.section, item.reason)
        metrics.SCHEMA_DRIFT.labels(*labels).inc()
    log = _drift_log.get()
    fresh = log.to_log((contract.client, contract.endpoint), drift)
    if fresh:
        logger.warning(
            "schema drift",
            extra={
                "traceId": trace_id,
                "client": contract.client,
                "endpoint": contract.endpoint,
                "drift": [f"{d.section}.{d.path}: {d.reason}" for d in fresh[:20]],
                "quietSeconds": log.interval,
            },
        )


# One log per process, made anew when the interval setting changes.
_drift_log = Derived(
    lambda: DriftLog(bff_settings.SCHEMA_DRIFT_LOG_INTERVAL_SECONDS),
    "SCHEMA_DRIFT_LOG_INTERVAL_SECONDS",
)


# -- render


def cache_control(scope: str, contract: ServingContract) -> dict[str, str]:
    if scope == CacheScope.SHARED:
        ttl = contract.cache_ttl_seconds
        return {
            "Cache-Control": f"public, max-age={ttl}, s-maxage={ttl}, "
            f"stale-while-revalidate={contract.cache_stale_grace_seconds}",
            "Vary": "Accept-Encoding",
        }
    return {"Cache-Control": PRIVATE_CACHE_CONTROL, "Vary": "Authorization, Accept-Encoding"}


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2), and any content coding's tag of the same entry."""
    if not if_none_match:
        return False
    stem = etag[:-1]
    for tag in if_none_match.split(","):
        tag = tag.strip().removeprefix("W/")
        if tag == etag or tag == "*" or (tag.startswith(stem) and tag[len(stem) :] in _CODED_TAGS):
            return True
    return False


def coded_etag(etag: str, coding: str) -> str:
    return etag if coding == encoding.IDENTITY else f'{etag[:-1]}-{coding}"'


def coding_for(incoming: Incoming, entry: Entry) -> str:
    if not entry.gzip or not bff_settings.COMPRESSION:
        return encoding.IDENTITY
    accept = incoming.accept_encoding
    return encoding.negotiate(accept) if accept else encoding.IDENTITY


def render(
    incoming: Incoming,
    contract: ServingContract,
    served: Served,
    lifecycle: Mapping[str, str],
    started: float,
) -> Reply:
    """The response for an entry: 304 for a matching tag, else meta + sections, coded."""
    entry = served.entry
    coding = coding_for(incoming, entry)
    headers = cache_control(served.scope, contract)
    headers["ETag"] = coded_etag(entry.etag, coding)
    headers.update(lifecycle)
    if not entry.degraded and etag_matches(incoming.if_none_match, entry.etag):
        # RFC 9110 15.4.5: the validators and caching headers a 200 would carry, and
        # none of the body's (a shared cache would copy them onto the stored body).
        return Reply(304, list(headers.items()), b"")
    meta = {
        "traceId": incoming.trace.trace_id,
        "generatedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "latencyMs": round((time.perf_counter() - started) * 1000),
        "schemaVersion": contract.schema_version,
        "degraded": bool(entry.degraded),
        "degradedDependencies": list(entry.degraded),
        "cache": served.state,
    }
    body = encoding.encode(
        b'{"meta":' + orjson.dumps(meta), entry.body, coding, entry.gzip, entry.zstd
    )
    fields = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if coding != encoding.IDENTITY:
        fields.append(("Content-Encoding", coding))
    if entry.degraded:
        # A degraded page is nobody's to keep: not the client's, not a proxy's.
        fields.append(("X-BFF-Degraded", ",".join(entry.degraded)))
        headers["Cache-Control"] = "no-store"
        del headers["ETag"]
    fields.extend(headers.items())
    return Reply(200, fields, b"" if incoming.method == "HEAD" else body)


# -- the whole request


async def run(surface: Surface, incoming: Incoming, major: int, path: Mapping[str, Any]) -> Reply:
    """The reply to one request: the four stages, every error in the envelope, metrics."""
    tracer = otel.tracer()
    if tracer is None:
        return await _run(surface, incoming, major, path, None)
    spec = surface.spec
    name = f"{incoming.method} {spec.client} {spec.name} v{major}"
    trace = incoming.trace
    with otel.request_span(tracer, name, trace, client_sent=trace.parent_id is not None) as span:
        reply = await _run(surface, incoming, major, path, tracer)
        span.set_attribute("http.response.status_code", reply.status)
        return reply


async def _run(
    surface: Surface, incoming: Incoming, major: int, path: Mapping[str, Any], tracer: Any
) -> Reply:
    started = time.perf_counter()
    client, endpoint = surface.spec.client, surface.spec.name
    trace_id = incoming.trace.trace_id
    try:
        principal = await admit(surface, incoming)
        serving, lifecycle = contract(incoming, client, endpoint, major)
        params = params_of(surface, incoming, path)
        served = await entry(surface, serving, principal, params, incoming.trace, tracer)
        reply = render(incoming, serving, served, lifecycle, started)
        usage.record(client, endpoint, serving.major, serving.minor)
    except Exception as exc:  # noqa: BLE001 - error_for is the one mapping to the envelope
        reply = Reply.from_response(error_for(exc, trace_id))
    else:
        reply.headers.append((TRACE_HEADER, trace_id))
    metrics.child(metrics.REQUESTS, client, endpoint, str(reply.status)).inc()
    metrics.child(metrics.REQUEST_LATENCY, client, endpoint).observe(time.perf_counter() - started)
    return reply
