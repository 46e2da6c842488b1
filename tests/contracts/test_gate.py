"""The deploy gate: contracts check, check --deploy and /readyz agree, and propose fixes it."""

from __future__ import annotations

import json
import re
import shlex
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from contracts import checks, services
from contracts.models import ContractVersion, Status
from contracts.serving import registry
from tests.contracts import code_doubles

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


def run_printed(command: str) -> str:
    """Run a command exactly as the gate printed it (after ``python manage.py``)."""
    words = shlex.split(command)
    assert words[:3] == ["python", "manage.py", "contracts"], command
    out = StringIO()
    call_command("contracts", *words[3:], stdout=out)
    return out.getvalue()


def printed_commands(output: str) -> list[str]:
    return re.findall(r"(python manage\.py contracts propose [^\n]+)", output)


def test_a_renamed_source_field_is_remapped_in_the_same_major(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    code(settings, "RENAMED_UPSTREAM")
    status, output = contracts("check")
    assert status == 1
    assert "no longer provides" in output and "avatarUrl" in output
    assert "compared with the approved v1.0:" in output
    assert "breaking  user.avatarUrl: field 'avatarUrl' removed [field_removed]" in output
    remap = "python manage.py contracts propose mobile home --major 1 --remap " \
        "user.avatarUrl=profileImageUrl"  # fmt: skip
    assert printed_commands(output) == [remap]
    assert deploy_check_ids() == {checks.E003}
    document = json.loads(contracts("check", "--format", "json")[1])
    finding = document["findings"][0]
    assert (finding["kind"], finding["compatibility"]) == ("rule_not_in_code", "breaking")
    assert finding["remaps"] == [{"rule": "user.avatarUrl", "source": "profileImageUrl"}]
    assert finding["propose"] == remap

    proposed = run_printed(remap)
    assert "additive  user.avatarUrl: now fed from `profileImageUrl` instead of `avatarUrl`" \
        in proposed  # fmt: skip
    approved = approve_pending(django_capture_on_commit_callbacks)
    assert approved.schema_version == "1.1"
    assert [c["kind"] for c in approved.diff] == ["remap"]
    assert contracts("check")[0] == 0
    assert deploy_check_ids() == set()
    assert list(approved.major.endpoint.majors.values_list("number", flat=True)) == [1]
    registry.refresh()
    assert registry.get("mobile", "home", 1).schema_version == "1.1"


def test_expand_then_remap_needs_no_deploy_between(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    code(settings, "EXPANDED")  # both names declared: no contract changes
    assert contracts("check")[0] == 0
    run_printed("python manage.py contracts propose mobile home --major 1 "
                "--remap user.avatarUrl=profileImageUrl")  # fmt: skip
    approve_pending(django_capture_on_commit_callbacks)
    assert contracts("check")[0] == 0
    registry.refresh()
    assert registry.get("mobile", "home", 1).schema_version == "1.1"
    code(settings, "RENAMED_UPSTREAM")  # contract: the old name is gone from the code
    assert contracts("check")[0] == 0


def test_propose_refuses_a_remap_it_cannot_apply(demo, settings) -> None:
    code(settings, "RENAMED_UPSTREAM")
    for remap, message in [
        ("user.avatarUrl", "is not SECTION.SOURCE=NEW_SOURCE"),
        ("user.nope=profileImageUrl", "no rule of v1.0 reads user.nope"),
        ("user.avatarUrl=nope", "cannot remap to user.nope: user has no field 'nope'"),
        ("user.avatarUrl=fraudScore", "breaking changes cannot go into v1|breaks v1"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("contracts", "propose", "mobile", "home", "--remap", remap,
                         stdout=StringIO())  # fmt: skip


@pytest.mark.parametrize("name", sorted(code_doubles.CORPUS))
def test_each_source_edit_is_classified_and_its_proposal_works_as_printed(
    demo, settings, name
) -> None:
    _, kinds, major = code_doubles.CORPUS[name]
    code(settings, f"CORPUS_{name}")
    status, output = contracts("check", "--format", "json")
    findings = json.loads(output)["findings"]
    if major is None:
        assert (status, findings) == (0, [])
        return
    assert status == 1
    [finding] = findings
    assert {c["kind"] for c in finding["changes"]} == kinds
    breaking = any(c["compatibility"] == "breaking" for c in finding["changes"])
    assert finding["compatibility"] == ("breaking" if breaking else "additive")
    if name == "renamed":
        assert finding["remaps"] == [{"rule": "user.avatarUrl", "source": "profileImageUrl"}]
        assert finding["propose"].endswith("--major 1 --remap user.avatarUrl=profileImageUrl")
    else:
        assert finding["remaps"] == []
        assert finding["propose"].endswith(f"--major {major}")
        assert ("--major 2" in finding["propose"]) == breaking
    assert "proposed " in run_printed(finding["propose"])
    proposal = ContractVersion.objects.get(
        status=Status.SUBMITTED, author__username="contracts-bot"
    )
    # A new major takes its number on approval; until then the proposal opens one.
    if major == 1:
        assert proposal.major.number == 1
    else:
        assert proposal.major.number is None
        assert not proposal.major.endpoint.majors.filter(number=major).exists()


def test_a_breaking_finding_under_a_major_this_code_serves_asks_to_keep_it_servable(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    code(settings, "CORPUS_vanished_without_replacement")
    run_printed(printed_commands(contracts("check")[1])[0])  # proposes v2
    approve_pending(django_capture_on_commit_callbacks)
    status, output = contracts("check")
    assert status == 1  # v1 is still live, and this code cannot serve it
    assert printed_commands(output) == []
    assert "v2 already matches this code" in output and "keep v1 servable" in output
    [finding] = json.loads(contracts("check", "--format", "json")[1])["findings"]
    assert (finding["contract"], finding["propose"]) == ("mobile/home v1", None)


def test_code_serving_only_an_older_minor_is_blocked(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    # v1.1 makes avatarUrl never null; code that declares it nullable again still
    # produces v1.0, which an instance could serve. The gate wants the newest minor.
    code(settings, "ADDITIVE")
    run_printed("python manage.py contracts propose mobile home --major 1")
    approve_pending(django_capture_on_commit_callbacks)
    code(settings, "CORPUS_comments_only")
    assert registry.get("mobile", "home", 1).schema_version == "1.0"
    status, output = contracts("check")
    assert status == 1
    assert "it would only serve the older v1.0" in output
    assert "breaking  user.avatarUrl: may now be null [became_nullable]" in output
    assert printed_commands(output) == ["python manage.py contracts propose mobile home --major 2"]
    assert deploy_check_ids() == {checks.E001}


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


def test_an_endpoint_dropped_from_the_code_while_its_contract_is_live_blocks(
    demo, settings
) -> None:
    code(settings, "WITHOUT_WEB_DASHBOARD")
    status, output = contracts("check", "--format", "json")
    assert status == 1
    [finding] = json.loads(output)["findings"]
    assert (finding["contract"], finding["kind"]) == ("web/dashboard v1", "endpoint_not_in_code")
    assert finding["propose"] is None
    assert "deprecate this major with a sunset date" in finding["hint"]
    assert "propose" not in contracts("check")[1]
    assert deploy_check_ids() == {checks.E005}


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
