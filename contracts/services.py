"""The registry's write operations, each a ``check()`` then an ``execute()``.

The admin, the management commands, the demo seed and the tests all change the registry
through these actions, so a rule enforced here holds everywhere. ``check()`` raises
``ActionError`` with a message fit for a form; ``execute()`` re-checks inside the
transaction, with the rows locked, before writing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from contract_core.clients import EXTERNAL_CLIENTS
from contract_core.differ import Change, Compatibility, classify, diff
from contract_core.paths import RuleError, resolve, sensitivity, type_label
from contract_core.schema import INTERNAL, EndpointSpec, Rule
from contract_core.shapes import build_shape, fingerprint
from contracts import roles
from contracts.codebase import code_endpoint
from contracts.models import (
    WORKFLOW,
    ContractVersion,
    Endpoint,
    FieldRule,
    LifecycleProposal,
    MajorVersion,
    ProposalKind,
    ProposalStatus,
    RegistryState,
    Role,
    Status,
    rules_of,
)
from contracts.usage import Usage, usage_of

logger = logging.getLogger(__name__)


class ActionError(Exception):
    """The action is not allowed or not valid; the message says why, for the user."""


# --- Who may do what -----------------------------------------------------------------


def _in_group(user: AbstractBaseUser, name: str) -> bool:
    return user.groups.filter(name=name).exists()


def can_edit_client(user: AbstractBaseUser, client: str) -> bool:
    return bool(
        user.is_active and (user.is_superuser or _in_group(user, roles.frontend_team(client)))
    )


def editable_clients(user: AbstractBaseUser) -> list[str]:
    if user.is_superuser:
        return list(roles.FRONTEND_TEAMS)
    names = set(user.groups.values_list("name", flat=True))
    return [client for client, group in roles.FRONTEND_TEAMS.items() if group in names]


def is_release_manager(user: AbstractBaseUser) -> bool:
    return bool(user.is_active and (user.is_superuser or _in_group(user, roles.RELEASE_MANAGERS)))


def _has_role(user: AbstractBaseUser, role: str, version: ContractVersion) -> bool:
    if role == Role.RELEASE_MANAGER:
        return is_release_manager(user)
    return can_edit_client(user, version.major.endpoint.client.name)


def allowed_actions(user: AbstractBaseUser, version: ContractVersion) -> set[str]:
    """The workflow steps ``user`` may take on ``version`` now (``WORKFLOW``, plus the one
    rule the table cannot say: nobody approves what they authored)."""
    allowed = {
        name
        for name, step in WORKFLOW.items()
        if version.status in step.sources and _has_role(user, step.role, version)
    }
    if version.author_id == user.pk:
        allowed.discard("approve")
    return allowed


def require_step(user: AbstractBaseUser, version: ContractVersion, action: str) -> None:
    """ActionError unless the workflow table lets ``user`` take ``action`` on ``version``."""
    step = WORKFLOW[action]
    if version.status not in step.sources:
        allowed = " or ".join(str(s) for s in step.sources)
        raise ActionError(
            f"only {allowed} versions allow “{step.label}”; this one is {version.status}"
        )
    if not _has_role(user, step.role, version):
        if step.role == Role.RELEASE_MANAGER:
            raise ActionError(f"only release managers may “{step.label.lower()}”")
        raise ActionError(
            f"only the {version.major.endpoint.client.name} frontend team may "
            f"“{step.label.lower()}”: you may change your own client's contracts only"
        )


# --- Reading the registry --------------------------------------------------------------


def spec_for(endpoint: Endpoint) -> EndpointSpec:
    spec = code_endpoint(endpoint.client.name, endpoint.name)
    if spec is None:
        raise ActionError(f"this code declares no endpoint {endpoint}")
    return spec


def code_shape(endpoint: Endpoint, rules: Iterable[Rule]) -> dict:
    """The shape this code produces for ``rules``; ActionError if a rule is invalid."""
    return code_shape_for(spec_for(endpoint), rules)


def latest_approved(major: MajorVersion) -> ContractVersion | None:
    return major.versions.filter(status=Status.APPROVED).order_by("-minor").first()


def baseline_for(version: ContractVersion) -> ContractVersion | None:
    """The version a proposal is compared with: the newest approved one of its major,
    else the newest approved one of the highest earlier major (every numbered major is
    earlier than a provisional one)."""
    same_major = latest_approved(version.major)
    if same_major is not None:
        return same_major
    earlier = ContractVersion.objects.filter(
        major__endpoint=version.major.endpoint, status__in=(Status.APPROVED, Status.RETIRED)
    )
    if version.major.number is not None:
        earlier = earlier.filter(major__number__lt=version.major.number)
    return earlier.order_by("-major__number", "-minor").first()


def next_label(version: ContractVersion) -> str:
    """The number a submitted version will get if it is approved now."""
    major = version.major
    number = major.number
    if number is None:
        number = (major.endpoint.majors.aggregate(n=Max("number"))["n"] or 0) + 1
    highest = major.versions.aggregate(n=Max("minor"))["n"]
    return f"{number}.{0 if highest is None else highest + 1}"


def open_siblings(version: ContractVersion) -> list[ContractVersion]:
    """Other drafts and submissions of the same major started from the same base."""
    return list(
        ContractVersion.objects.filter(
            major=version.major,
            based_on=version.based_on,
            status__in=(Status.DRAFT, Status.SUBMITTED),
        )
        .exclude(pk=version.pk)
        .select_related("author", "major")
    )


def identical_submissions(version: ContractVersion, shape: dict) -> list[ContractVersion]:
    """Submissions of the same endpoint that already wait with exactly this shape."""
    return list(
        ContractVersion.objects.filter(
            major__endpoint=version.major.endpoint,
            status=Status.SUBMITTED,
            fingerprint=fingerprint(shape),
        )
        .exclude(pk=version.pk)
        .select_related("author", "major")
    )


def workflow_warnings(version: ContractVersion, shape: dict | None = None) -> list[str]:
    """What a team member should know before submitting (never a refusal)."""
    warnings = [
        f"{other.label} by {other.author} is also open on the same base"
        for other in open_siblings(version)
    ]
    if shape is not None:
        warnings += [
            f"an identical submission already waits for review: {other.label} by {other.author}"
            for other in identical_submissions(version, shape)
        ]
    return warnings


def usage_by_endpoint(
    endpoints: Iterable[Endpoint] | None = None,
) -> dict[tuple[str, str], dict[tuple[int, int], Usage]]:
    """Traffic of every approved or retired version, per endpoint (from the shared cache)."""
    versions = ContractVersion.objects.filter(
        status__in=(Status.APPROVED, Status.RETIRED)
    ).select_related("major__endpoint__client")
    if endpoints is not None:
        versions = versions.filter(major__endpoint__in=list(endpoints))
    grouped: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for version in versions.order_by("major__number", "minor"):
        endpoint = version.major.endpoint
        grouped.setdefault((endpoint.client.name, endpoint.name), []).append(
            (version.major.number, version.minor)
        )
    return {key: usage_of(*key, numbers) for key, numbers in grouped.items()}


def major_usage(major: MajorVersion) -> tuple[Usage, dict[int, Usage]]:
    """A major's traffic in total and per minor."""
    endpoint = major.endpoint
    minors = major.versions.filter(status__in=(Status.APPROVED, Status.RETIRED))
    numbers = [(major.number, minor) for minor in minors.values_list("minor", flat=True)]
    found = usage_of(endpoint.client.name, endpoint.name, numbers)
    per_minor = {minor: usage for (_, minor), usage in found.items()}
    return sum(per_minor.values(), Usage()), per_minor


