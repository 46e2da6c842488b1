"""The OpenAPI 3.1 document of a client surface, built from its serving contract versions.

Response schemas come from the snapshot, so the document changes with an approval, not
with a deploy; every error response carries the one envelope.
"""

from __future__ import annotations

from collections.abc import Mapping

from aggregation import surfaces
from aggregation.errors import ErrorCode
from aggregation.surfaces import MAX_BATCH_IDS, Surface
from contracts.serving import Snapshot
from contracts.shapes import to_json_schema

# URL path (after /{client}/v{major}/) and parameters of each surface.
ROUTES: tuple[tuple[Surface, str, tuple[dict, ...]], ...] = (
    (surfaces.MOBILE_HOME, "home", ()),
    (surfaces.WEB_DASHBOARD, "dashboard", ()),
    (surfaces.PARTNER_PRODUCT, "products/{productId}", (
        {"name": "productId", "in": "path", "required": True,
         "schema": {"type": "string", "pattern": surfaces.PRODUCT_ID.pattern}},
    )),
    (surfaces.PARTNER_PRODUCTS, "products", (
        {"name": "ids", "in": "query", "required": True, "style": "form", "explode": False,
         "description": f"Comma-separated product ids, at most {MAX_BATCH_IDS}.",
         "schema": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH_IDS,
                    "items": {"type": "string", "pattern": surfaces.PRODUCT_ID.pattern}}},
    )),
)  # fmt: skip

ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "additionalProperties": False,
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
    "400": "The request is invalid (a malformed id, too many ids).",
    "401": "The bearer token is missing, malformed, expired or wrongly signed.",
    "403": "The token is for another client, or lacks a required scope.",
    "404": "The resource or the API version does not exist.",
    "410": "The API version is past its sunset.",
    "429": "Too many requests; see Retry-After.",
    "500": "An internal error.",
    "503": "A critical internal service, or the contract, is unavailable; retry later.",
}


def _operation(surface: Surface, shape: Mapping, version: str, parameters: tuple) -> dict:
    schema = to_json_schema(dict(shape), title=f"{surface.spec.client} {surface.spec.name}",
                            version=version)  # fmt: skip
    schema.pop("$schema", None)  # OpenAPI 3.1 documents declare the dialect once
    responses: dict[str, dict] = {
        "200": {
            "description": surface.spec.description or "OK",
            "headers": {
                "ETag": {"schema": {"type": "string"}},
                "X-Trace-Id": {"schema": {"type": "string"}},
            },
            "content": {"application/json": {"schema": schema}},
        },
        "304": {"description": "Not modified (If-None-Match matched the ETag)."},
    }
    for status, description in _ERRORS.items():
        responses[status] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
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
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{8,128}$"},
            },
            *parameters,
        ],
        "responses": responses,
        "x-schema-version": version,
    }
    return operation


def document(snapshot: Snapshot, client: str, major: int) -> dict | None:
    """The surface's document, or None when it serves nothing under this major."""
    paths: dict[str, dict] = {}
    versions: list[str] = []
    for surface, path, parameters in ROUTES:
        if surface.spec.client != client:
            continue
        state = snapshot.majors.get((client, surface.spec.name, major))
        if state is None or state.serving is None or state.serving.shape is None:
            continue
        contract = state.serving
        operation = _operation(surface, contract.shape, contract.schema_version, parameters)
        if state.deprecated_at is not None:
            operation["deprecated"] = True
        paths[f"/{client}/v{major}/{path}"] = {"get": operation}
        versions.append(f"{surface.spec.name} {contract.schema_version}")
    if not paths:
        return None
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": f"{client} API v{major}",
            "version": ", ".join(versions),
            "description": "Generated from the contract versions this instance serves.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }
