"""ASGI entry point: ``uvicorn bff_project.asgi:application``.

The client API prefixes go to ``APIHandler`` (no middleware, no per-request thread hops;
see ``bff_project/handlers.py``); the admin, its static files and the operations
endpoints go to Django's stock handler with the full middleware stack.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bff_project.settings")

django_application = get_asgi_application()

# Imported after Django is set up: the static handler needs the app registry.
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from bff_project.edge import edge_guard  # noqa: E402
from bff_project.handlers import API_PREFIXES, APIHandler, route  # noqa: E402

api_application = APIHandler()
# The benchmark's trivial view measures the API path's ceiling, so it takes that path.
api_prefixes = (*API_PREFIXES, "/bench/") if settings.BFF.get("BENCH_VIEWS") else API_PREFIXES

from bff_project.lifecycle import with_lifecycle  # noqa: E402

# Only the admin's assets live under STATIC_URL, and they are not under an API prefix.
# The edge guard first (limits, forwarded headers), then the lifecycle: draining on
# SIGTERM and closing the pools at shutdown.
application = edge_guard(
    with_lifecycle(
        route(api_application, ASGIStaticFilesHandler(django_application), api_prefixes),
        drain=settings.BFF["SHUTDOWN"]["DRAIN_SECONDS"],
        grace=settings.BFF["SHUTDOWN"]["GRACE_SECONDS"],
    ),
    max_target_bytes=settings.BFF["EDGE"]["MAX_REQUEST_TARGET_BYTES"],
    max_header_bytes=settings.BFF["EDGE"]["MAX_HEADER_BYTES"],
)

# Load the serving snapshot before the first request and keep it fresh from a thread:
# the request path then reads contracts from memory only.
from contracts.serving import registry  # noqa: E402

registry.start()

# Per-version request counts (aggregation/usage.py) are flushed from a thread too.
from aggregation.usage import counter as usage_counter  # noqa: E402

usage_counter.start()

# Everything imported so far lives as long as the process: moved out of the collector's
# generations, it is no longer traversed by each full collection, which lowers p99.
gc.collect()
gc.freeze()
