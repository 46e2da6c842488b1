"""Trace ids: accept a well-formed one from the client, otherwise mint a new one."""

from __future__ import annotations

import re
import uuid

from django.http import HttpRequest

TRACE_HEADER = "X-Trace-Id"
# Trace ids travel downstream and into logs, so only a conservative alphabet passes;
# anything else (newlines, quotes, kilobytes) is replaced, not echoed.
_VALID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_trace_id() -> str:
    return uuid.uuid4().hex


def trace_id_for(request: HttpRequest) -> str:
    """The request's trace id, fixed on first use for the rest of the request."""
    existing = getattr(request, "trace_id", None)
    if existing:
        return existing
    candidate = request.headers.get(TRACE_HEADER, "")
    trace_id = candidate if _VALID.match(candidate) else new_trace_id()
    request.trace_id = trace_id
    return trace_id