def internal_fields(spec: EndpointSpec, rules: Iterable[Rule]) -> list[str]:
    """The rules (``section.path``) that select a source field marked internal."""
    found = []
    for rule in rules:
        section = spec.section(rule.section)
        if section is None:
            continue
        try:
            if sensitivity(section.source, rule.source) == INTERNAL:
                found.append(f"{rule.section}.{rule.source}")
        except RuleError:
            continue
    return found


def changes_between(baseline: ContractVersion | None, shape: dict) -> list[Change]:
    if baseline is None or baseline.shape is None:
        return []
    return diff(baseline.shape, shape)


def serialise_changes(changes: Sequence[Change]) -> list[dict]:
    return [{**asdict(change), "compatibility": str(change.compatibility)} for change in changes]


def rule_json_type(spec: EndpointSpec, rule: Rule) -> str:
    section = spec.section(rule.section)
    if section is None:
        return ""
    leaf = resolve(section.source, rule.source)
    return type_label(leaf.field.kind, leaf.nullable)


def bump_generation() -> None:
    """Tell every process the registry changed: the database row now, the cache on commit."""
    from contracts.serving import publish_generation  # the snapshot reads this module

    RegistryState.objects.get_or_create(pk=1)
    RegistryState.objects.filter(pk=1).update(generation=F("generation") + 1)
    generation = RegistryState.objects.values_list("generation", flat=True).get(pk=1)
    transaction.on_commit(lambda: publish_generation(generation))


