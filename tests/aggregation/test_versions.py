"""Live majors: deprecation headers in their RFC formats, 410 after sunset, 404 unknown."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from contract_core.schema import Rule
from contracts import services
from contracts.models import Endpoint, MajorVersion


@pytest.fixture
def two_majors(bff, django_capture_on_commit_callbacks):
    """mobile/home v1 and a v2 that renames avatarUrl, both approved."""
    users = get_user_model().objects
    home = Endpoint.objects.get(client__name="mobile", name="home")
    base = services.latest_approved(home.majors.get(number=1))
    rules = [r for r in services.rules_of(base) if r.source != "avatarUrl"]
    draft = services.CreateDraft(users.get(username="mobile-dev"), home, from_version=base,
                                 rules=[*rules, Rule("user", "avatarUrl", "profileImageUrl")],
                                 new_major=True).execute()  # fmt: skip
    services.SubmitForReview(users.get(username="mobile-dev"), draft).execute()
    with django_capture_on_commit_callbacks(execute=True):
        services.Approve(users.get(username="release-manager"), draft).execute()
    return home


def deprecate(home, sunset: datetime, capture) -> MajorVersion:
    users = get_user_model().objects
    major = home.majors.get(number=1)
    proposal = services.ProposeDeprecation(users.get(username="release-manager"), major,
                                           sunset_at=sunset).execute()  # fmt: skip
    with capture(execute=True):
        services.ConfirmProposal(users.get(username="admin"), proposal).execute()
    major.refresh_from_db()
    return major


def sunset_passes(major: MajorVersion, capture) -> None:
    """Time passes beyond the sunset (a sunset cannot be set in the past)."""
    MajorVersion.objects.filter(pk=major.pk).update(sunset_at=datetime.now(UTC) - timedelta(1))
    with capture(execute=True):
        services.bump_generation()


def call(token, major: int):
    return Client().get(f"/mobile/v{major}/home", HTTP_AUTHORIZATION=f"Bearer {token('usr_5')}")


def test_majors_are_served_side_by_side(two_majors, token) -> None:
    v1, v2 = call(token, 1), call(token, 2)
    assert (v1.status_code, v2.status_code) == (200, 200)
    assert "avatarUrl" in v1.json()["user"] and "profileImageUrl" in v2.json()["user"]
    assert "Deprecation" not in v1 and "Sunset" not in v1 and "Link" not in v1


def test_a_deprecated_major_carries_deprecation_sunset_and_successor_link(
    two_majors, token, django_capture_on_commit_callbacks
) -> None:
    sunset = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
    major = deprecate(two_majors, sunset, django_capture_on_commit_callbacks)
    response = call(token, 1)
    assert response.status_code == 200
    # RFC 9745: a Structured Field Date, "@" and Unix seconds.
    assert re.fullmatch(r"@\d+", response["Deprecation"])
    assert int(response["Deprecation"][1:]) == int(major.deprecated_at.timestamp())
    # RFC 8594: an HTTP-date.
    assert response["Sunset"] == "Sat, 01 Mar 2031 12:00:00 GMT"
    assert parsedate_to_datetime(response["Sunset"]) == sunset
    assert response["Link"] == '</mobile/v2/home>; rel="successor-version"'
    assert "Deprecation" not in call(token, 2)


def test_a_major_past_its_sunset_answers_410(
    two_majors, token, django_capture_on_commit_callbacks
) -> None:
    major = deprecate(two_majors, datetime.now(UTC) + timedelta(days=60),
                      django_capture_on_commit_callbacks)  # fmt: skip
    assert call(token, 1).status_code == 200
    sunset_passes(major, django_capture_on_commit_callbacks)
    response = call(token, 1)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "VERSION_RETIRED"
    assert response.json()["error"]["retryable"] is False
    assert call(token, 2).status_code == 200


def test_a_retired_majors_openapi_document_answers_410(
    two_majors, django_capture_on_commit_callbacks
) -> None:
    major = deprecate(two_majors, datetime.now(UTC) + timedelta(days=60),
                      django_capture_on_commit_callbacks)  # fmt: skip
    assert Client().get("/mobile/v1/openapi.json").status_code == 200
    sunset_passes(major, django_capture_on_commit_callbacks)
    response = Client().get("/mobile/v1/openapi.json")
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "VERSION_RETIRED"
    assert Client().get("/mobile/v2/openapi.json").status_code == 200


@pytest.mark.parametrize("path", ["/mobile/v3/home", "/mobile/v99999/home"])
def test_an_unknown_major_answers_404_version_not_found(bff, token, path) -> None:
    response = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token('usr_5')}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "VERSION_NOT_FOUND"


@pytest.mark.parametrize(
    ("path", "code"),
    [("/mobile/v01/home", "VERSION_NOT_FOUND"), ("/mobile/v1.0/home", "NOT_FOUND"),
     ("/mobile/v1/nothing", "NOT_FOUND"), ("/web/", "NOT_FOUND")],
)  # fmt: skip
def test_unknown_surface_paths_get_the_envelope_even_in_debug(bff, token, settings, path,
                                                               code) -> None:  # fmt: skip
    settings.DEBUG = True
    response = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token('usr_5')}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code
