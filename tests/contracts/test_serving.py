"""The serving snapshot: no queries per request, the serving rule, and staying up."""

from __future__ import annotations

import time

import pytest
from django.db import OperationalError

from contract_core.schema import EndpointSpec, Rule
from contracts import services
from contracts.serving import Registry, Snapshot, load_snapshot, registry
from tests.live import LiveBFF, base_env, manage


def test_lookup_makes_no_database_query(demo, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        for _ in range(100):
            contract = registry.get("mobile", "home", 1)
    assert contract.schema_version == "1.0"
    assert contract.plan is not None
    assert contract.cache_scope == "per_user"


def test_unknown_major_or_endpoint_serves_nothing(demo) -> None:
    assert registry.get("mobile", "home", 7) is None
    assert registry.get("mobile", "nope", 1) is None


def test_highest_approved_version_is_served(
    demo, mobile_dev, manager, mobile_home, django_capture_on_commit_callbacks
) -> None:
    base = services.latest_approved(mobile_home.majors.get(number=1))
    draft = services.CreateDraft(
        mobile_dev,
        mobile_home,
        from_version=base,
        rules=[*services.rules_of(base), Rule("user", "email")],
    ).execute()
    services.SubmitForReview(mobile_dev, draft).execute()
    with django_capture_on_commit_callbacks(execute=True):
        services.Approve(manager, draft).execute()
    assert registry.get("mobile", "home", 1).schema_version == "1.1"
    proposal = services.ProposeRetirement(manager, draft).execute()
    with django_capture_on_commit_callbacks(execute=True):
        services.ConfirmProposal(demo.get(username="admin"), proposal).execute()
    assert registry.get("mobile", "home", 1).schema_version == "1.0"


def _without_field(spec: EndpointSpec, section: str, field: str) -> EndpointSpec:
    from dataclasses import replace

    from contract_core.schema import Obj

    sections = tuple(
        replace(s, source=Obj(tuple((n, f) for n, f in s.source.fields if n != field)))
        if s.name == section
        else s
        for s in spec.sections
    )
    return replace(spec, sections=sections)


CODE_WITHOUT_EMAIL = None


def test_version_the_code_cannot_produce_is_not_served(
    demo, mobile_dev, manager, mobile_home, settings
) -> None:
    """1.1 needs user.email; code that no longer declares it serves 1.0 instead."""
    global CODE_WITHOUT_EMAIL
    from aggregation.endpoints import ENDPOINTS

    base = services.latest_approved(mobile_home.majors.get(number=1))
    draft = services.CreateDraft(
        mobile_dev,
        mobile_home,
        from_version=base,
        rules=[*services.rules_of(base), Rule("user", "email")],
    ).execute()
    services.SubmitForReview(mobile_dev, draft).execute()
    services.Approve(manager, draft).execute()
    CODE_WITHOUT_EMAIL = {
        **ENDPOINTS,
        ("mobile", "home"): _without_field(ENDPOINTS[("mobile", "home")], "user", "email"),
    }
    settings.BFF = {
        **settings.BFF,
        "ENDPOINTS": "tests.contracts.test_serving.CODE_WITHOUT_EMAIL",
    }
    snapshot = load_snapshot()
    state = snapshot.majors[("mobile", "home", 1)]
    assert state.serving.schema_version == "1.0"
    assert state.approved == ("1.1", "1.0")


def test_failed_reload_keeps_the_last_good_snapshot() -> None:
    good = Snapshot(generation=3)
    outcomes = iter([good])

    def loader() -> Snapshot:
        try:
            return next(outcomes)
        except StopIteration:
            raise OperationalError("could not connect to server") from None

    own = Registry(loader=loader)
    assert own.refresh() is good
    assert own.refresh() is good
    assert own.snapshot is good
    assert "could not connect" in own.last_error


@pytest.mark.parametrize("shared_cache", [True, False], ids=["redis", "database-poll"])
def test_approval_reaches_another_process_within_a_second(
    tmp_path, redis_url, shared_cache
) -> None:
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    if shared_cache:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    assert manage("migrate", "--noinput", env=env).returncode == 0
    assert manage("seed_demo", env=env).returncode == 0
    with LiveBFF(env, migrate=False) as bff:
        import httpx

        def serving() -> str:
            body = httpx.get(f"{bff.url}/readyz", timeout=2).json()
            return body["checks"]["contracts"]["serving"]["mobile/home/v1"]

        deadline = time.monotonic() + 10
        while serving() != "1.0" and time.monotonic() < deadline:
            time.sleep(0.05)
        approve = (
            "from contracts import services; from contracts.models import ContractVersion; "
            "from django.contrib.auth import get_user_model; "
            "v = ContractVersion.objects.get(status='submitted'); "
            "manager = get_user_model().objects.get(username='release-manager'); "
            "services.Approve(manager, v).execute()"
        )
        result = manage("shell", "-c", approve, env=env)
        assert result.returncode == 0, result.stderr
        approved_at = time.monotonic()
        while serving() != "1.1" and time.monotonic() - approved_at < 5:
            time.sleep(0.02)
        assert serving() == "1.1"
        assert time.monotonic() - approved_at < 1.0


def test_approval_reaches_another_process_while_redis_is_down(tmp_path, redis_node) -> None:
    """The cache poll failing must not stop the database poll (the fallback)."""
    import httpx

    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'registry.sqlite3'}", REDIS_URL=redis_node.url
    )
    assert manage("migrate", "--noinput", env=env).returncode == 0
    assert manage("seed_demo", env=env).returncode == 0
    with LiveBFF(env, migrate=False) as bff:

        def serving() -> str:
            # The OpenAPI document is built from the snapshot: it names the served minor.
            response = httpx.get(f"{bff.url}/mobile/v1/openapi.json", timeout=2)
            return response.json()["info"]["version"] if response.status_code == 200 else ""

        deadline = time.monotonic() + 10
        while serving() != "home 1.0" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert serving() == "home 1.0"
        redis_node.stop()
        approve = (
            "from contracts import services; from contracts.models import ContractVersion; "
            "from django.contrib.auth import get_user_model; "
            "v = ContractVersion.objects.get(status='submitted'); "
            "manager = get_user_model().objects.get(username='release-manager'); "
            "services.Approve(manager, v).execute()"
        )
        result = manage("shell", "-c", approve, env=env)
        assert result.returncode == 0, result.stderr
        # The acceptance bound (5 s); the database poll runs every DB_POLL_SECONDS.
        approved_at = time.monotonic()
        while serving() != "home 1.1" and time.monotonic() - approved_at < 5:
            time.sleep(0.05)
        assert serving() == "home 1.1"
        # Still in rotation: the cache's outage is reported, not a reason to be unready.
        assert httpx.get(f"{bff.url}/readyz", timeout=5).status_code == 200