# --- Actions ---------------------------------------------------------------------------


class Action:
    """A registry change: ``check()`` says whether it may happen, ``execute()`` does it."""

    def check(self) -> None:  # pragma: no cover - every action overrides it
        raise NotImplementedError

    def execute(self):
        with transaction.atomic():
            self._lock()
            self.check()
            return self._perform()

    def _lock(self) -> None:
        """Re-read the rows the action depends on, locked, so two reviewers cannot race."""

    def _perform(self):  # pragma: no cover
        raise NotImplementedError


class VersionAction(Action):
    """An action on one contract version, re-read and locked inside the transaction."""

    def __init__(self, user: AbstractBaseUser, version: ContractVersion) -> None:
        self.user = user
        self.version = version

    def _lock(self) -> None:
        self.version = ContractVersion.objects.select_for_update().get(pk=self.version.pk)


class CreateDraft(Action):
    """Start a draft of an endpoint's contract, from an existing version or empty.

    ``new_major`` starts the next major (the only way to make a breaking change).
    """

    def __init__(
        self,
        user: AbstractBaseUser,
        endpoint: Endpoint,
        *,
        from_version: ContractVersion | None = None,
        new_major: bool = False,
        rules: Sequence[Rule] | None = None,
        summary: str = "",
    ) -> None:
        self.user = user
        self.endpoint = endpoint
        self.from_version = from_version
        self.new_major = new_major
        self.rules = rules
        self.summary = summary

    def check(self) -> None:
        if not can_edit_client(self.user, self.endpoint.client.name):
            allowed = ", ".join(editable_clients(self.user)) or "no"
            raise ActionError(
                f"you may not edit {self.endpoint.client.name} contracts (yours: {allowed})"
            )
        if self.from_version is not None:
            if self.from_version.major.endpoint_id != self.endpoint.pk:
                raise ActionError("the version to start from belongs to another endpoint")
            require_step(self.user, self.from_version, "new_draft")
        if self.rules is not None:
            code_shape(self.endpoint, self.rules)

    def _perform(self) -> ContractVersion:
        if self.new_major or not self.endpoint.majors.exists():
            # Provisional: the major takes its number when its first version is approved.
            major = MajorVersion(endpoint=self.endpoint, number=None)
            major._history_user = self.user
            major.save()
        elif self.from_version is not None:
            major = self.from_version.major
        else:
            major = self.endpoint.majors.exclude(number=None).order_by("-number").first()
        based_on = self.from_version or (latest_approved(major) if not self.new_major else None)
        version = ContractVersion(
            major=major, author=self.user, based_on=based_on, change_summary=self.summary
        )
        version._history_user = self.user
        version.save()
        if self.rules is not None:
            rules = list(self.rules)
        elif based_on is not None:
            rules = rules_of(based_on)
        else:
            rules = []
        _add_rules(version, spec_for(self.endpoint), rules, user=self.user)
        return version


def json_type_of(spec: EndpointSpec, rule: Rule) -> str:
    try:
        return rule_json_type(spec, rule)
    except RuleError:
        return ""


def _add_rules(
    version: ContractVersion,
    spec: EndpointSpec,
    rules: Iterable[Rule],
    *,
    user: AbstractBaseUser,
    start: int = 0,
) -> None:
    """Store ``rules`` as the version's field rules, numbered from ``start``, with history."""
    bulk_create_with_history(
        [
            FieldRule(
                version=version,
                section=rule.section,
                source_path=rule.source,
                output_name=rule.output_path,
                json_type=json_type_of(spec, rule),
                position=start + offset,
            )
            for offset, rule in enumerate(rules)
        ],
        FieldRule,
        default_user=user,
    )


