"""The deploy gate: contracts check, check --deploy and /readyz agree, and propose fixes it."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from contracts import checks, services
from contracts.models import ContractVersion, Status
from contracts.serving import registry

DOUBLES = "tests.contracts.code_doubles"


def contracts(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("contracts", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def deploy_check_ids() -> set[str]:
    try:
        call_command("check", "--deploy", "--tag", "contracts", stdout=StringIO(),
                     stderr=StringIO())  # fmt: skip
    except SystemCheckError as exc:
        return {line.split(":")[1].strip().split(")")[0].lstrip("(")
                for line in str(exc).splitlines() if "contracts.E" in line}  # fmt: skip
    return set()


def code(settings, double: str) -> None:
    settings.BFF = {**settings.BFF, "ENDPOINTS": f"{DOUBLES}.{double}"}
    registry.refresh()


def approve_pending(django_capture_on_commit_callbacks) -> ContractVersion:
    version = ContractVersion.objects.get(
        status=Status.SUBMITTED, author__username=services.BOT_USERNAME
    )
    manager = get_user_model().objects.get(username="release-manager")
    with django_capture_on_commit_callbacks(execute=True):
        return services.Approve(manager, version, comment="gate test").execute()


def test_the_seeded_registry_passes_all_three(demo) -> None:
    assert contracts("check") == (0, "contracts check: every contract this code serves is "
                                     "approved.\n")  # fmt: skip
    assert deploy_check_ids() == set()
    assert Client().get("/readyz").status_code == 200


def test_an_unapproved_additive_change_blocks_and_propose_unblocks(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    code(settings, "ADDITIVE")
    status, output = contracts("check")
    assert status == 1
    assert "mobile/home v1" in output
    assert "additive  user.avatarUrl" in output and "became_non_nullable" in output
    assert "python manage.py contracts propose mobile home --major 1" in output
    assert deploy_check_ids() == {checks.E001}
    ready = Client().get("/readyz")
    assert ready.status_code == 503
    assert "mobile/home/v1" in ready.json()["checks"]["contracts"]["unserveable"]

    out = StringIO()
    call_command("contracts", "propose", "mobile", "home", stdout=out)
    assert "proposed mobile/home v1" in out.getvalue()
    approved = approve_pending(django_capture_on_commit_callbacks)
    assert approved.schema_version == "1.1"

    assert contracts("check")[0] == 0
    assert deploy_check_ids() == set()
    registry.refresh()
    assert Client().get("/readyz").status_code == 200
    assert registry.get("mobile", "home", 1).schema_version == "1.1"


def test_a_breaking_change_must_be_proposed_as_a_new_major(demo, settings) -> None:
    code(settings, "BREAKING")
    status, output = contracts("check")
    assert status == 1
    assert "breaking  user.displayName" in output
    assert "contracts propose mobile home --major 2" in output
    with pytest.raises(CommandError, match="--major 2"):
        call_command("contracts", "propose", "mobile", "home", stdout=StringIO())
    out = StringIO()
    call_command("contracts", "propose", "mobile", "home", "--major", "2", stdout=out)
    # A new major takes its number (2) when its first version is approved.
    proposal = ContractVersion.objects.get(status=Status.SUBMITTED, major__number=None)
    assert proposal.major.endpoint.name == "home"
    assert services.next_label(proposal) == "2.0"


def test_a_rule_naming_a_field_the_code_dropped_is_an_error(demo, settings) -> None:
    code(settings, "RENAMED_UPSTREAM")
    status, output = contracts("check")
    assert status == 1
    assert "no longer provides" in output and "avatarUrl" in output
    assert deploy_check_ids() == {checks.E003}


def test_an_endpoint_without_a_contract_is_an_error(demo, settings) -> None:
    code(settings, "NEW_ENDPOINT")
    status, output = contracts("check", "--format", "json")
    assert status == 1
    findings = json.loads(output)["findings"]
    assert [(f["contract"], f["kind"]) for f in findings] == [
        ("mobile/profile", "no_registry_entry")
    ]
    assert findings[0]["propose"] == "python manage.py contracts propose mobile profile"
    assert deploy_check_ids() == {checks.E002}
    out = StringIO()
    call_command("contracts", "propose", "mobile", "profile", stdout=out)
    assert "no fields yet" in out.getvalue()


def test_json_output_lists_the_classified_changes(demo, settings) -> None:
    code(settings, "ADDITIVE")
    status, output = contracts("check", "--format", "json")
    document = json.loads(output)
    assert status == 1 and document["ok"] is False
    finding = document["findings"][0]
    assert finding["compatibility"] == "additive"
    assert finding["closestApproved"] == "1.0"
    assert [c["kind"] for c in finding["changes"]] == ["became_non_nullable"]
    assert len(finding["changes"][0]["fingerprint"]) == 64


def test_propose_with_nothing_to_propose_says_so(demo) -> None:
    with pytest.raises(CommandError, match="nothing to propose"):
        call_command("contracts", "propose", "mobile", "home", stdout=StringIO())


@pytest.mark.parametrize(("args", "message"), [
    (("mobile", "nope"), "declares no endpoint"),
    (("mobile", "home", "--major", "7"), "--major must be between 1 and 2"),
    (("mobile", "home", "--major", "0"), "--major must be between"),
])  # fmt: skip
def test_propose_rejects_bad_arguments_clearly(demo, args, message) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("contracts", "propose", *args, stdout=StringIO())
