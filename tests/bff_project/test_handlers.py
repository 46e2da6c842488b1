"""The client API's ASGI handler and the prefix router, driven as ASGI apps."""

from __future__ import annotations

import asyncio
import threading

import httpx
import orjson
import pytest
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path

from bff_project.handlers import APIHandler, route
from bff_project.urls import handler400, handler403, handler404, handler500

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

URLCONF = "tests.bff_project.test_handlers"


async def ok(request):
    return HttpResponse(orjson.dumps({"ok": True}), content_type="application/json")


async def boom(request):
    raise RuntimeError("secret internal detail: postgres://user:pw@db/prod")


def sync_thread(request):
    return HttpResponse(threading.current_thread().name)


SPAWNED: list[asyncio.Future] = []


async def spawn(request):
    async def later() -> str:
        await asyncio.sleep(0.01)
        return await sync_to_async(lambda: "ran after the response")()

    SPAWNED.append(asyncio.ensure_future(later()))
    return HttpResponse(b"{}", content_type="application/json")


urlpatterns = [
    path("mobile/v1/ok", ok),
    path("mobile/v1/boom", boom),
    path("mobile/v1/sync", sync_thread),
    path("mobile/v1/spawn", spawn),
    path("other/ok", ok),
]


def get(app, url: str, **headers: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(url, headers=headers)

    return asyncio.run(call())


@pytest.fixture
def api() -> APIHandler:
    with override_settings(ROOT_URLCONF=URLCONF, DEBUG=False):
        yield APIHandler()


def test_serves_views_with_nosniff_and_without_the_site_middleware(api) -> None:
    response = get(api, "/mobile/v1/ok")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # The admin's middleware (clickjacking, sessions, CSRF) does not run on the API path.
    assert "X-Frame-Options" not in response.headers
    assert "Set-Cookie" not in response.headers


def test_an_unknown_path_gets_the_json_404_envelope(api) -> None:
    response = get(api, "/mobile/v1/nope", **{"X-Trace-Id": "trace-abc-123"})
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "NOT_FOUND",
        "message": "No such resource.",
        "traceId": "trace-abc-123",
        "retryable": False,
    }
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_exception_in_a_view_gets_the_500_envelope_without_details(api) -> None:
    response = get(api, "/mobile/v1/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL"
    assert "postgres" not in response.text
    assert "Traceback" not in response.text


def test_a_host_outside_allowed_hosts_gets_the_400_envelope(api) -> None:
    response = get(api, "/mobile/v1/ok", Host="evil.example")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


@override_settings(SECURE_HSTS_SECONDS=600, SECURE_HSTS_INCLUDE_SUBDOMAINS=False,
                   SECURE_HSTS_PRELOAD=False)  # fmt: skip
def test_requests_that_arrived_over_tls_get_hsts(api) -> None:
    api = APIHandler()
    secure = get(api, "/mobile/v1/ok", **{"X-Forwarded-Proto": "https"})
    plain = get(api, "/mobile/v1/ok")
    assert secure.headers["Strict-Transport-Security"] == "max-age=600"
    assert "Strict-Transport-Security" not in plain.headers


def test_sync_work_runs_on_one_long_lived_thread_off_the_event_loop(api) -> None:
    first = get(api, "/mobile/v1/sync").text
    second = get(api, "/mobile/v1/sync").text
    assert first == second
    assert first != threading.main_thread().name


def test_a_task_that_outlives_its_request_can_still_call_sync_code(api) -> None:
    # The response cache's single flight and background refresh do exactly this.
    async def scenario() -> object:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            assert (await client.get("/mobile/v1/spawn")).status_code == 200
        return await SPAWNED.pop()

    assert asyncio.run(scenario()) == "ran after the response"


def test_the_per_request_signals_are_not_sent(api) -> None:
    # Their receivers manage per-request database connections, which the API never opens.
    seen: list[object] = []

    def receiver(sender, **kwargs):
        seen.append(sender)

    request_started.connect(receiver)
    try:
        get(api, "/mobile/v1/ok")
    finally:
        request_started.disconnect(receiver)
    assert seen == []


@override_settings(ROOT_URLCONF=URLCONF, DEBUG=False)
def test_the_router_sends_api_prefixes_to_the_api_handler_and_the_rest_to_django() -> None:
    app = route(APIHandler(), ASGIHandler())
    api = get(app, "/mobile/v1/ok")
    site = get(app, "/other/ok")
    assert api.status_code == site.status_code == 200
    assert "X-Frame-Options" not in api.headers
    assert site.headers["X-Frame-Options"] == "DENY"  # the stock handler ran the middleware
