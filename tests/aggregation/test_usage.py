"""Usage per client, endpoint and served version: counted in process, flushed per hour."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from aggregation import usage
from aggregation.tokens import mint_token
from aggregation.usage import UsageCounter
from contracts.models import Endpoint
from contracts.usage import HOUR_SECONDS, Usage, usage_of
from tests.aggregation.test_mobile_home import metric

START = 1_800_000_000.0  # an hour boundary is irrelevant: buckets are whole hours


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fresh_usage(db):
    """No count recorded by an earlier test is pending or stored."""
    usage.counter.flush()
    caches["default"].clear()


def test_counts_are_summed_over_the_last_day_and_week(fresh_usage) -> None:
    clock = Clock(START)
    counter = UsageCounter(clock=clock)
    for _ in range(3):
        counter.record("mobile", "home", 1, 0)
    counter.record("mobile", "home", 1, 1)
    assert counter.flush() == 4
    clock.now += 2 * 24 * HOUR_SECONDS  # two days later: out of the last 24 h, in the week
    counter.record("mobile", "home", 1, 0)
    counter.flush()
    found = usage_of("mobile", "home", [(1, 0), (1, 1), (2, 0)], now=clock.now)
    assert (found[(1, 0)].last_24h, found[(1, 0)].last_7d) == (1, 4)
    assert (found[(1, 1)].last_24h, found[(1, 1)].last_7d) == (0, 1)
    assert found[(2, 0)] == Usage()
    assert found[(1, 0)].last_seen.timestamp() == clock.now
    later = usage_of("mobile", "home", [(1, 0)], now=clock.now + 8 * 24 * HOUR_SECONDS)
    assert later[(1, 0)].last_7d == 0


def test_a_failed_flush_keeps_its_counts(fresh_usage, monkeypatch) -> None:
    counter = UsageCounter(clock=Clock(START))
    counter.record("web", "dashboard", 1, 0)

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(caches["default"], "add", down)
    assert counter.flush() == 0
    monkeypatch.undo()
    assert counter.flush() == 1


def _usage_cells(html: str, version: str) -> tuple[str, str]:
    row = re.search(
        rf"<td>{re.escape(version)}</td><td class=\"usage-24h\">(\d+)</td>"
        rf"<td class=\"usage-7d\">(\d+)</td>",
        html,
    )
    assert row, f"no usage row for {version}"
    return row.group(1), row.group(2)


def test_requests_over_http_show_up_in_the_admin_export_and_metrics(bff, fresh_usage) -> None:
    sent = 7
    labels = {"client": "mobile", "endpoint": "home", "major": "1", "minor": "0"}
    before = metric("bff_contract_requests_total", **labels)
    client = Client()
    for number in range(sent):
        token = mint_token("mobile", f"usr_{number + 1}")
        response = client.get("/mobile/v1/home", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
    # A request the registry cannot serve (no such major) is no version's traffic.
    auth = {"Authorization": f"Bearer {mint_token('mobile', 'usr_1')}"}
    assert client.get("/mobile/v9/home", headers=auth).status_code == 404
    assert usage.counter.flush() == sent

    manager = Client()
    manager.force_login(get_user_model().objects.get(username="release-manager"))
    home = Endpoint.objects.get(client__name="mobile", name="home")
    page = manager.get(reverse("admin:contracts_endpoint_change", args=[home.pk]))
    assert _usage_cells(page.content.decode(), "1.0") == (str(sent), str(sent))

    out = StringIO()
    call_command("contracts", "export", "--usage", stdout=out)
    exported = json.loads(out.getvalue())["mobile"]["home"]["1.0"]
    assert (exported["last24h"], exported["last7d"]) == (sent, sent)
    assert exported["lastSeen"] is not None

    assert metric("bff_contract_requests_total", **labels) - before == sent
