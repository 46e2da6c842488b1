"""What the checked-out code declares: the endpoint specs the registry's contracts apply to."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.utils.module_loading import import_string

from contracts.schema import EndpointSpec

DEFAULT_ENDPOINTS = "aggregation.endpoints.ENDPOINTS"


def code_endpoints() -> Mapping[tuple[str, str], EndpointSpec]:
    """The endpoints of this code; ``settings.BFF["ENDPOINTS"]`` swaps in another set.

    The indirection is what lets a test play "the code after a deploy" (a renamed source
    field, a new section) without mocking the gate that judges it.
    """
    return import_string(settings.BFF.get("ENDPOINTS", DEFAULT_ENDPOINTS))


def code_endpoint(client: str, endpoint: str) -> EndpointSpec | None:
    return code_endpoints().get((client, endpoint))
