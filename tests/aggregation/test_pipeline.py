"""The two ways into the pipeline give the same answers, header for header.

``APIHandler`` answers the surface routes from the ASGI scope directly; Django's views
answer them through ``HttpRequest``/``HttpResponse``. Both run ``aggregation.pipeline``;
these tests send the same requests both ways, in process, against the demo services,
and compare everything but what differs per request by design (``meta.generatedAt``,
``meta.latencyMs``).
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from django.test import override_settings

from aggregation.tokens import mint_token
from bff_project.handlers import APIHandler

PARTNER = {"scope": "catalog:read"}


def bearer(client: str, sub: str, **claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(client, sub, **claims)}"}


class Recorder:
    """The handler, and which path answered: the direct one, or Django's views."""

    def __init__(self) -> None:
        self.handler = APIHandler()
        self.direct: list[str] = []
        serve_surface = self.handler._serve_surface

        async def recording(scope, send) -> bool:
            answered = await serve_surface(scope, send)
            if answered:
                self.direct.append(scope["path"])
            return answered

        self.handler._serve_surface = recording

    def request(
        self, method: str, url: str, headers: dict[str, str], *, direct: bool = True
    ) -> httpx.Response:
        app = self.handler if direct else _DjangoOnly(self.handler)

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                return await http.request(method, url, headers=headers)

        return asyncio.run(call())


class _DjangoOnly:
    """The same handler with the direct path switched off: Django's URLconf and views."""

    def __init__(self, handler: APIHandler) -> None:
        self.handler = handler

    async def __call__(self, scope, receive, send) -> None:
        await self.handler.handle(scope, receive, send)


@pytest.fixture
def recorder(bff) -> Recorder:
    return Recorder()