class SubmitForReview(VersionAction):
    """Send a draft to the release managers, with its shape and its classified diff."""

    def __init__(
        self, user: AbstractBaseUser, version: ContractVersion, *, summary: str = ""
    ) -> None:
        super().__init__(user, version)
        self.summary = summary

    def check(self) -> None:
        version = self.version
        require_step(self.user, version, "submit")
        rules = rules_of(version)
        if not rules:
            raise ActionError(EMPTY_CONTRACT)
        shape = code_shape(version.major.endpoint, rules)
        self._shape = shape
        self.warnings = workflow_warnings(version, shape)
        baseline = baseline_for(version)
        changes = changes_between(baseline, shape)
        same_major = baseline is not None and baseline.major_id == version.major_id
        if same_major and not changes:
            raise ActionError(f"nothing changed since {baseline.label}")
        if same_major and classify(changes) == Compatibility.BREAKING:
            raise ActionError(
                f"breaking changes cannot go into v{version.major.number} "
                f"({describe_breaking(changes)}); "
                "propose them as a new major version"
            )
        self._changes = changes

    def _perform(self) -> ContractVersion:
        version = self.version
        version.status = Status.SUBMITTED
        version.shape = self._shape
        version.fingerprint = fingerprint(self._shape)
        version.diff = serialise_changes(self._changes)
        version.submitted_at = timezone.now()
        if self.summary:
            version.change_summary = self.summary
        version._history_user = self.user
        version.save()
        return version


class Approve(VersionAction):
    """A release manager approves a submitted version; it becomes immutable and servable."""

    def __init__(
        self,
        user: AbstractBaseUser,
        version: ContractVersion,
        *,
        comment: str = "",
        internal_override: str = "",
    ) -> None:
        super().__init__(user, version)
        self.comment = comment.strip()
        self.internal_override = internal_override.strip()

    def _lock(self) -> None:
        super()._lock()
        # Serialise approvals within an endpoint, so two cannot take the same minor or
        # the same major number.
        Endpoint.objects.select_for_update().get(pk=self.version.major.endpoint_id)
        MajorVersion.objects.select_for_update().get(pk=self.version.major_id)

    def check(self) -> None:
        version = self.version
        if not is_release_manager(self.user):
            raise ActionError("only release managers approve contract versions")
        require_step(self.user, version, "approve")
        if version.author_id == self.user.pk:
            raise ActionError("nobody approves a version they authored")
        if not version.rules.exists():
            raise ActionError(EMPTY_CONTRACT)
        client = version.major.endpoint.client.name
        spec = spec_for(version.major.endpoint)
        internal = internal_fields(spec, rules_of(version))
        if internal and client in EXTERNAL_CLIENTS and not self.internal_override:
            raise ActionError(
                f"{', '.join(internal)} {'is' if len(internal) == 1 else 'are'} internal and "
                f"{client} is an external client: give a reason to override, or request changes"
            )
        # The major may have moved on since submission: judge against what is approved now.
        baseline = baseline_for(version)
        changes = changes_between(baseline, version.shape)
        same_major = baseline is not None and baseline.major_id == version.major_id
        if same_major and classify(changes) == Compatibility.BREAKING:
            raise ActionError(
                f"since submission {baseline.label} was approved and this version now "
                "breaks it; the author must submit it again"
            )
        if same_major and not changes:
            raise ActionError(f"this version is identical to the approved {baseline.label}")
        self._changes = changes
        self._internal = bool(internal and client in EXTERNAL_CLIENTS)

    def _perform(self) -> ContractVersion:
        version = self.version
        major = version.major
        if major.number is None:
            major.number = (major.endpoint.majors.aggregate(n=Max("number"))["n"] or 0) + 1
            major._history_user = self.user
            major._change_reason = f"number taken on approval of its first version by {self.user}"
            major.save()
        latest = latest_approved(major)
        highest = major.versions.aggregate(n=Max("minor"))["n"]
        version.minor = 0 if highest is None else highest + 1
        version.status = Status.APPROVED
        version.approver = self.user
        version.review_comment = self.comment
        version.internal_override = self.internal_override if self._internal else ""
        version.reviewed_at = timezone.now()
        version.diff = serialise_changes(self._changes)
        version._history_user = self.user
        version.save()
        bump_generation()
        logger.info(
            "contract version approved",
            extra={
                "contract": str(version),
                "approver": self.user.get_username(),
                "replaces": latest.label if latest else None,
            },
        )
        return version


class CommentedReview(VersionAction):
    """A review step that must say why: ``step`` is checked, and the comment is required."""

    step: str
    missing_comment: str

    def __init__(self, user: AbstractBaseUser, version: ContractVersion, *, comment: str) -> None:
        super().__init__(user, version)
        self.comment = comment.strip()

    def check(self) -> None:
        require_step(self.user, self.version, self.step)
        if not self.comment:
            raise ActionError(self.missing_comment)


