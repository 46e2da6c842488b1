"""The client surfaces' Django views: each surface through ``aggregation.pipeline``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
from django.http import HttpRequest, HttpResponse

from aggregation import openapi, pipeline, surfaces
from aggregation.envelope import error_for
from aggregation.errors import (
    ContractUnavailable,
    MethodNotAllowed,
    NotFound,
    VersionNotFound,
    VersionRetired,
)
from aggregation.pipeline import ALLOWED_METHODS
from aggregation.surfaces import Surface
from contract_core.tracing import TRACE_HEADER, trace_id_for
from contracts.serving import registry


def surface_view(surface: Surface):
    """The Django view of a surface: the pipeline, with Django's request and response.

    The API handler answers these routes itself (``bff_project/handlers.py``) through the
    same pipeline; the view serves the test client and any other way into the URLconf.
    """

    async def view(request: HttpRequest, major: int, **path) -> HttpResponse:
        reply = await pipeline.run(surface, pipeline.Incoming.from_request(request), major, path)
        return reply.response()

    view.surface = surface
    view.__name__ = view.__qualname__ = f"{surface.spec.client}_{surface.spec.name}"
    return view


mobile_home = surface_view(surfaces.MOBILE_HOME)
web_dashboard = surface_view(surfaces.WEB_DASHBOARD)
partner_product = surface_view(surfaces.PARTNER_PRODUCT)
partner_products = surface_view(surfaces.PARTNER_PRODUCTS)


async def openapi_document(request: HttpRequest, client: str, major: int) -> HttpResponse:
    """``/{client}/v{major}/openapi.json``: the surface as this instance serves it now."""
    trace_id = trace_id_for(request)
    if request.method not in ALLOWED_METHODS:
        return error_for(MethodNotAllowed(ALLOWED_METHODS), trace_id)
    if not registry.loaded:
        return error_for(ContractUnavailable(), trace_id)
    snapshot, now = registry.snapshot, datetime.now(UTC)
    document = openapi.document(snapshot, client, major, server=_origin(request), now=now)
    if document is None:
        if openapi.retired(snapshot, client, major, now):
            return error_for(VersionRetired(f"v{major} of the {client} API was retired."), trace_id)
        # A major approved for newer code is answered like its other URLs: retry later.
        approved = any(
            key[0] == client and key[2] == major and state.approved
            for key, state in snapshot.majors.items()
        )
        error = ContractUnavailable() if approved else VersionNotFound(f"{client} has no v{major}.")
        return error_for(error, trace_id)
    body = orjson.dumps(document)
    response = HttpResponse(
        b"" if request.method == "HEAD" else body, content_type="application/json"
    )
    response["Content-Length"] = str(len(body))
    response["Cache-Control"] = "no-cache"
    response[TRACE_HEADER] = trace_id
    return response


def _origin(request: HttpRequest) -> str:
    # The Host header was checked against ALLOWED_HOSTS by the handler.
    return f"{request.scheme}://{request.get_host()}"


# A version segment no route accepts: "v0", "v01" (routes take only canonical majors).
_VERSION_SEGMENT = re.compile(r"^v(0|0[0-9]+)[0-9]*/")


async def surface_not_found(request: HttpRequest, client: str, rest: str) -> HttpResponse:
    """Unknown paths of a client surface: a malformed or unknown major, or no such route."""
    trace_id = trace_id_for(request)
    if _VERSION_SEGMENT.match(rest):
        error = VersionNotFound(f"{client} has no such version of this API.")
    else:
        error = NotFound()
    return error_for(error, trace_id)  # the envelope carries X-Trace-Id
