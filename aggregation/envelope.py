"""The one error envelope every error response of the BFF is written in (SPEC section 5)."""

from __future__ import annotations

import logging

import orjson
from django.http import HttpRequest, HttpResponse

from aggregation.errors import BFFError, ErrorCode
from contract_core.tracing import TRACE_HEADER, trace_id_for

logger = logging.getLogger(__name__)


def error_response(
    status: int,
    code: ErrorCode,
    message: str,
    *,
    trace_id: str,
    retryable: bool = False,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """The envelope as a response. ``message`` must already be safe to show a client."""
    body = {
        "error": {
            "code": str(code),
            "message": message,
            "traceId": trace_id,
            "retryable": retryable,
        }
    }
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    response[TRACE_HEADER] = trace_id
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_for(exc: BaseException, trace_id: str) -> HttpResponse:
    """The envelope for any exception: the one place errors become responses."""
    if isinstance(exc, BFFError):
        return error_response(
            exc.status,
            exc.code,
            exc.message,
            trace_id=trace_id,
            retryable=exc.retryable,
            headers=exc.headers,
        )
    logger.error("unhandled error", exc_info=exc, extra={"traceId": trace_id})
    return error_response(500, ErrorCode.INTERNAL, "An internal error occurred.", trace_id=trace_id)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        400, ErrorCode.INVALID_REQUEST, "The request is malformed.", trace_id=trace_id_for(request)
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        403, ErrorCode.FORBIDDEN, "This client may not do that.", trace_id=trace_id_for(request)
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        404, ErrorCode.NOT_FOUND, "No such resource.", trace_id=trace_id_for(request)
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(
        500, ErrorCode.INTERNAL, "An internal error occurred.", trace_id=trace_id_for(request)
    )
