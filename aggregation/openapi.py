"""The OpenAPI 3.1 document of a client surface, built from its serving contract versions.

Response schemas come from the snapshot, so the document changes with an approval, not
with a deploy; every error response carries the one envelope. Schemas are published open
to added properties (a minor adds fields at the same URL); every header the server sends
is declared, and every response has an example built from the code's sample records.
"""

from __future__ import annotations

from datetime import datetime

from aggregation import surfaces
from aggregation.errors import ErrorCode
from aggregation.surfaces import MAX_BATCH_IDS, Surface
from contract_core.shapes import OPEN_SCHEMA_PROMISE, to_json_schema
from contracts.serving import ServingContract, Snapshot

_PRODUCT_ID_SCHEMA = {"type": "string", "pattern": surfaces.PRODUCT_ID.pattern}
_PRODUCT_ID_PARAMETER = {
    "name": "productId",
    "in": "path",
    "required": True,
    "schema": _PRODUCT_ID_SCHEMA,
}
_IDS_PARAMETER = {
    "name": "ids",
    "in": "query",
    "required": True,
    "style": "form",
    "explode": False,
    "description": f"Comma-separated product ids, at most {MAX_BATCH_IDS}.",
    "schema": {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_BATCH_IDS,
        "items": _PRODUCT_ID_SCHEMA,
    },
}

# URL path (after /{client}/v{major}/) and parameters of each surface.
ROUTES: tuple[tuple[Surface, str, tuple[dict, ...]], ...] = (
    (surfaces.MOBILE_HOME, "home", ()),
    (surfaces.WEB_DASHBOARD, "dashboard", ()),
    (surfaces.PARTNER_PRODUCT, "products/{productId}", (_PRODUCT_ID_PARAMETER,)),
    (surfaces.PARTNER_PRODUCTS, "products", (_IDS_PARAMETER,)),
)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "traceId", "retryable"],
            "properties": {
                "code": {"type": "string", "enum": [str(code) for code in ErrorCode]},
                "message": {"type": "string"},
                "traceId": {"type": "string"},
                "retryable": {"type": "boolean"},
            },
        }
    },
}

_ERRORS = {
    "400": "The request is invalid (a malformed id, too many ids, a repeated query parameter).",
    "401": "The bearer token is missing, malformed, expired or wrongly signed.",
    "403": "The token is for another client, or lacks a required scope.",
    "404": "The resource or the API version does not exist.",
    "410": "The API version is past its sunset.",
    "429": "Too many requests; see Retry-After.",
    "500": "An internal error.",
    "503": "A critical internal service, or the contract, is unavailable; retry later.",
}
_ERROR_EXAMPLES = {
    "400": ("INVALID_REQUEST", "A product id is 1-64 letters, digits, '_' or '-'.", False),
    "401": ("UNAUTHENTICATED", "A valid bearer token is required.", False),
    "403": ("FORBIDDEN", "This token may not call this API.", False),
    "404": ("NOT_FOUND", "No such resource.", False),
    "410": ("VERSION_RETIRED", "This API version has been retired.", False),
    "429": ("RATE_LIMITED", "Too many requests.", True),
    "500": ("INTERNAL", "An internal error occurred.", False),
    "503": ("USER_PROFILE_UNAVAILABLE", "The user profile is temporarily unavailable.", True),
}
_EXAMPLE_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _header(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "schema": schema or {"type": "string"}}


_TRACE = _header("The request's trace id: the traceparent's, the client's X-Trace-Id, or new.")
_NOSNIFF = _header("Always nosniff.", {"type": "string", "enum": ["nosniff"]})
_CACHE_CONTROL = _header(
    "private, max-age=30, s-maxage=0 for per-user data; public with max-age, s-maxage and "
    "stale-while-revalidate for shared data; no-store for a degraded body and for errors."
)
_VARY = _header("Authorization, Accept-Encoding (per-user data) or Accept-Encoding (shared).")
_ETAG = _header(
    "Strong tag of the body's sections, one per content coding (suffix -gzip or -zstd); "
    "If-None-Match with any of them answers 304."
)
_LIFECYCLE = {
    "Deprecation": _header("RFC 9745: when this major was deprecated (@epoch-seconds)."),
    "Sunset": _header("RFC 8594: when this major stops answering (HTTP date)."),
    "Link": _header('The successor major: <url>; rel="successor-version".'),
}
_SUCCESS_HEADERS = {
    "ETag": _ETAG,
    "Cache-Control": _CACHE_CONTROL,
    "Vary": _VARY,
    "Content-Encoding": _header(
        "gzip or zstd when the client's Accept-Encoding allows and the body is at least "
        "860 bytes; absent otherwise.",
        {"type": "string", "enum": ["gzip", "zstd"]},
    ),
    "X-BFF-Degraded": _header("The non-critical dependencies left out of a degraded body."),
    "X-Trace-Id": _TRACE,
    "X-Content-Type-Options": _NOSNIFF,
    **_LIFECYCLE,
}
_NOT_MODIFIED_HEADERS = {
    "ETag": _ETAG,
    "Cache-Control": _CACHE_CONTROL,
    "Vary": _VARY,
    "X-Trace-Id": _TRACE,
    "X-Content-Type-Options": _NOSNIFF,
    **_LIFECYCLE,
}
_ERROR_HEADERS = {
    "X-Trace-Id": _TRACE,
    "Cache-Control": _header("no-store"),
    "X-Content-Type-Options": _NOSNIFF,
}
_EXTRA_ERROR_HEADERS = {
    "401": {"WWW-Authenticate": _header('Bearer realm="bff"')},
    "429": {"Retry-After": _header("Seconds to wait.", {"type": "string", "pattern": "^[0-9]+$"})},
}