class Reject(CommentedReview):
    """A release manager sends a submitted version back, with a reason."""

    step = "reject"
    missing_comment = "say why the version is rejected"

    def _perform(self) -> ContractVersion:
        version = self.version
        version.status = Status.REJECTED
        version.approver = None
        version.review_comment = self.comment
        version.reviewed_at = timezone.now()
        version._history_user = self.user
        version.save()
        return version


EMPTY_CONTRACT = "an empty contract serves empty objects: pick at least one field clients receive"


def _back_to_draft(version: ContractVersion) -> None:
    version.status = Status.DRAFT
    version.shape = None
    version.fingerprint = ""
    version.diff = None
    version.submitted_at = None


class Withdraw(VersionAction):
    """The team takes a submission back to draft, before anyone reviewed it."""

    def check(self) -> None:
        require_step(self.user, self.version, "withdraw")

    def _perform(self) -> ContractVersion:
        _back_to_draft(self.version)
        self.version._history_user = self.user
        self.version._change_reason = "withdrawn from review"
        self.version.save()
        return self.version


class RequestChanges(CommentedReview):
    """A release manager sends a submission back to its team as a draft, with a comment."""

    step = "request_changes"
    missing_comment = "say which changes you request"

    def _perform(self) -> ContractVersion:
        version = self.version
        _back_to_draft(version)
        version.review_comment = self.comment
        version.reviewed_at = timezone.now()
        version._history_user = self.user
        version._change_reason = f"changes requested: {self.comment}"[:100]
        version.save()
        return version


class UpdateFromBase(VersionAction):
    """Move a draft or submission onto the newest approved version of its major.

    The proposal keeps its own rules and gains the rules the new base added since its old
    base, so an approval that happened meanwhile is neither lost nor undone. A submission
    comes back as a draft, for its team to check and submit again.
    """

    def check(self) -> None:
        require_step(self.user, self.version, "update_from_base")
        self._base = baseline_for(self.version)
        if self._base is None or self._base.pk == self.version.based_on_id:
            raise ActionError("this version is already based on the newest approved one")

    def _perform(self) -> ContractVersion:
        version = self.version
        old_base = rules_of(version.based_on) if version.based_on else []
        own = rules_of(version)
        taken = {(r.section, r.output_path) for r in own}
        gained = [
            rule
            for rule in rules_of(self._base)
            if rule not in old_base and (rule.section, rule.output_path) not in taken
        ]
        _back_to_draft(version)
        version.based_on = self._base
        version._history_user = self.user
        version._change_reason = f"updated from {self._base.label}"
        version.save()
        spec = spec_for(version.major.endpoint)
        _add_rules(version, spec, gained, user=self.user, start=version.rules.count())
        return version


class DeleteDraft(VersionAction):
    """Delete a draft; a provisional major left with no version goes with it."""

    def check(self) -> None:
        require_step(self.user, self.version, "delete")

    def _perform(self) -> None:
        major = self.version.major
        self.version._history_user = self.user
        for rule in self.version.rules.all():
            rule._history_user = self.user
            rule.delete()
        self.version.delete()
        if major.number is None and not major.versions.exists():
            major._history_user = self.user
            major.delete()


# --- Lifecycle proposals: retiring a version, deprecating a major ------------------------


def _describe_changes(changes: Sequence[Change]) -> str:
    return "; ".join(f"`{c.path}` {c.detail.removeprefix('field ')}" for c in changes)


def retirement_effect(version: ContractVersion) -> str:
    """What clients of the version's major receive once it is retired."""
    major = version.major
    remaining = list(
        major.versions.filter(status=Status.APPROVED).exclude(pk=version.pk).order_by("-minor")
    )
    serving = latest_approved(major)
    if not remaining:
        return (
            f"{major.label} will have no servable version: its URLs will answer 503 "
            "until a new version is approved"
        )
    fallback = remaining[0]
    if serving is not None and serving.pk != version.pk:
        return (
            f"{major.label} keeps serving {serving.schema_version}; "
            f"{version.schema_version} is no longer served by instances running older code"
        )
    changes = diff(version.shape, fallback.shape)
    described = _describe_changes(changes) or "the same fields"
    return f"{major.label} will be served as {fallback.schema_version}: {described}"


def deprecation_effect(major: MajorVersion, sunset_at: datetime) -> str:
    successor = (
        major.endpoint.majors.filter(number__gt=major.number, versions__status=Status.APPROVED)
        .order_by("number")
        .first()
    )
    moving = f", pointing clients to {successor.label}" if successor else ""
    return (
        f"{major.label} responses will carry Deprecation and Sunset headers{moving}; "
        f"from {sunset_at:%Y-%m-%d %H:%M} UTC its URLs will answer 410"
    )


