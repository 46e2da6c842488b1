"""The registry API's errors in the project's envelope, and its size-limited JSON parser.

``exception_handler`` is DRF's ``EXCEPTION_HANDLER`` for the API: DRF's exceptions, the
service layer's ``ActionError`` and anything unexpected all leave as
``{"error": {"code", "message", "traceId", "retryable"}}``; a 400 names the field at fault.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, parsers, status
from rest_framework.response import Response

from aggregation.tracing import TRACE_HEADER, trace_id_for
from contracts.services import ActionError

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024
MAX_DEPTH = 64

CODES = {
    400: "INVALID_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "REFUSED",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL",
}
ERROR_CODES = tuple(CODES.values())


class Refused(exceptions.APIException):
    """The registry's rules refuse the action (the service layer's ``ActionError``)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The registry refuses this change."
    default_code = "refused"


def exception_handler(exc: Exception, context: dict) -> Response:
    request = context["request"]
    if isinstance(exc, ActionError):
        exc = Refused(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("No such resource.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        logger.error(
            "registry API: unhandled error", exc_info=exc, extra={"traceId": trace_id_for(request)}
        )
        return envelope(request, 500, "An internal error occurred.")
    headers = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        header = context["view"].get_authenticate_header(request)
        if header:
            headers["WWW-Authenticate"] = header
        exc.status_code = status.HTTP_401_UNAUTHORIZED
    if isinstance(exc, exceptions.ValidationError):
        message = "Invalid input: " + "; ".join(
            f"{path}: {text}" if path else text for path, text in flatten(exc.detail)
        )
    else:
        message = str(exc.detail)
    return envelope(
        request, exc.status_code, message, headers=headers, retryable=exc.status_code == 429
    )


def envelope(
    request, status_code: int, message: str, *, headers: dict | None = None, retryable: bool = False
) -> Response:
    trace_id = trace_id_for(request)
    body = {
        "error": {
            "code": CODES.get(status_code, CODES[400] if status_code < 500 else CODES[500]),
            "message": message,
            "traceId": trace_id,
            "retryable": retryable,
        }
    }
    response = Response(body, status=status_code, headers=headers)
    response[TRACE_HEADER] = trace_id
    response["Cache-Control"] = "no-store"
    return response


def flatten(detail: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """DRF's nested error detail as (``endpoints[0].sections[1].name``, message) pairs."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a ListField's errors are keyed by index
                yield from flatten(value, f"{path}[{key}]")
                continue
            name = "" if key == "non_field_errors" else str(key)
            yield from flatten(value, f"{path}.{name}" if path and name else path or name)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            for item in detail:
                yield path, str(item)
            return
        for index, item in enumerate(detail):
            if item:
                yield from flatten(item, f"{path}[{index}]")
    else:
        yield path, str(detail)


class LimitedJSONParser(parsers.JSONParser):
    """JSON bodies up to ``MAX_BODY_BYTES`` and ``MAX_DEPTH`` levels, else a 400 naming it."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise exceptions.ParseError(f"body: larger than {MAX_BODY_BYTES} bytes")
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_BODY_BYTES:
            raise exceptions.ParseError(f"body: larger than {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise exceptions.ParseError("body: not UTF-8") from None
        except RecursionError:
            raise exceptions.ParseError(f"body: nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise exceptions.ParseError(f"body: not valid JSON ({exc})") from None
        if _depth(data) > MAX_DEPTH:
            raise exceptions.ParseError(f"body: nested deeper than {MAX_DEPTH} levels")
        return data


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest
