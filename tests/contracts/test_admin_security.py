"""The admin as an attacker with a frontend team's login would try it (SECURITY.md)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from contracts.models import CacheScope, Client, ContractVersion, Endpoint, MajorVersion, Status
from tests.contracts.test_admin import login

MODELS = {
    "client": (Client, "name"),
    "endpoint": (Endpoint, "client__name"),
    "majorversion": (MajorVersion, "endpoint__client__name"),
    "contractversion": (ContractVersion, "major__endpoint__client__name"),
}


def _rows(model_name: str, client: str):
    model, lookup = MODELS[model_name]
    return list(model.objects.filter(**{lookup: client}))


def _history_urls(model_name: str, obj) -> tuple[str, str]:
    record = obj.history.order_by("history_id").first()
    return (
        reverse(f"admin:contracts_{model_name}_history", args=[obj.pk]),
        reverse(f"admin:contracts_{model_name}_simple_history", args=[obj.pk, record.history_id]),
    )


def _state() -> list:
    """Everything a history POST could have changed."""
    return [
        list(model.objects.order_by("pk").values()) for model, _ in MODELS.values()
    ]  # fmt: skip


@pytest.mark.parametrize("model_name", list(MODELS))
def test_another_clients_history_is_not_found(demo, model_name: str) -> None:
    client = login("mobile-dev")
    for obj in _rows(model_name, "web"):
        for url in _history_urls(model_name, obj):
            response = client.get(url)
            assert response.status_code in (403, 404), url
            assert b"<html" in response.content  # an admin page, not the API's JSON


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("username", ["mobile-dev", "release-manager", "admin"])
def test_history_forms_never_save(demo, model_name: str, username: str) -> None:
    client = login(username)
    before = _state()
    for owner in ("mobile", "web", "partner"):
        for obj in _rows(model_name, owner):
            _, form_url = _history_urls(model_name, obj)
            response = client.post(
                form_url,
                {"cache_scope": "shared", "cache_ttl_seconds": "3600", "name": "renamed",
                 "display_name": "renamed", "status": "draft", "deprecated_at": "",
                 "sunset_at": "", "change_summary": "reverted"},
            )  # fmt: skip
            assert response.status_code == 403, form_url
            assert b"History is read-only" in response.content
    assert _state() == before


def test_the_history_of_an_approved_version_reads_without_a_revert_button(demo) -> None:
    client = login("release-manager")
    approved = ContractVersion.objects.filter(status=Status.APPROVED).first()
    history, form_url = _history_urls("contractversion", approved)
    assert client.get(history).status_code == 200
    response = client.get(form_url)
    assert response.status_code == 200
    assert b"Revert" not in response.content
    assert b'name="_save"' not in response.content


def test_own_history_stays_readable(demo) -> None:
    client = login("mobile-dev")
    endpoint = Endpoint.objects.get(client__name="mobile", name="home")
    for url in _history_urls("endpoint", endpoint):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("model_name", ["endpoint", "majorversion", "client"])
def test_lists_show_only_the_teams_own_client(demo, model_name: str) -> None:
    response = login("mobile-dev").get(reverse(f"admin:contracts_{model_name}_changelist"))
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert shown
    assert {obj.pk for obj in shown} == {obj.pk for obj in _rows(model_name, "mobile")}
    assert b"web/dashboard" not in response.content


def test_another_clients_major_cannot_be_deprecated(demo) -> None:
    major = MajorVersion.objects.get(endpoint__client__name="web", number=1)
    response = login("mobile-dev").post(
        reverse("admin:contracts_majorversion_deprecate", args=[major.pk]),
        {"sunset_at": "2099-01-01 00:00:00"},
    )
    assert response.status_code in (403, 404)
    major.refresh_from_db()
    assert major.deprecated_at is None


# --- the cache scope follows the data ----------------------------------------------------


@pytest.mark.parametrize(("client", "name"), [("mobile", "home"), ("web", "dashboard")])
def test_a_per_user_endpoint_cannot_be_made_shared_in_the_admin(demo, client, name) -> None:
    endpoint = Endpoint.objects.get(client__name=client, name=name)
    response = login("release-manager").post(
        reverse("admin:contracts_endpoint_change", args=[endpoint.pk]),
        {"description": endpoint.description, "cache_scope": "shared",
         "cache_ttl_seconds": "3600", "cache_jitter_percent": "10",
         "cache_stale_grace_seconds": "300"},
    )  # fmt: skip
    assert response.status_code == 200  # the form again, with the error
    assert "never shared between users" in str(response.context["adminform"].form.errors)
    endpoint.refresh_from_db()
    assert endpoint.cache_scope == CacheScope.PER_USER


def test_a_per_user_endpoint_cannot_be_made_shared_in_code(demo) -> None:
    endpoint = Endpoint.objects.get(client__name="mobile", name="home")
    endpoint.cache_scope = CacheScope.SHARED
    with pytest.raises(ValidationError, match="never shared"):
        endpoint.save()
    with pytest.raises(ValidationError, match="never shared"):
        Endpoint.objects.filter(pk=endpoint.pk).update(cache_scope=CacheScope.SHARED)
    endpoint.refresh_from_db()
    assert endpoint.cache_scope == CacheScope.PER_USER


def test_shared_data_may_still_be_shared(demo) -> None:
    endpoint = Endpoint.objects.get(client__name="partner", name="product")
    endpoint.cache_scope = CacheScope.SHARED
    endpoint.full_clean()
    endpoint.save()


def force_scope(client: str, name: str, scope: str, ttl: int = 3600) -> None:
    """Write the row as raw SQL or an old release would: past every check of the model."""
    rows = models.QuerySet(Endpoint).filter(client__name=client, name=name)
    assert rows.update(cache_scope=scope, cache_ttl_seconds=ttl) == 1
