"""Model-layer guarantees: constraints hold and approved versions cannot change."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from contracts.models import (
    ContractVersion,
    Endpoint,
    FieldRule,
    ImmutableVersionError,
    MajorVersion,
    Status,
)


@pytest.fixture
def approved(mobile_home) -> ContractVersion:
    return ContractVersion.objects.get(major__endpoint=mobile_home, status=Status.APPROVED)


def test_approved_version_cannot_be_saved_with_changes(approved) -> None:
    approved.review_comment = "sneaky edit"
    with pytest.raises(ImmutableVersionError):
        approved.save()


def test_approved_version_cannot_be_deleted(approved) -> None:
    with pytest.raises(ImmutableVersionError):
        approved.delete()


def test_bulk_update_of_approved_versions_is_refused(approved) -> None:
    with pytest.raises(ImmutableVersionError):
        ContractVersion.objects.filter(pk=approved.pk).update(fingerprint="0" * 64)
    with pytest.raises(ImmutableVersionError):
        ContractVersion.objects.all().delete()


def test_rules_of_an_approved_version_cannot_change(approved) -> None:
    rule = approved.rules.get(section="user", source_path="avatarUrl")
    rule.output_name = "profileImageUrl"
    with pytest.raises(ImmutableVersionError):
        rule.save()
    with pytest.raises(ImmutableVersionError):
        rule.delete()
    with pytest.raises(ImmutableVersionError):
        approved.rules.update(output_name="x")
    with pytest.raises(ImmutableVersionError):
        FieldRule.objects.bulk_create(
            [FieldRule(version=approved, section="user", source_path="email", output_name="email")]
        )
    with pytest.raises(ImmutableVersionError):
        FieldRule.objects.create(version=approved, section="user", source_path="email")


def test_retiring_is_the_only_change_an_approved_version_allows(approved) -> None:
    approved.status = Status.RETIRED
    approved.save()
    approved.refresh_from_db()
    assert approved.status == Status.RETIRED
    approved.status = Status.APPROVED
    with pytest.raises(ImmutableVersionError):
        approved.save()


def test_one_version_number_per_major(approved, mobile_dev) -> None:
    clash = ContractVersion(
        major=approved.major,
        minor=approved.minor,
        status=Status.APPROVED,
        author=mobile_dev,
        approver=approved.approver,
        fingerprint="f" * 64,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        clash.save()


def test_database_refuses_an_author_approving_their_own_version(approved, mobile_dev) -> None:
    own = ContractVersion(
        major=approved.major,
        minor=99,
        status=Status.APPROVED,
        author=mobile_dev,
        approver=mobile_dev,
        fingerprint="f" * 64,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        own.save()


def test_approved_version_must_carry_number_approver_and_fingerprint(approved, mobile_dev) -> None:
    incomplete = ContractVersion(
        major=approved.major, minor=5, status=Status.APPROVED, author=mobile_dev
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        incomplete.save()


def test_drafts_take_no_version_number(approved, mobile_dev) -> None:
    numbered = ContractVersion(
        major=approved.major, minor=7, status=Status.DRAFT, author=mobile_dev
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        numbered.save()


def test_no_two_rules_with_one_output_name_in_a_section(approved, mobile_dev) -> None:
    draft = ContractVersion.objects.create(major=approved.major, author=mobile_dev)
    FieldRule.objects.create(version=draft, section="user", source_path="avatarUrl")
    with pytest.raises(IntegrityError), transaction.atomic():
        FieldRule.objects.create(
            version=draft, section="user", source_path="firstName", output_name="avatarUrl"
        )


def test_output_name_defaults_to_the_source_path(approved, mobile_dev) -> None:
    draft = ContractVersion.objects.create(major=approved.major, author=mobile_dev)
    rule = FieldRule.objects.create(version=draft, section="user", source_path="address.city")
    assert rule.output_name == "address.city"


def test_major_numbers_are_unique_and_positive(mobile_home) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        MajorVersion.objects.create(endpoint=mobile_home, number=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        MajorVersion.objects.create(endpoint=mobile_home, number=0)


def test_sunset_needs_a_deprecation(mobile_home) -> None:
    from django.utils import timezone

    with pytest.raises(IntegrityError), transaction.atomic():
        MajorVersion.objects.create(endpoint=mobile_home, number=9, sunset_at=timezone.now())


def test_cache_policy_ranges_are_enforced_by_the_database(mobile_home) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Endpoint.objects.filter(pk=mobile_home.pk).update(cache_ttl_seconds=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Endpoint.objects.filter(pk=mobile_home.pk).update(cache_jitter_percent=90)


def test_every_change_is_in_the_history(approved) -> None:
    records = list(approved.history.order_by("history_date").values_list("status", "history_user"))
    assert [status for status, _ in records] == ["draft", "submitted", "approved"]
    assert FieldRule.history.filter(version_id=approved.pk).count() == approved.rules.count()
