"""Readiness: strict while an instance starts, lenient once it serves traffic."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from contracts.serving import registry
from tests.contracts.test_gate import approve_pending, code


def readyz() -> tuple[int, dict]:
    response = Client().get("/readyz")
    return response.status_code, response.json()["checks"]["contracts"]


def approve_from(settings, double: str, capture, *args: str) -> None:
    """Newer code (``double``) proposes its shape and a release manager approves it."""
    code(settings, double)
    call_command("contracts", "propose", "mobile", "home", *args, stdout=StringIO())
    approve_pending(capture)


@pytest.fixture
def running(demo):
    """An instance of this code that has started and been ready."""
    registry.refresh()
    assert readyz()[0] == 200
    return registry


def test_a_new_major_approved_for_newer_code_keeps_a_running_instance_ready(
    running, settings, django_capture_on_commit_callbacks
) -> None:
    approve_from(settings, "BREAKING", django_capture_on_commit_callbacks, "--major", "2")
    code(settings, "CORPUS_comments_only")  # back to this instance's own code
    status, contracts = readyz()
    assert status == 200
    assert contracts["serving"]["mobile/home/v1"] == "1.0"
    assert "mobile/home/v2" in contracts["approvedForNewerCode"]
    assert "unserveable" not in contracts


def test_a_new_major_approved_for_newer_code_does_not_block_a_starting_instance(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    approve_from(settings, "BREAKING", django_capture_on_commit_callbacks, "--major", "2")
    code(settings, "CORPUS_comments_only")
    registry.forget()
    status, contracts = readyz()
    assert status == 200
    assert "mobile/home/v2" in contracts["approvedForNewerCode"]


def test_a_newer_minor_keeps_a_running_instance_ready_on_its_older_minor(
    running, settings, django_capture_on_commit_callbacks
) -> None:
    approve_from(settings, "ADDITIVE", django_capture_on_commit_callbacks)
    code(settings, "CORPUS_comments_only")
    status, contracts = readyz()
    assert status == 200
    assert contracts["serving"]["mobile/home/v1"] == "1.0"
    assert contracts["olderMinor"]["mobile/home/v1"] == "serves 1.0; newest approved 1.1"


def test_a_starting_instance_that_would_serve_an_older_minor_is_not_ready(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    approve_from(settings, "ADDITIVE", django_capture_on_commit_callbacks)
    code(settings, "CORPUS_comments_only")
    registry.forget()
    status, contracts = readyz()
    assert status == 503
    assert contracts["unserveable"]["mobile/home/v1"] == (
        "v1.1: this code produces another shape; this code serves v1.0"
    )


def test_a_starting_instance_that_dropped_a_field_of_a_live_major_is_not_ready(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    # v2 comes from this very code, but v1 is still live and this code cannot serve it.
    approve_from(settings, "RENAMED_UPSTREAM", django_capture_on_commit_callbacks,
                 "--major", "2")  # fmt: skip
    registry.forget()
    status, contracts = readyz()
    assert status == 503
    assert contracts["serving"]["mobile/home/v2"] == "2.0"
    assert "user has no field 'avatarUrl'" in contracts["unserveable"]["mobile/home/v1"]


def test_a_running_instance_that_no_longer_serves_a_major_it_served_is_not_ready(
    running, settings
) -> None:
    code(settings, "ADDITIVE")  # nothing of v1 matches any more
    status, contracts = readyz()
    assert status == 503
    assert "mobile/home/v1" in contracts["unserveable"]


def test_an_instance_without_a_snapshot_is_not_ready(demo, monkeypatch) -> None:
    registry.forget()

    def database_down():
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(registry, "loader", database_down)
    status, contracts = readyz()
    assert status == 503
    assert contracts == {
        "ok": False,
        "critical": True,
        "error": "ConnectionError: database unreachable",
    }
