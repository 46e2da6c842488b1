"""The workflow rules, as every caller (admin, commands, seed) meets them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contract_core.schema import Rule
from contracts import services
from contracts.models import ContractVersion, Endpoint, MajorVersion, Status


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
    assert draft.major.number is None  # provisional until its first approval
    services.SubmitForReview(mobile_dev, draft).execute()
    draft.refresh_from_db()
    assert [(c["kind"], c["compatibility"]) for c in draft.diff] == [("field_renamed", "breaking")]
    approved = services.Approve(manager, draft).execute()
    assert approved.major.number == 2
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


def test_retire_and_deprecate_are_proposals_confirmed_by_another_release_manager(
    mobile_dev, manager, demo, mobile_home
) -> None:
    admin = demo.get(username="admin")
    v1 = approved_v1(mobile_home)
    with pytest.raises(services.ActionError, match="release managers"):
        services.ProposeRetirement(mobile_dev, v1).execute()
    major = MajorVersion.objects.get(endpoint=mobile_home, number=1)
    sunset = timezone.now() + timedelta(days=31)
    with pytest.raises(services.ActionError, match="no approved successor"):
        services.ProposeDeprecation(manager, major, sunset_at=sunset).execute()
    v2 = draft_with(
        mobile_dev,
        mobile_home,
        [Rule("user", "avatarUrl", "profileImageUrl")],
        drop="user.avatarUrl",
        new_major=True,
    )
    services.SubmitForReview(mobile_dev, v2).execute()
    services.Approve(manager, v2).execute()
    proposal = services.ProposeDeprecation(manager, major, sunset_at=sunset).execute()
    major.refresh_from_db()
    assert major.deprecated_at is None  # nothing changes until it is confirmed
    with pytest.raises(services.ActionError, match="other than the proposer"):
        services.ConfirmProposal(manager, proposal).execute()
    services.ConfirmProposal(admin, proposal).execute()
    major.refresh_from_db()
    assert major.sunset_at == sunset and major.deprecated_at is not None
    retirement = services.ProposeRetirement(manager, v1).execute()
    assert retirement.effect.startswith("v1 will have no servable version")
    services.ConfirmProposal(admin, retirement).execute()
    v1.refresh_from_db()
    assert v1.status == Status.RETIRED
    record = v1.history.latest("history_date")
    assert record.history_user == admin
    reason = "retired: proposed by release-manager, confirmed by admin"
    assert record.history_change_reason == reason


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


def test_the_workflow_table_decides_what_each_role_may_do(mobile_dev, manager, mobile_home):
    draft = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    assert services.allowed_actions(mobile_dev, draft) == {"submit", "update_from_base", "delete"}
    assert services.allowed_actions(manager, draft) == set()
    draft = services.SubmitForReview(mobile_dev, draft).execute()
    assert services.allowed_actions(mobile_dev, draft) == {"withdraw", "update_from_base"}
    assert services.allowed_actions(manager, draft) == {"approve", "reject", "request_changes"}


def test_a_sunset_must_be_in_the_future_with_the_minimum_notice(
    mobile_dev, manager, mobile_home, settings
) -> None:
    v2 = draft_with(mobile_dev, mobile_home, [Rule("user", "avatarUrl", "imageUrl")],
                    drop="user.avatarUrl", new_major=True)  # fmt: skip
    services.SubmitForReview(mobile_dev, v2).execute()
    services.Approve(manager, v2).execute()
    major = mobile_home.majors.get(number=1)
    settings.REGISTRY_MIN_SUNSET_NOTICE_DAYS = 30
    now = timezone.now()
    with pytest.raises(services.ActionError, match="in the future"):
        services.ProposeDeprecation(manager, major, sunset_at=now - timedelta(days=1)).execute()
    with pytest.raises(services.ActionError, match="at least 30 days' notice"):
        services.ProposeDeprecation(manager, major, sunset_at=now + timedelta(days=29)).execute()
    proposal = services.ProposeDeprecation(manager, major, sunset_at=now + timedelta(days=31))
    assert "will answer 410" in proposal.execute().effect


def test_an_empty_contract_is_refused_at_submission_and_at_approval(
    mobile_dev, manager, mobile_home
) -> None:
    draft = services.CreateDraft(mobile_dev, mobile_home, new_major=True, rules=[]).execute()
    with pytest.raises(services.ActionError, match="empty contract"):
        services.SubmitForReview(mobile_dev, draft).execute()
    # However a rule-less version reached the queue, approval refuses it too.
    ContractVersion.objects.filter(pk=draft.pk).update(status=Status.SUBMITTED)
    draft.refresh_from_db()
    with pytest.raises(services.ActionError, match="empty contract"):
        services.Approve(manager, draft).execute()


def test_an_abandoned_major_draft_consumes_no_major_number(mobile_dev, manager, mobile_home):
    rules = [Rule("user", "avatarUrl", "imageUrl")]
    abandoned = draft_with(mobile_dev, mobile_home, rules, drop="user.avatarUrl", new_major=True)
    services.DeleteDraft(mobile_dev, abandoned).execute()
    assert not MajorVersion.objects.filter(endpoint=mobile_home, number=None).exists()
    kept = draft_with(mobile_dev, mobile_home, rules, drop="user.avatarUrl", new_major=True)
    services.SubmitForReview(mobile_dev, kept).execute()
    assert services.next_label(kept) == "2.0"
    assert services.Approve(manager, kept).execute().schema_version == "2.0"


def test_withdraw_and_request_changes_return_a_submission_to_draft(
    mobile_dev, manager, mobile_home
) -> None:
    draft = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    services.SubmitForReview(mobile_dev, draft).execute()
    with pytest.raises(services.ActionError, match="release managers"):
        services.RequestChanges(mobile_dev, draft, comment="x").execute()
    services.Withdraw(mobile_dev, draft).execute()
    draft.refresh_from_db()
    assert (draft.status, draft.fingerprint) == (Status.DRAFT, "")
    services.SubmitForReview(mobile_dev, draft).execute()
    with pytest.raises(services.ActionError, match="which changes"):
        services.RequestChanges(manager, draft, comment=" ").execute()
    services.RequestChanges(manager, draft, comment="Call it contactEmail").execute()
    draft.refresh_from_db()
    assert (draft.status, draft.review_comment) == (Status.DRAFT, "Call it contactEmail")
    assert draft.history.latest("history_date").history_user == manager


def test_a_submission_is_updated_from_a_base_approved_meanwhile(
    mobile_dev, manager, mobile_home
) -> None:
    first = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    second = draft_with(mobile_dev, mobile_home, [Rule("user", "phone")])
    services.SubmitForReview(mobile_dev, first).execute()
    submit = services.SubmitForReview(mobile_dev, second)
    submit.execute()
    assert any("also open on the same base" in w for w in submit.warnings)
    services.Approve(manager, first).execute()
    services.UpdateFromBase(mobile_dev, second).execute()
    second.refresh_from_db()
    assert second.status == Status.DRAFT and second.based_on == first
    assert {"email", "phone"} <= {r.source for r in services.rules_of(second)}
    services.SubmitForReview(mobile_dev, second).execute()
    assert services.Approve(manager, second).execute().schema_version == "1.2"


def test_an_identical_submission_is_flagged(mobile_dev, mobile_home) -> None:
    one = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    two = draft_with(mobile_dev, mobile_home, [Rule("user", "email")])
    services.SubmitForReview(mobile_dev, one).execute()
    submit = services.SubmitForReview(mobile_dev, two)
    submit.execute()
    assert any("identical submission already waits" in w for w in submit.warnings)


def test_retiring_the_served_minor_shows_what_clients_lose(demo, mobile_dev, manager, mobile_home):
    draft = draft_with(mobile_dev, mobile_home, [Rule("user", "firstName")])
    services.SubmitForReview(mobile_dev, draft).execute()
    v11 = services.Approve(manager, draft).execute()
    proposal = services.ProposeRetirement(manager, v11).execute()
    assert proposal.effect == "v1 will be served as 1.0: `user.firstName` 'firstName' removed"
    v11.refresh_from_db()
    assert v11.status == Status.APPROVED  # nothing happens before a second release manager
    services.DeclineProposal(demo.get(username="admin"), proposal, comment="Still used").execute()
    proposal.refresh_from_db()
    assert (proposal.status, proposal.reviewer.username) == ("declined", "admin")


def test_internal_fields_reach_a_partner_only_with_an_override_reason(demo, manager) -> None:
    partner_dev = demo.get(username="partner-dev")
    product = Endpoint.objects.get(client__name="partner", name="product")
    base = services.latest_approved(product.majors.get(number=2))
    draft = services.CreateDraft(partner_dev, product, from_version=base,
                                 rules=[*services.rules_of(base), Rule("product", "costPrice")],
                                 ).execute()  # fmt: skip
    services.SubmitForReview(partner_dev, draft).execute()
    with pytest.raises(services.ActionError, match=r"product\.costPrice is internal"):
        services.Approve(manager, draft).execute()
    approved = services.Approve(manager, draft, internal_override="Contract with ACME").execute()
    assert approved.internal_override == "Contract with ACME"
    record = approved.history.latest("history_date")
    assert (record.internal_override, record.history_user) == ("Contract with ACME", manager)