def minimum_sunset_notice() -> timedelta:
    return timedelta(days=settings.REGISTRY_MIN_SUNSET_NOTICE_DAYS)


def validate_sunset(sunset_at: datetime, now: datetime) -> None:
    if timezone.is_naive(sunset_at):
        raise ActionError("the sunset date needs a time zone")
    notice = minimum_sunset_notice()
    if sunset_at <= now:
        raise ActionError("the sunset must be in the future: a past one answers 410 at once")
    if sunset_at < now + notice:
        earliest = timezone.localtime(now + notice)
        raise ActionError(
            f"clients need at least {notice.days} days' notice: "
            f"the sunset can be {earliest:%Y-%m-%d %H:%M} at the earliest"
        )


def _refuse_if_pending(kind: str, message: str, **target) -> None:
    """One pending proposal of a kind per version or major: a second one is refused."""
    if LifecycleProposal.objects.pending(kind, **target).exists():
        raise ActionError(message)


def _record_proposal(proposer: AbstractBaseUser, **fields) -> LifecycleProposal:
    """Save a pending lifecycle proposal, its history recorded under the proposer."""
    proposal = LifecycleProposal(proposer=proposer, **fields)
    proposal._history_user = proposer
    proposal.save()
    return proposal


class ProposeRetirement(VersionAction):
    """A release manager proposes retiring an approved version; another one confirms."""

    def __init__(self, user: AbstractBaseUser, version: ContractVersion, *, reason: str = ""):
        super().__init__(user, version)
        self.reason = reason.strip()

    def check(self) -> None:
        require_step(self.user, self.version, "propose_retirement")
        already = f"retiring {self.version.label} is already proposed"
        _refuse_if_pending(ProposalKind.RETIRE_VERSION, already, version=self.version)

    def _perform(self) -> LifecycleProposal:
        return _record_proposal(
            self.user,
            kind=ProposalKind.RETIRE_VERSION,
            major=self.version.major,
            version=self.version,
            effect=retirement_effect(self.version),
            reason=self.reason,
        )


class ProposeDeprecation(Action):
    """A release manager proposes deprecating a major with a sunset; another one confirms."""

    clock = staticmethod(timezone.now)

    def __init__(
        self, user: AbstractBaseUser, major: MajorVersion, *, sunset_at: datetime, reason: str = ""
    ) -> None:
        self.user = user
        self.major = major
        self.sunset_at = sunset_at
        self.reason = reason.strip()

    def _lock(self) -> None:
        self.major = MajorVersion.objects.select_for_update().get(pk=self.major.pk)

    def check(self) -> None:
        if not is_release_manager(self.user):
            raise ActionError("only release managers deprecate major versions")
        check_deprecation(self.major, self.sunset_at, self.clock())
        already = f"a deprecation of {self.major.label} already waits for review"
        _refuse_if_pending(ProposalKind.DEPRECATE_MAJOR, already, major=self.major)

    def _perform(self) -> LifecycleProposal:
        return _record_proposal(
            self.user,
            kind=ProposalKind.DEPRECATE_MAJOR,
            major=self.major,
            sunset_at=self.sunset_at,
            effect=deprecation_effect(self.major, self.sunset_at),
            reason=self.reason,
        )


def check_deprecation(major: MajorVersion, sunset_at: datetime, now: datetime) -> None:
    if major.number is None:
        raise ActionError("a major with no approved version has nothing to deprecate")
    successor = major.endpoint.majors.filter(
        number__gt=major.number, versions__status=Status.APPROVED
    ).exists()
    if not successor:
        raise ActionError(f"{major.label} has no approved successor major for clients to move to")
    validate_sunset(sunset_at, now)


class ProposalAction(Action):
    """An action on a pending lifecycle proposal, re-read and locked."""

    clock = staticmethod(timezone.now)

    def __init__(
        self, user: AbstractBaseUser, proposal: LifecycleProposal, *, comment: str = ""
    ) -> None:
        self.user = user
        self.proposal = proposal
        self.comment = comment.strip()

    def _lock(self) -> None:
        self.proposal = LifecycleProposal.objects.select_for_update().get(pk=self.proposal.pk)

    def _require_pending(self) -> None:
        if self.proposal.status != ProposalStatus.PENDING:
            raise ActionError(f"this proposal is already {self.proposal.status}")

    def _decide(self, status: str) -> None:
        proposal = self.proposal
        proposal.status = status
        proposal.reviewer = self.user if status != ProposalStatus.WITHDRAWN else None
        proposal.review_comment = self.comment
        proposal.decided_at = self.clock()
        proposal._history_user = self.user
        proposal.save()


