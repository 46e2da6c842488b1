"""Trace context: W3C ``traceparent``/``tracestate`` or ``X-Trace-Id`` in, the same out.

The trace id shown to the client (``meta.traceId``, ``X-Trace-Id``, the error envelope)
is, in order: the trace id of a valid ``traceparent`` the client sent; a well-formed
``X-Trace-Id``; a new one. Every downstream call carries ``X-Trace-Id`` and a
``traceparent`` in the same trace (a new parent id per call), plus the client's
``tracestate`` when its ``traceparent`` was valid. An invalid ``traceparent`` is ignored,
its ``tracestate`` with it (W3C Trace Context, section 3.3 and 4.3).

Django-free: a request is anything with Django's ``META`` (the client API's requests, the
admin's and the registry API's alike) that takes a ``trace`` attribute.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

TRACE_HEADER = "X-Trace-Id"
# Trace ids travel downstream and into logs, so only a conservative alphabet passes;
# anything else (newlines, quotes, kilobytes) is replaced, not echoed.
_VALID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# version-traceid-parentid-flags; a version after 00 may append fields (W3C 3.2.4).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_W3C_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_ZERO_TRACE = "0" * 32
_ZERO_PARENT = "0" * 16
# At most 32 list members of at most 256 characters is 512 characters that must be
# kept (W3C 3.3.1.5); printable ASCII only, so nothing odd reaches a service or a log.
_TRACESTATE = re.compile(r"^[\x20-\x7e]{1,512}$")


@dataclass(frozen=True)
class TraceContext:
    """One request's trace: the id shown, and what is sent to the internal services."""

    trace_id: str
    w3c_trace_id: str  # 32 hex digits: the trace id itself when it has that form
    flags: str = "00"
    tracestate: str | None = None
    parent_id: str | None = None  # the client's span, when it sent a valid traceparent

    def headers(self, span_id: str | None = None) -> dict[str, str]:
        """The headers for one downstream call; ``span_id`` (the call's own span, the
        parent of whatever the service does) defaults to a new random one."""
        parent = span_id or f"{_random.getrandbits(64) or 1:016x}"
        headers = {
            TRACE_HEADER: self.trace_id,
            "traceparent": f"00-{self.w3c_trace_id}-{parent}-{self.flags}",
        }
        if self.tracestate:
            headers["tracestate"] = self.tracestate
        return headers


# Trace ids need to be unique, not secret: a pseudo-random generator, as OpenTelemetry's
# own id generator uses, at a twentieth of an os.urandom call's cost (a system call each).
# Seeded from the system's randomness once per process; a worker forked after import
# reseeds, so no two share a sequence.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)


def new_trace_id() -> str:
    """32 random hex digits: a W3C trace id (never all zeros) and a UUID's size."""
    return f"{_random.getrandbits(128) or 1:032x}"


def parse_traceparent(value: str) -> tuple[str, str, str] | None:
    """``(trace id, parent id, flags)`` of a valid ``traceparent``, else None."""
    match = _TRACEPARENT.match(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_PARENT:
        return None
    if version != "00":
        flags = f"{int(flags, 16) & 0x01:02x}"  # only the flags version 00 defines
    return trace_id, parent_id, flags


def trace_context_of(
    traceparent: str | None, tracestate: str | None, x_trace_id: str | None
) -> TraceContext:
    """The trace context a request's three tracing headers give (any may be absent)."""
    parsed = parse_traceparent(traceparent) if traceparent else None
    if parsed is not None:
        trace_id, parent_id, flags = parsed
        state = tracestate or ""
        state = state if _TRACESTATE.match(state) else None
        return TraceContext(trace_id, trace_id, flags, state, parent_id)
    candidate = x_trace_id or ""
    if _VALID.match(candidate):
        w3c = candidate if _W3C_TRACE_ID.match(candidate) and candidate != _ZERO_TRACE else None
        return TraceContext(candidate, w3c or new_trace_id())
    trace_id = new_trace_id()
    return TraceContext(trace_id, trace_id)


class Request(Protocol):
    """What the trace context needs of a request: a Django ``HttpRequest`` has it."""

    META: Mapping[str, Any]


def trace_context_for(request: Request) -> TraceContext:
    """The request's trace context, fixed on first use for the rest of the request."""
    existing = getattr(request, "trace", None)
    if existing is not None:
        return existing
    # META, not request.headers: building the latter costs more than the whole look-up.
    meta = request.META
    trace = trace_context_of(
        meta.get("HTTP_TRACEPARENT"), meta.get("HTTP_TRACESTATE"), meta.get("HTTP_X_TRACE_ID")
    )
    request.trace = trace
    return trace


def trace_id_for(request: Request) -> str:
    """The request's trace id, fixed on first use for the rest of the request."""
    return trace_context_for(request).trace_id
