"""The product's settings: defaults under settings.BFF, and rebuilding on setting_changed."""

from __future__ import annotations

import pytest
from django.test import override_settings

from aggregation import cache, throttling
from aggregation.conf import DEFAULTS, Derived, bff_settings
from aggregation.downstream import services


def test_a_key_the_project_leaves_out_takes_its_default(settings) -> None:
    settings.BFF = {k: v for k, v in settings.BFF.items() if k != "COMPRESSION"}
    assert bff_settings.COMPRESSION is DEFAULTS["COMPRESSION"] is True


def test_the_project_value_wins_over_the_default(settings) -> None:
    settings.BFF = {**settings.BFF, "CACHE_KEY_PREFIX": "other"}
    assert bff_settings.CACHE_KEY_PREFIX == "other"


def test_a_secret_has_no_default() -> None:
    assert "INTERNAL_SERVICE_TOKEN" not in DEFAULTS
    assert "CLIENT_AUTH" not in DEFAULTS
    with override_settings(BFF={}), pytest.raises(AttributeError, match="CLIENT_AUTH"):
        bff_settings.CLIENT_AUTH  # noqa: B018


def test_override_settings_is_seen_and_undone() -> None:
    before = bff_settings.CACHE_KEY_PREFIX
    with override_settings(BFF={**bff_settings._load(), "CACHE_KEY_PREFIX": "inside"}):
        assert bff_settings.CACHE_KEY_PREFIX == "inside"
    after = bff_settings.CACHE_KEY_PREFIX
    assert after == before


def test_a_derived_value_is_built_once_and_again_only_when_its_keys_change(settings) -> None:
    builds: list[str] = []

    def build() -> object:
        builds.append(bff_settings.CACHE_KEY_PREFIX)
        return object()

    derived = Derived(build, "CACHE_KEY_PREFIX")
    first = derived.get()
    assert derived.get() is first
    settings.BFF = {**settings.BFF, "RATE_LIMITS": None}
    assert derived.get() is first  # another key changed
    settings.BFF = {**settings.BFF, "CACHE_KEY_PREFIX": "moved"}
    assert derived.built is None
    assert derived.get() is not first
    assert builds == ["bff", "moved"]


def test_the_process_objects_follow_the_settings(settings) -> None:
    # Another Redis than whatever the run uses (CI sets REDIS_URL); nothing connects to it.
    redis_url = "redis://127.0.0.1:1/3"
    per_user, counter, user = (
        cache.response_cache("per_user"),
        throttling._counter.get(),
        services["user"],
    )
    settings.BFF = {**settings.BFF, "REDIS_URL": redis_url}
    assert cache.response_cache("per_user").store.name == "redis"
    assert throttling._counter.get().name == "redis"
    assert services["user"] is user  # the services' settings did not change
    settings.BFF = {**settings.BFF, "SERVICES": {**settings.BFF["SERVICES"], "user": "http://u"}}
    assert services["user"].base_url == "http://u"
    del settings.BFF
    assert cache.response_cache("per_user") is not per_user
    assert throttling._counter.get() is not counter