def _example_body(surface: Surface, contract: ServingContract) -> dict:
    """A success body projected from the code's sample records, as the serving version would."""
    raw: dict[str, object] = {}
    for section in surface.spec.sections:
        record = dict(section.sample)
        raw[section.name] = [record, record] if section.kind == "list" else record
    sections, _ = contract.plan.project_all(raw)
    meta = {
        "traceId": _EXAMPLE_TRACE_ID,
        "generatedAt": "2026-01-01T12:00:00.000Z",
        "latencyMs": 3,
        "schemaVersion": contract.schema_version,
        "degraded": False,
        "degradedDependencies": [],
        "cache": "hit",
    }
    return {"meta": meta, **sections}


def _error_example(status: str) -> dict:
    code, message, retryable = _ERROR_EXAMPLES[status]
    return {
        "error": {
            "code": code,
            "message": message,
            "traceId": _EXAMPLE_TRACE_ID,
            "retryable": retryable,
        }
    }


def _operation(surface: Surface, contract: ServingContract, parameters: tuple) -> dict:
    version = contract.schema_version
    title = f"{surface.spec.client} {surface.spec.name}"
    schema = to_json_schema(dict(contract.shape), title=title, version=version)
    schema.pop("$schema", None)  # OpenAPI 3.1 documents declare the dialect once
    responses: dict[str, dict] = {
        "200": {
            "description": surface.spec.description or "OK",
            "headers": _SUCCESS_HEADERS,
            "content": {
                "application/json": {
                    "schema": schema,
                    "example": _example_body(surface, contract),
                }
            },
        },
        "304": {
            "description": "Not modified (If-None-Match matched the ETag). No body.",
            "headers": _NOT_MODIFIED_HEADERS,
        },
    }
    for status, description in _ERRORS.items():
        responses[status] = {
            "description": description,
            "headers": {**_ERROR_HEADERS, **_EXTRA_ERROR_HEADERS.get(status, {})},
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "example": _error_example(status),
                }
            },
        }
    operation = {
        "operationId": f"{surface.spec.client}_{surface.spec.name}",
        "summary": surface.spec.description,
        "security": [{"bearer": [surfaces.CATALOG_READ]} if surface.scope else {"bearer": []}],
        "parameters": [
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
            {
                "name": "X-Trace-Id",
                "in": "header",
                "required": False,
                # Not a pattern: a malformed id is replaced by a new one, not refused.
                "description": "Used as the trace id when it matches ^[A-Za-z0-9._:-]{8,128}$ "
                "and no valid traceparent is sent; replaced by a new one otherwise.",
                "schema": {"type": "string"},
            },
            {
                "name": "traceparent",
                "in": "header",
                "required": False,
                "description": "W3C Trace Context; an invalid one is ignored.",
                "schema": {"type": "string"},
            },
            {
                "name": "tracestate",
                "in": "header",
                "required": False,
                "description": "W3C Trace Context; passed on with a valid traceparent.",
                "schema": {"type": "string"},
            },
            *parameters,
        ],
        "responses": responses,
        "x-schema-version": version,
    }
    return operation


def _live(state, now: datetime | None) -> bool:
    return state.sunset_at is None or now is None or now < state.sunset_at


def retired(snapshot: Snapshot, client: str, major: int, now: datetime) -> bool:
    """Whether every endpoint of the surface under ``major`` is past its sunset."""
    states = [
        state
        for surface, _, _ in ROUTES
        if surface.spec.client == client
        and (state := snapshot.majors.get((client, surface.spec.name, major))) is not None
    ]
    return bool(states) and not any(_live(state, now) for state in states)


def document(
    snapshot: Snapshot,
    client: str,
    major: int,
    *,
    server: str | None = None,
    now: datetime | None = None,
) -> dict | None:
    """The surface's document, or None when it serves nothing under this major.

    ``now`` leaves out endpoints past their sunset (they answer 410).
    """
    paths: dict[str, dict] = {}
    versions: list[str] = []
    for surface, path, parameters in ROUTES:
        if surface.spec.client != client:
            continue
        state = snapshot.majors.get((client, surface.spec.name, major))
        if state is None or state.serving is None or state.serving.shape is None:
            continue
        if not _live(state, now):
            continue
        contract = state.serving
        operation = _operation(surface, contract, parameters)
        if state.deprecated_at is not None:
            operation["deprecated"] = True
        paths[f"/{client}/v{major}/{path}"] = {"get": operation}
        versions.append(f"{surface.spec.name} {contract.schema_version}")
    if not paths:
        return None
    document = {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": f"{client} API v{major}",
            "version": ", ".join(versions),
            "description": "Generated from the contract versions this instance serves. "
            + OPEN_SCHEMA_PROMISE
            + " Every operation also answers HEAD (no body); other methods get 405 with "
            "Allow. Bodies are compressed (gzip, zstd) when Accept-Encoding allows.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }
    if server is not None:
        document["servers"] = [{"url": server}]
    return document
