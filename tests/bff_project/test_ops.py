"""Liveness, readiness, metrics, and Django's own errors in the envelope."""

from __future__ import annotations

import json

import pytest
import redis
from django.core.cache import cache
from django.test import Client, override_settings

from tests.conftest import free_port


def redis_caches(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
                "SOCKET_CONNECT_TIMEOUT": 0.25,
                "SOCKET_TIMEOUT": 0.25,
            },
            "KEY_PREFIX": "bfftest",
        }
    }


def test_healthz_answers_without_touching_anything(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_cache_and_contracts(client: Client, demo) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["cache"]["ok"] is True
    assert body["checks"]["contracts"]["serving"]["mobile/home/v1"] == "1.0"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_is_503_while_the_registry_has_no_contracts(client: Client) -> None:
    from contracts.serving import registry

    registry.refresh()
    response = client.get("/readyz")
    assert response.status_code == 503
    unserveable = response.json()["checks"]["contracts"]["unserveable"]
    assert unserveable["mobile/home"] == "no contract in the registry"


def test_readyz_with_real_redis_is_ready(client: Client, redis_url: str, demo) -> None:
    with override_settings(CACHES=redis_caches(redis_url)):
        response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["cache"] == {
        "ok": True,
        "critical": False,
        "backend": "RedisCache",
    }


def test_redis_outage_is_reported_not_unready(client: Client, demo) -> None:
    """Requests are served without the cache, so its outage must not empty the pool."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(CACHES=redis_caches(dead)):
        response = client.get("/readyz")
        metrics = client.get("/metrics").content.decode()
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["cache"]["ok"] is False
    assert body["checks"]["cache"]["critical"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["contracts"]["critical"] is True
    assert 'bff_readiness_check_ok{check="cache",critical="false"} 0.0' in metrics
    assert 'bff_readiness_check_ok{check="contracts",critical="true"} 1.0' in metrics


def test_readyz_is_503_at_once_while_draining(client: Client, demo, monkeypatch) -> None:
    from bff_project import ops

    monkeypatch.setattr(ops, "_draining", True)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "draining"}


def test_redis_values_are_stored_as_json_never_pickle(redis_url: str) -> None:
    with override_settings(CACHES=redis_caches(redis_url)):
        cache.set("probe", {"avatarUrl": "https://cdn/x.png", "n": 1}, timeout=30)
        keys = redis.Redis.from_url(redis_url).keys("bfftest:*probe")
        raw = redis.Redis.from_url(redis_url).get(keys[0])
        assert json.loads(raw) == {"avatarUrl": "https://cdn/x.png", "n": 1}
        assert cache.get("probe") == {"avatarUrl": "https://cdn/x.png", "n": 1}


def test_metrics_are_prometheus_text(client: Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"# TYPE" in response.content


def test_unknown_path_gets_the_error_envelope(client: Client) -> None:
    response = client.get("/no/such/thing", HTTP_X_TRACE_ID="trace-abc-123")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "NOT_FOUND",
            "message": "No such resource.",
            "traceId": "trace-abc-123",
            "retryable": False,
        }
    }
    assert response["X-Trace-Id"] == "trace-abc-123"


@pytest.mark.parametrize("bad", ["short", "has space in it", "x" * 200, "evil\r\nheader: 1"])
def test_malformed_trace_id_is_replaced_not_echoed(client: Client, bad: str) -> None:
    response = client.get("/no/such/thing", HTTP_X_TRACE_ID=bad)
    trace_id = response.json()["error"]["traceId"]
    assert trace_id != bad
    assert len(trace_id) == 32
    assert response["X-Trace-Id"] == trace_id


@override_settings(ROOT_URLCONF="tests.bff_project.boom_urls", DEBUG=False)
def test_unhandled_exception_gets_the_envelope_without_details() -> None:
    response = Client(raise_request_exception=False).get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "INTERNAL"
    assert body["error"]["retryable"] is False
    assert "postgres" not in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_metrics_show_the_serving_versions(client: Client, demo) -> None:
    from contracts.serving import registry

    text = client.get("/metrics").content.decode()
    fingerprint = registry.get("mobile", "home", 1).fingerprint8
    expected = (
        f'bff_serving_contract_info{{client="mobile",endpoint="home",fingerprint="{fingerprint}",'
        'major="1",version="1.0"} 1.0'
    )
    assert expected in text


def test_a_database_outage_keeps_the_instance_ready_and_serving(tmp_path, demo_services) -> None:
    """Requests are served from the registry snapshot: the outage is reported, not fatal."""
    import httpx

    from aggregation.tokens import mint_token
    from tests.live import LiveBFF, base_env, seed

    database = tmp_path / "registry.sqlite3"
    env = base_env(DATABASE_URL=f"sqlite:///{database}", RATE_LIMITS="off", **demo_services.env)
    seed(env)
    with LiveBFF(env, migrate=False) as bff, httpx.Client(base_url=bff.url, timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        # SQLite cannot open a directory: every new connection now fails.
        database.unlink()
        database.mkdir()
        ready = client.get("/readyz")
        token = mint_token("mobile", "usr_12")
        page = client.get("/mobile/v1/home", headers={"Authorization": f"Bearer {token}"})
        metrics = client.get("/metrics").text
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"]["ok"] is False
    assert ready.json()["checks"]["database"]["critical"] is False
    assert page.status_code == 200
    assert 'bff_readiness_check_ok{check="database",critical="false"} 0.0' in metrics