def comparable(response: httpx.Response) -> tuple:
    """Status, headers and body, without what differs per request by design."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    headers.pop("content-length", None)  # meta.latencyMs may take another digit
    raw = response.content  # httpx has undone the content coding
    body: object = raw
    if raw and headers.get("content-type") == "application/json":
        body = orjson.loads(raw)
        meta = body.get("meta") if isinstance(body, dict) else None
        if meta:
            meta.pop("generatedAt")
            meta.pop("latencyMs")
    return response.status_code, headers, body


CASES = [
    (
        "GET",
        "/mobile/v1/home",
        lambda: bearer("mobile", "usr_8011"),
        {"Accept-Encoding": "identity"},
    ),
    ("GET", "/mobile/v1/home", lambda: bearer("mobile", "usr_8021"), {"Accept-Encoding": "gzip"}),
    ("GET", "/mobile/v1/home", lambda: bearer("mobile", "usr_8031"), {"Accept-Encoding": "zstd"}),
    ("HEAD", "/mobile/v1/home", lambda: bearer("mobile", "usr_8041"), {}),
    ("POST", "/mobile/v1/home", lambda: bearer("mobile", "usr_8051"), {}),
    ("GET", "/mobile/v1/home", lambda: {}, {}),
    ("GET", "/mobile/v1/home", lambda: {"Authorization": "Bearer not.a.token"}, {}),
    ("GET", "/mobile/v1/home", lambda: bearer("web", "usr_8061"), {}),
    ("GET", "/mobile/v1/home", lambda: bearer("mobile", "usr_missing"), {}),
    ("GET", "/mobile/v9/home", lambda: bearer("mobile", "usr_8071"), {}),
    ("GET", "/web/v1/dashboard", lambda: bearer("web", "usr_8081"), {"Accept-Encoding": "gzip"}),
    ("GET", "/partner/v1/products/prd_3", lambda: bearer("partner", "ptn_pl", **PARTNER), {}),
    ("GET", "/partner/v1/products/prd_4", lambda: bearer("partner", "ptn_pl"), {}),
    (
        "GET",
        "/partner/v1/products?ids=prd_1,prd_2",
        lambda: bearer("partner", "ptn_pl", **PARTNER),
        {"Accept-Encoding": "gzip"},
    ),
    (
        "GET",
        "/partner/v1/products?ids=prd_1&ids=prd_2",
        lambda: bearer("partner", "ptn_pl", **PARTNER),
        {},
    ),
]


@pytest.mark.parametrize(("method", "url", "auth", "extra"), CASES)
def test_the_direct_path_and_the_django_views_answer_alike(recorder, method, url, auth, extra):
    headers = {**auth(), **extra, "X-Trace-Id": "trace-pipeline-parity"}
    recorder.request("GET", url, headers)  # the miss, if any: both below are hits
    direct = recorder.request(method, url, headers)
    via_django = recorder.request(method, url, headers, direct=False)
    assert recorder.direct, "the direct path answered nothing"
    assert comparable(direct) == comparable(via_django)
    if direct.status_code == 200 and "Accept-Encoding" in extra:
        coding = extra["Accept-Encoding"]
        assert direct.headers.get("Content-Encoding") == (None if coding == "identity" else coding)
    assert direct.headers["X-Content-Type-Options"] == "nosniff"
    assert direct.headers["X-Trace-Id"] == "trace-pipeline-parity"


def test_a_304_is_the_same_both_ways(recorder):
    headers = {**bearer("mobile", "usr_8091"), "X-Trace-Id": "trace-pipeline-304"}
    etag = recorder.request("GET", "/mobile/v1/home", headers).headers["ETag"]
    conditional = {**headers, "If-None-Match": etag}
    direct = recorder.request("GET", "/mobile/v1/home", conditional)
    via_django = recorder.request("GET", "/mobile/v1/home", conditional, direct=False)
    assert direct.status_code == 304
    assert "content-type" not in direct.headers
    assert comparable(direct) == comparable(via_django)


def test_a_degraded_page_is_the_same_both_ways(recorder, demo_services):
    demo_services.set_faults("recommendation", status=500)
    headers = {**bearer("mobile", "usr_8101"), "X-Trace-Id": "trace-pipeline-degraded"}
    direct = recorder.request("GET", "/mobile/v1/home", headers)
    via_django = recorder.request("GET", "/mobile/v1/home", headers, direct=False)
    assert direct.headers["X-BFF-Degraded"] == "recommendations"
    status, direct_headers, direct_body = comparable(direct)
    assert comparable(via_django) == (status, direct_headers, direct_body)


def test_paths_that_are_not_surface_routes_go_through_django(recorder):
    response = recorder.request("GET", "/mobile/v1/openapi.json", {})
    assert response.status_code == 200
    assert recorder.request("GET", "/mobile/v1/nowhere", {}).status_code == 404
    assert recorder.request("GET", "/mobile/v01/home", {}).status_code == 404
    assert recorder.direct == []


def test_a_host_outside_allowed_hosts_gets_djangos_400(recorder):
    headers = {**bearer("mobile", "usr_8111"), "Host": "evil.example"}
    response = recorder.request("GET", "/mobile/v1/home", headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert recorder.direct == []
    with override_settings(ALLOWED_HOSTS=["evil.example"]):
        assert recorder.request("GET", "/mobile/v1/home", headers).status_code == 200
    assert recorder.direct == ["/mobile/v1/home"]


def test_hsts_only_on_requests_that_came_over_tls(bff, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    recorder = Recorder()
    headers = bearer("mobile", "usr_8121")
    plain = recorder.request("GET", "/mobile/v1/home", headers)
    assert "strict-transport-security" not in plain.headers
    tls = recorder.request("GET", "/mobile/v1/home", {**headers, "X-Forwarded-Proto": "https"})
    assert tls.headers["Strict-Transport-Security"].startswith("max-age=3600")
    assert len(recorder.direct) == 2


def test_too_many_query_parameters_get_400_not_500(recorder, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    query = "&".join(f"p{n}=1" for n in range(10))
    headers = bearer("partner", "ptn_pl", **PARTNER)
    response = recorder.request("GET", f"/partner/v1/products?{query}", headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