class ConfirmProposal(ProposalAction):
    """A second release manager confirms a proposal; only now do clients see the change."""

    def check(self) -> None:
        proposal = self.proposal
        if not is_release_manager(self.user):
            raise ActionError("only release managers confirm lifecycle changes")
        self._require_pending()
        if proposal.proposer_id == self.user.pk:
            raise ActionError("a release manager other than the proposer must confirm it")
        if proposal.kind == ProposalKind.RETIRE_VERSION:
            version = ContractVersion.objects.select_for_update().get(pk=proposal.version_id)
            require_step(self.user, version, "retire")
            self._effect = retirement_effect(version)
        else:
            major = MajorVersion.objects.select_for_update().get(pk=proposal.major_id)
            check_deprecation(major, proposal.sunset_at, self.clock())
            self._effect = deprecation_effect(major, proposal.sunset_at)

    def _perform(self) -> LifecycleProposal:
        proposal = self.proposal
        # The effect as it is now: another change may have landed since it was proposed.
        proposal.effect = self._effect
        self._decide(ProposalStatus.CONFIRMED)
        reason = f"proposed by {proposal.proposer}, confirmed by {self.user}"
        if proposal.kind == ProposalKind.RETIRE_VERSION:
            version = ContractVersion.objects.get(pk=proposal.version_id)
            version.status = Status.RETIRED
            version._history_user = self.user
            version._change_reason = f"retired: {reason}"
            version.save()
        else:
            major = MajorVersion.objects.get(pk=proposal.major_id)
            major.deprecated_at = major.deprecated_at or self.clock()
            major.sunset_at = proposal.sunset_at
            major._history_user = self.user
            major._change_reason = f"deprecated: {reason}"
            major.save()
        bump_generation()
        logger.info(
            "lifecycle change confirmed",
            extra={
                "proposal": str(proposal),
                "proposer": str(proposal.proposer),
                "reviewer": self.user.get_username(),
            },
        )
        return proposal


class DeclineProposal(ProposalAction):
    """Another release manager declines a proposal (with a reason), or its proposer
    withdraws it; nothing clients receive changes."""

    def check(self) -> None:
        if not is_release_manager(self.user):
            raise ActionError("only release managers decide lifecycle changes")
        self._require_pending()
        if self.proposal.proposer_id != self.user.pk and not self.comment:
            raise ActionError("say why the proposal is declined")

    def _perform(self) -> LifecycleProposal:
        withdrawn = self.proposal.proposer_id == self.user.pk
        self._decide(ProposalStatus.WITHDRAWN if withdrawn else ProposalStatus.DECLINED)
        return self.proposal


BOT_USERNAME = "contracts-bot"


