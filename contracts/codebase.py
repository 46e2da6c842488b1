"""What the checked-out code declares: the endpoint specs the registry's contracts apply to,
and the OpenAPI document it would serve for a surface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

from contract_core.schema import EndpointSpec

if TYPE_CHECKING:
    from contracts.serving import Snapshot

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


# The surface's OpenAPI document, built by the aggregation layer (which owns the
# surfaces) and registered from its ``AppConfig.ready()``: this app never imports it.
SurfaceDocument = Callable[["Snapshot", str, int], "dict | None"]
_surface_document: SurfaceDocument | None = None


def serve_surface_documents(build: SurfaceDocument) -> None:
    """Use ``build(snapshot, client, major)`` for the registry API's surface documents."""
    global _surface_document
    _surface_document = build


def surface_document(snapshot: Snapshot, client: str, major: int) -> dict | None:
    """The OpenAPI document of ``client``'s surface under ``major``; None if it serves none."""
    if _surface_document is None:
        return None
    return _surface_document(snapshot, client, major)
