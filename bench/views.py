"""Views that exist only for the benchmark, routed when ``BFF_BENCH_VIEWS=1``."""

from __future__ import annotations

import orjson
from django.http import HttpRequest, HttpResponse

_BODY = orjson.dumps({"ok": True})


async def trivial(request: HttpRequest) -> HttpResponse:
    """The framework's ceiling: routing and a JSON body, no work at all."""
    return HttpResponse(_BODY, content_type="application/json")