def proposal_author():
    """The account ``contracts propose`` writes as: a member of every frontend team that
    cannot log in, so its proposals can be reviewed (never approved) like anyone's."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, created = get_user_model().objects.get_or_create(username=BOT_USERNAME)
    if created:
        user.set_unusable_password()
        user.save()
    user.groups.add(*Group.objects.filter(name__in=roles.FRONTEND_TEAMS.values()))
    return user


class ProposeFromCode(Action):
    """Record the shape of the checked-out code as a submitted version of a contract.

    The rules are those of the newest approved version the proposal builds on, with each
    remap applied (``{(section, old source): new source}``: the rule keeps its output and
    reads another declared field) and minus any rule naming a field the code no longer
    declares; the code's source schemas supply everything else (types, nullability,
    enums). A breaking result is refused in an existing major, exactly as in the admin.
    """

    def __init__(
        self,
        user: AbstractBaseUser,
        client: str,
        endpoint: str,
        *,
        major: int | None = None,
        remaps: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.user = user
        self.client = client
        self.endpoint_name = endpoint
        self.major = major
        self.remaps = dict(remaps or {})
        self.dropped: list[str] = []

    def check(self) -> None:
        spec = code_endpoint(self.client, self.endpoint_name)
        if spec is None:
            raise ActionError(f"this code declares no endpoint {self.client}/{self.endpoint_name}")
        self.spec = spec
        endpoint = Endpoint.objects.filter(
            client__name=self.client, name=self.endpoint_name
        ).first()
        numbers = (
            sorted(endpoint.majors.exclude(number=None).values_list("number", flat=True))
            if endpoint
            else []
        )
        target = self.major if self.major is not None else (numbers[-1] if numbers else 1)
        highest = numbers[-1] if numbers else 0
        if target < 1 or target > highest + 1:
            raise ActionError(f"--major must be between 1 and {highest + 1}")
        self.target = target
        self.endpoint = endpoint
        base = None
        if endpoint is not None:
            base = (
                ContractVersion.objects.filter(
                    major__endpoint=endpoint, major__number__lte=target, status=Status.APPROVED
                )
                .order_by("-major__number", "-minor")
                .first()
            )
        self.base = base
        rules: list[Rule] = []
        targets = {(section, new) for (section, _), new in self.remaps.items()}
        for rule in remapped(rules_of(base) if base else [], self.remaps, base):
            try:
                build_shape(spec, [rule])
            except RuleError as exc:
                if (rule.section, rule.source) in targets:
                    raise ActionError(
                        f"cannot remap to {rule.section}.{rule.source}: {exc}"
                    ) from None
                self.dropped.append(f"{rule.section}.{rule.source}: {exc}")
                continue
            rules.append(rule)
        self.rules = rules
        shape = code_shape_for(spec, rules)
        same_major = base is not None and base.major.number == target
        changes = diff(base.shape, shape) if base is not None else []
        if same_major and not changes:
            raise ActionError(
                f"nothing to propose: the approved v{base.schema_version} already matches this code"
            )
        if same_major and classify(changes) == Compatibility.BREAKING:
            raise ActionError(
                f"this code breaks v{target} ({describe_breaking(changes)}); "
                "propose it as a new major with "
                f"--major {highest + 1}"
            )
        self.changes = changes

    def _perform(self) -> ContractVersion:
        endpoint = self.endpoint
        if endpoint is None:
            from contracts.models import Client

            client = Client.objects.get(name=self.client)
            endpoint = Endpoint.objects.create(
                client=client, name=self.endpoint_name, description=self.spec.description[:300]
            )
        new_major = not endpoint.majors.filter(number=self.target).exists()
        draft = CreateDraft(
            self.user,
            endpoint,
            from_version=None if new_major else self.base,
            new_major=new_major,
            rules=self.rules,
            summary="Proposed from the checked-out code",
        ).execute()
        if not self.rules:
            return draft  # nothing whitelisted yet: a team picks the fields, then submits
        return SubmitForReview(self.user, draft).execute()


def parse_remaps(values: Iterable[str]) -> dict[tuple[str, str], str]:
    """``["user.avatarUrl=profileImageUrl"]`` -> ``{("user", "avatarUrl"): "profileImageUrl"}``."""
    remaps: dict[tuple[str, str], str] = {}
    for value in values:
        old, equals, new = value.partition("=")
        section, dot, source = old.strip().partition(".")
        if not equals or not dot or not section or not source or not new.strip():
            raise ActionError(
                f"--remap {value!r} is not SECTION.SOURCE=NEW_SOURCE, "
                "e.g. user.avatarUrl=profileImageUrl"
            )
        remaps[(section, source)] = new.strip()
    return remaps


def remapped(
    rules: Sequence[Rule], remaps: Mapping[tuple[str, str], str], base: ContractVersion | None
) -> list[Rule]:
    """``rules`` with each remap applied; the output each rule writes does not change."""
    pending = dict(remaps)
    result = []
    for rule in rules:
        new_source = pending.pop((rule.section, rule.source), None)
        if new_source is not None:
            rule = Rule(rule.section, new_source, rule.output_path)
        result.append(rule)
    if pending:
        where = f"v{base.schema_version}" if base is not None else "the contract"
        missing = ", ".join(f"{section}.{source}" for section, source in pending)
        raise ActionError(f"no rule of {where} reads {missing}: nothing to remap")
    return result


def describe_breaking(changes: Sequence[Change]) -> str:
    return "; ".join(
        f"{c.path}: {c.detail}" for c in changes if c.compatibility == Compatibility.BREAKING
    )


def code_shape_for(spec: EndpointSpec, rules: Iterable[Rule]) -> dict:
    try:
        return build_shape(spec, rules)
    except RuleError as exc:
        raise ActionError(str(exc)) from None
