"""The workflow rules, as every caller (admin, commands, seed) meets them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contracts import services
from contracts.models import ContractVersion, Endpoint, MajorVersion, Status
from contracts.schema import Rule


def approved_v1(endpoint: Endpoint) -> ContractVersion:
    return services.latest_approved(endpoint.majors.get(number=1))


def draft_with(
    user,
    endpoint,
    extra: list[Rule] | None = None,
    *,
    drop: str | None = None,
    new_major: bool = False,
) -> ContractVersion:
    base = approved_v1(endpoint)
    rules = [r for r in services.rules_of(base) if f"{r.section}.{r.source}" != drop]
    return services.CreateDraft(
        user, endpoint, from_version=base, rules=rules + (extra or []), new_major=new_major
    ).execute()


def test_additive_change_becomes_the_next_minor(mobile_dev, manager, mobile_home) -> None:
    draft = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    services.SubmitForReview(mobile_dev, draft).execute()
    approved = services.Approve(manager, draft, comment="ok").execute()
    assert approved.schema_version == "1.1"
    assert approved.approver == manager
    kinds = [(c["kind"], c["compatibility"]) for c in approved.diff]
    assert kinds == [("field_added", "additive")]


def test_breaking_change_in_same_major_is_refused(mobile_dev, mobile_home) -> None:
    draft = draft_with(mobile_dev, mobile_home, drop="user.avatarUrl")
    with pytest.raises(services.ActionError, match="new major"):
        services.SubmitForReview(mobile_dev, draft).execute()
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


def test_rename_is_breaking_and_allowed_as_a_new_major(mobile_dev, manager, mobile_home) -> None:
    draft = draft_with(
        mobile_dev,
        mobile_home,
        [Rule("user", "avatarUrl", "profileImageUrl")],
        drop="user.avatarUrl",
        new_major=True,
    )
    assert draft.major.number == 2
    services.SubmitForReview(mobile_dev, draft).execute()
    draft.refresh_from_db()
    assert [(c["kind"], c["compatibility"]) for c in draft.diff] == [("field_renamed", "breaking")]
    approved = services.Approve(manager, draft).execute()
    assert approved.schema_version == "2.0"
    assert approved_v1(mobile_home).schema_version == "1.0"


def test_nobody_approves_their_own_version(mobile_dev, mobile_home, demo) -> None:
    mobile_dev.groups.add(*demo.get(username="release-manager").groups.all())
    draft = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    services.SubmitForReview(mobile_dev, draft).execute()
    with pytest.raises(services.ActionError, match="authored"):
        services.Approve(mobile_dev, draft).execute()


def test_only_release_managers_approve(mobile_dev, web_dev, mobile_home) -> None:
    draft = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    services.SubmitForReview(mobile_dev, draft).execute()
    with pytest.raises(services.ActionError, match="release managers"):
        services.Approve(web_dev, draft).execute()


def test_a_team_edits_only_its_own_client(web_dev, mobile_home, mobile_dev) -> None:
    with pytest.raises(services.ActionError, match="may not edit mobile"):
        services.CreateDraft(web_dev, mobile_home).execute()
    draft = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    with pytest.raises(services.ActionError, match="your own client"):
        services.SubmitForReview(web_dev, draft).execute()


def test_unchanged_draft_cannot_be_submitted(mobile_dev, mobile_home) -> None:
    draft = draft_with(mobile_dev, mobile_home)
    with pytest.raises(services.ActionError, match="nothing changed"):
        services.SubmitForReview(mobile_dev, draft).execute()


def test_unknown_field_is_refused(mobile_dev, mobile_home) -> None:
    with pytest.raises(services.ActionError, match="avatarURL"):
        draft_with(mobile_dev, mobile_home, [Rule("user", "avatarURL")])


def test_rejection_needs_a_reason_and_frees_the_version_number(
    mobile_dev, manager, mobile_home
) -> None:
    draft = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    services.SubmitForReview(mobile_dev, draft).execute()
    with pytest.raises(services.ActionError, match="why"):
        services.Reject(manager, draft, comment="  ").execute()
    services.Reject(manager, draft, comment="not on home").execute()
    draft.refresh_from_db()
    assert (draft.status, draft.minor, draft.review_comment) == ("rejected", None, "not on home")
    second = draft_with(mobile_dev, mobile_home, [Rule("user", "phone")])
    services.SubmitForReview(mobile_dev, second).execute()
    assert services.Approve(manager, second).execute().schema_version == "1.1"


def test_approval_rechecks_against_what_was_approved_meanwhile(
    mobile_dev, manager, mobile_home
) -> None:
    first = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    second = draft_with(mobile_dev, mobile_home, [Rule("user", "phone")])
    services.SubmitForReview(mobile_dev, first).execute()
    services.SubmitForReview(mobile_dev, second).execute()
    services.Approve(manager, first).execute()
    # Approving `second` now would drop `email`, which 1.1 promised: breaking.
    with pytest.raises(services.ActionError, match="submit it again"):
        services.Approve(manager, second).execute()


def test_approved_versions_get_numbers_without_gaps(mobile_dev, manager, mobile_home) -> None:
    labels = []
    for field in ("email", "phone", "country"):
        draft = draft_with(mobile_dev, mobile_home, [Rule("user", field)])
        services.SubmitForReview(mobile_dev, draft).execute()
        labels.append(services.Approve(manager, draft).execute().schema_version)
        mobile_home.refresh_from_db()
    assert labels == ["1.1", "1.2", "1.3"]


def test_retire_and_deprecate_are_release_manager_actions(mobile_dev, manager, mobile_home) -> None:
    v1 = approved_v1(mobile_home)
    with pytest.raises(services.ActionError):
        services.Retire(mobile_dev, v1).execute()
    major = MajorVersion.objects.get(endpoint=mobile_home, number=1)
    sunset = timezone.now() + timedelta(days=30)
    with pytest.raises(services.ActionError, match="no approved successor"):
        services.DeprecateMajor(manager, major, sunset_at=sunset).execute()
    v2 = draft_with(
        mobile_dev,
        mobile_home,
        [Rule("user", "avatarUrl", "profileImageUrl")],
        drop="user.avatarUrl",
        new_major=True,
    )
    services.SubmitForReview(mobile_dev, v2).execute()
    services.Approve(manager, v2).execute()
    deprecated = services.DeprecateMajor(manager, major, sunset_at=sunset).execute()
    assert deprecated.sunset_at == sunset and deprecated.deprecated_at is not None
    services.Retire(manager, v1).execute()
    v1.refresh_from_db()
    assert v1.status == Status.RETIRED


def test_history_records_who_did_each_step(mobile_dev, manager, mobile_home) -> None:
    draft = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    services.SubmitForReview(mobile_dev, draft).execute()
    services.Approve(manager, draft).execute()
    steps = list(
        draft.history.order_by("history_date").values_list("status", "history_user__username")
    )
    assert steps == [
        ("draft", "mobile-dev"),
        ("submitted", "mobile-dev"),
        ("approved", "release-manager"),
    ]
