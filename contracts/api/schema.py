"""The registry API's OpenAPI document: its path, its auth schemes and its error responses.

drf-spectacular generates the document from the views and serializers; these hooks keep
it to ``/registry/api/v1/`` and document what every operation may answer in the error
envelope, so fuzzers (schemathesis) and client generators see every response it sends.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from contracts.api.errors import ERROR_CODES

PREFIX = "/registry/api/v1/"

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
                "code": {"type": "string", "enum": list(ERROR_CODES)},
                "message": {"type": "string"},
                "traceId": {"type": "string"},
                "retryable": {"type": "boolean"},
            },
        }
    },
}

_ERRORS = {
    "400": "Invalid input; the message names the field (or the body) at fault.",
    "401": "The bearer token is missing, unknown, revoked or expired.",
    "403": "The token lacks the scope, the client, or the role this call needs.",
    "404": "No such resource (or not one this token's client may see).",
    "405": "This method is not allowed here.",
    "406": "The Accept header asks for a format the API does not serve.",
    "409": "The registry's rules refuse the change (the message says why).",
    "415": "The body is not JSON.",
    "429": "Too many requests for this token; see Retry-After.",
    "500": "An internal error.",
}


class RegistryTokenScheme(OpenApiAuthenticationExtension):
    target_class = "contracts.api.authentication.RegistryTokenAuthentication"
    name = "registryToken"

    def get_security_definition(self, auto_schema):
        description = "A registry API token (bffreg_…) with the scope the call needs."
        return {"type": "http", "scheme": "bearer", "description": description}


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "contracts.api.authentication.StaffSessionAuthentication"
    name = "staffSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


def only_the_registry_api(endpoints, **kwargs):
    """Preprocessing hook: the registry API's own paths, not the rest of the project."""
    return [
        (path, pattern, method, view)
        for path, pattern, method, view in endpoints
        if path.startswith(PREFIX) and not path.endswith("/openapi.json")
    ]


def error_responses(result, generator, request, public, **kwargs):
    """Postprocessing hook: every operation documents the envelope for its error statuses."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in result.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for status, description in _ERRORS.items():
                responses.setdefault(status, {"description": description, "content": envelope})
            for response in responses.values():
                headers = response.setdefault("headers", {})
                headers.setdefault("X-Trace-Id", {"schema": {"type": "string"}})
    return result
