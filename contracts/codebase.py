"""What the checked-out code declares: the endpoint specs the registry's contracts apply to."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

from django.conf import settings
from django.utils.module_loading import import_string

from contracts.schema import EndpointSpec

DEFAULT_ENDPOINTS = "aggregation.endpoints.ENDPOINTS"

# The declarations of another checkout, posted to the registry API by its CLI; set only
# for the duration of one request, so the snapshot thread and other requests never see it.
_declared: ContextVar[Mapping[tuple[str, str], EndpointSpec] | None] = ContextVar(
    "declared_endpoints", default=None
)


def code_endpoints() -> Mapping[tuple[str, str], EndpointSpec]:
    """The endpoints of this code; ``settings.BFF["ENDPOINTS"]`` swaps in another set.

    The indirection is what lets a test play "the code after a deploy" (a renamed source
    field, a new section) without mocking the gate that judges it, and what lets the
    registry API judge a remote checkout (``declared_by``) with the same gate.
    """
    declared = _declared.get()
    if declared is not None:
        return declared
    return import_string(settings.BFF.get("ENDPOINTS", DEFAULT_ENDPOINTS))


def code_endpoint(client: str, endpoint: str) -> EndpointSpec | None:
    return code_endpoints().get((client, endpoint))


@contextlib.contextmanager
def declared_by(endpoints: Mapping[tuple[str, str], EndpointSpec]) -> Iterator[None]:
    """Within the block, "this code" is ``endpoints``: the gate and the proposal judge them."""
    token = _declared.set(endpoints)
    try:
        yield
    finally:
        _declared.reset(token)
