"""Optional OpenTelemetry spans: the request, its dependency calls and the cache lookup,
in the client's trace; nothing loaded when no exporter is asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from aggregation import otel
from aggregation.tokens import mint_token
from tests.live import ROOT, base_env

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
def spans(settings):
    exporter = InMemorySpanExporter()
    settings.BFF = {**settings.BFF, "OTEL_TRACES_EXPORTER": "console"}
    otel.use_provider(otel.provider_for("console", exporter=exporter, simple=True))
    yield exporter
    otel.use_provider(None)


def home(sub: str, **headers: str):
    token = mint_token("mobile", sub)
    return Client().get("/mobile/v1/home", headers={"Authorization": f"Bearer {token}", **headers})


def test_a_request_its_calls_and_its_cache_lookup_are_spans_in_the_clients_trace(
    bff, spans
) -> None:
    response = home("usr_731", traceparent=f"00-{TRACE}-{PARENT}-01")
    assert response.status_code == 200
    finished = {span.name: span for span in spans.get_finished_spans()}
    server = finished["GET mobile home v1"]
    assert server.kind == SpanKind.SERVER
    assert server.parent.span_id == int(PARENT, 16)
    assert server.attributes["http.response.status_code"] == 200
    lookup = finished["cache lookup"]
    assert lookup.parent.span_id == server.context.span_id
    assert lookup.attributes["bff.cache"] == "miss"
    for service in ("user", "order", "recommendation"):
        call = finished[f"GET {service}"]
        assert call.kind == SpanKind.CLIENT
        assert call.parent.span_id == lookup.context.span_id
        # The service was told this span is its parent.
        [seen] = bff.stats(service)["traceparents_seen"]
        assert seen == f"00-{TRACE}-{call.context.span_id:016x}-01"
    assert {span.context.trace_id for span in finished.values()} == {int(TRACE, 16)}


def test_without_a_traceparent_the_root_span_takes_the_trace_id_shown(bff, spans) -> None:
    response = home("usr_732")
    shown = response.headers["X-Trace-Id"]
    server = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert server.parent is None
    assert f"{server.context.trace_id:032x}" == shown
    assert response.json()["meta"]["traceId"] == shown


@pytest.mark.integration  # a subprocess
def test_with_no_exporter_asked_for_the_sdk_is_never_loaded() -> None:
    env = base_env(DJANGO_SETTINGS_MODULE="bff_project.settings")
    env.pop("OTEL_TRACES_EXPORTER", None)
    code = (
        "import sys, django; django.setup();"
        "import bff_project.asgi, aggregation.views, aggregation.calls;"
        "from aggregation import otel; assert otel.tracer() is None;"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"  # logs may come first


@pytest.mark.integration  # a subprocess
def test_an_unknown_exporter_stops_start_up_with_one_line() -> None:
    env = base_env(DJANGO_SETTINGS_MODULE="bff_project.settings", OTEL_TRACES_EXPORTER="zipkinx")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "OTEL_TRACES_EXPORTER" in result.stderr
