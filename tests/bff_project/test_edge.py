"""The edge as an attacker meets it: size limits, forwarded headers, ops detail, no banner."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import httpx
import pytest

from bff_project.edge import edge_guard
from tests.bff_project.test_settings import PRODUCTION_SECRETS
from tests.live import LiveBFF, base_env

OPS_TOKEN = secrets.token_urlsafe(24)


def call(scope_overrides: dict, *, headers: list | None = None) -> tuple[list, list]:
    """Run the guard around an app that records what reached it; returns (sent, seen)."""
    sent: list = []
    seen: list = []

    async def app(scope, receive, send):
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "scheme": "http", "path": "/mobile/v1/home", "query_string": b"",
             "headers": headers or [(b"host", b"localhost")], **scope_overrides}  # fmt: skip
    guarded = edge_guard(app, max_target_bytes=8192, max_header_bytes=32_768)
    asyncio.run(guarded(scope, None, send))
    return sent, seen


def test_oversized_headers_are_refused_before_the_app() -> None:
    sent, seen = call({}, headers=[(b"x-junk", b"a" * 1_048_576)])
    assert seen == []
    assert sent[0]["status"] == 431
    assert b'"code":"INVALID_REQUEST"' in sent[1]["body"]


def test_an_oversized_request_target_is_refused() -> None:
    sent, seen = call({"query_string": b"ids=" + b"a" * 9000})
    assert seen == []
    assert sent[0]["status"] == 414


def test_headers_just_under_the_limit_pass() -> None:
    _, seen = call({}, headers=[(b"x-junk", b"a" * 30_000)])
    assert len(seen) == 1


@pytest.mark.parametrize(("scheme", "kept"), [("http", False), ("https", True)])
def test_forwarded_proto_reaches_django_only_when_the_server_honoured_it(scheme, kept) -> None:
    _, seen = call({"scheme": scheme}, headers=[(b"x-forwarded-proto", b"https")])
    assert (
        (b"x-forwarded-proto", b"https") in seen[0]["headers"]
        if kept
        else (all(name != b"x-forwarded-proto" for name, _ in seen[0]["headers"]))
    )


def production_env(tmp_path, **extra: str) -> dict[str, str]:
    return base_env(**PRODUCTION_SECRETS, DJANGO_DEBUG="0",
                    DATABASE_URL=f"sqlite:///{tmp_path / 'edge.sqlite3'}", **extra)  # fmt: skip


@pytest.fixture(scope="module")
def untrusting(tmp_path_factory) -> Iterator[LiveBFF]:
    """Production settings; the only trusted proxy is an address we are not."""
    env = production_env(
        tmp_path_factory.mktemp("edge"), OPS_TOKEN=OPS_TOKEN, FORWARDED_ALLOW_IPS="192.0.2.1"
    )
    with LiveBFF(env) as bff:
        yield bff


def test_no_server_header(untrusting: LiveBFF) -> None:
    for path in ("/healthz", "/readyz", "/mobile/v1/home", "/admin/login/"):
        response = httpx.get(f"{untrusting.url}{path}")
        assert "server" not in response.headers, path


def test_a_one_megabyte_header_is_refused(untrusting: LiveBFF) -> None:
    response = httpx.get(f"{untrusting.url}/mobile/v1/home", headers={"X-Junk": "a" * 1_048_576})
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


def test_public_readyz_says_only_ready_or_not(untrusting: LiveBFF) -> None:
    response = httpx.get(f"{untrusting.url}/readyz")
    assert set(response.json()) == {"status"}
    detailed = httpx.get(
        f"{untrusting.url}/readyz", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    )
    assert "checks" in detailed.json()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-of-some-length", OPS_TOKEN])
def test_metrics_need_the_ops_token(untrusting: LiveBFF, authorization) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(f"{untrusting.url}/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    ok = httpx.get(f"{untrusting.url}/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert ok.status_code == 200
    assert b"bff_requests_total" in ok.content or b"# HELP" in ok.content


def test_forwarded_proto_from_an_untrusted_peer_is_ignored(untrusting: LiveBFF) -> None:
    response = httpx.get(f"{untrusting.url}/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in response.headers


def test_forwarded_proto_from_a_trusted_proxy_is_honoured(tmp_path) -> None:
    with LiveBFF(production_env(tmp_path, FORWARDED_ALLOW_IPS="127.0.0.1")) as bff:
        response = httpx.get(f"{bff.url}/healthz", headers={"X-Forwarded-Proto": "https"})
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert "server" not in response.headers


def test_production_without_an_ops_token_serves_no_metrics(tmp_path) -> None:
    with LiveBFF(production_env(tmp_path)) as bff:
        response = httpx.get(f"{bff.url}/metrics")
        assert response.status_code == 403
        assert "OPS_TOKEN" in response.json()["error"]["message"]
