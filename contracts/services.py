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
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from contracts import roles
from contracts.codebase import code_endpoint
from contracts.differ import Change, Compatibility, classify, diff
from contracts.models import (
    ContractVersion,
    Endpoint,
    FieldRule,
    MajorVersion,
    RegistryState,
    Status,
)
from contracts.paths import RuleError, resolve, type_label
from contracts.schema import EndpointSpec, Rule
from contracts.shapes import build_shape, fingerprint

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


# --- Reading the registry --------------------------------------------------------------


def rules_of(version: ContractVersion) -> list[Rule]:
    return [
        Rule(rule.section, rule.source_path, rule.output_name)
        for rule in version.rules.order_by("section", "position", "id")
    ]


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
    else the newest approved one of the highest earlier major."""
    same_major = latest_approved(version.major)
    if same_major is not None:
        return same_major
    return (
        ContractVersion.objects.filter(
            major__endpoint=version.major.endpoint,
            major__number__lt=version.major.number,
            status__in=(Status.APPROVED, Status.RETIRED),
        )
        .order_by("-major__number", "-minor")
        .first()
    )


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

    def _require_status(self, status: str, verb: str) -> None:
        if self.version.status != status:
            raise ActionError(
                f"only {status} versions can be {verb}; this one is {self.version.status}"
            )


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
        if (
            self.from_version is not None
            and self.from_version.major.endpoint_id != self.endpoint.pk
        ):
            raise ActionError("the version to start from belongs to another endpoint")
        if self.rules is not None:
            code_shape(self.endpoint, self.rules)

    def _perform(self) -> ContractVersion:
        if self.new_major or not self.endpoint.majors.exists():
            number = (self.endpoint.majors.aggregate(n=Max("number"))["n"] or 0) + 1
            major = MajorVersion.objects.create(endpoint=self.endpoint, number=number)
        elif self.from_version is not None:
            major = self.from_version.major
        else:
            major = self.endpoint.majors.order_by("-number").first()
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
        spec = spec_for(self.endpoint)
        bulk_create_with_history(
            [
                FieldRule(
                    version=version,
                    section=rule.section,
                    source_path=rule.source,
                    output_name=rule.output_path,
                    json_type=json_type_of(spec, rule),
                    position=position,
                )
                for position, rule in enumerate(rules)
            ],
            FieldRule,
            default_user=self.user,
        )
        return version


def json_type_of(spec: EndpointSpec, rule: Rule) -> str:
    try:
        return rule_json_type(spec, rule)
    except RuleError:
        return ""


class SubmitForReview(VersionAction):
    """Send a draft to the release managers, with its shape and its classified diff."""

    def __init__(
        self, user: AbstractBaseUser, version: ContractVersion, *, summary: str = ""
    ) -> None:
        super().__init__(user, version)
        self.summary = summary

    def check(self) -> None:
        version = self.version
        if version.status != Status.DRAFT:
            raise ActionError(f"only drafts can be submitted; this version is {version.status}")
        if not can_edit_client(self.user, version.major.endpoint.client.name):
            raise ActionError("you may only submit drafts of your own client's contracts")
        shape = code_shape(version.major.endpoint, rules_of(version))
        self._shape = shape
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
        self, user: AbstractBaseUser, version: ContractVersion, *, comment: str = ""
    ) -> None:
        super().__init__(user, version)
        self.comment = comment.strip()

    def _lock(self) -> None:
        super()._lock()
        # Serialise approvals within a major, so two cannot take the same minor.
        MajorVersion.objects.select_for_update().get(pk=self.version.major_id)

    def check(self) -> None:
        version = self.version
        if not is_release_manager(self.user):
            raise ActionError("only release managers approve contract versions")
        self._require_status(Status.SUBMITTED, "approved")
        if version.author_id == self.user.pk:
            raise ActionError("nobody approves a version they authored")
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

    def _perform(self) -> ContractVersion:
        version = self.version
        latest = latest_approved(version.major)
        highest = version.major.versions.aggregate(n=Max("minor"))["n"]
        version.minor = 0 if highest is None else highest + 1
        version.status = Status.APPROVED
        version.approver = self.user
        version.review_comment = self.comment
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


class Reject(VersionAction):
    """A release manager sends a submitted version back, with a reason."""

    def __init__(self, user: AbstractBaseUser, version: ContractVersion, *, comment: str) -> None:
        super().__init__(user, version)
        self.comment = comment.strip()

    def check(self) -> None:
        if not is_release_manager(self.user):
            raise ActionError("only release managers reject contract versions")
        self._require_status(Status.SUBMITTED, "rejected")
        if not self.comment:
            raise ActionError("say why the version is rejected")

    def _perform(self) -> ContractVersion:
        version = self.version
        version.status = Status.REJECTED
        version.approver = None
        version.review_comment = self.comment
        version.reviewed_at = timezone.now()
        version._history_user = self.user
        version.save()
        return version


class Retire(VersionAction):
    """Stop serving an approved version (its major falls back to the previous approved one)."""

    def check(self) -> None:
        if not is_release_manager(self.user):
            raise ActionError("only release managers retire contract versions")
        self._require_status(Status.APPROVED, "retired")

    def _perform(self) -> ContractVersion:
        self.version.status = Status.RETIRED
        self.version._history_user = self.user
        self.version.save()
        bump_generation()
        return self.version


class DeprecateMajor(Action):
    """Mark a major deprecated, with the date after which it answers 410."""

    def __init__(self, user: AbstractBaseUser, major: MajorVersion, *, sunset_at: datetime) -> None:
        self.user = user
        self.major = major
        self.sunset_at = sunset_at

    def _lock(self) -> None:
        self.major = MajorVersion.objects.select_for_update().get(pk=self.major.pk)

    def check(self) -> None:
        if not is_release_manager(self.user):
            raise ActionError("only release managers deprecate major versions")
        successor = self.major.endpoint.majors.filter(
            number__gt=self.major.number, versions__status=Status.APPROVED
        ).exists()
        if not successor:
            raise ActionError(
                f"v{self.major.number} has no approved successor major for clients to move to"
            )
        if timezone.is_naive(self.sunset_at):
            raise ActionError("the sunset date needs a time zone")

    def _perform(self) -> MajorVersion:
        self.major.deprecated_at = self.major.deprecated_at or timezone.now()
        self.major.sunset_at = self.sunset_at
        self.major._history_user = self.user
        self.major.save()
        bump_generation()
        return self.major


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

    def __init__(self, user: AbstractBaseUser, client: str, endpoint: str,
                 *, major: int | None = None,
                 remaps: Mapping[tuple[str, str], str] | None = None) -> None:  # fmt: skip
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
        numbers = sorted(endpoint.majors.values_list("number", flat=True)) if endpoint else []
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
            endpoint = Endpoint.objects.create(client=client, name=self.endpoint_name,
                                               description=self.spec.description[:300])  # fmt: skip
        new_major = not endpoint.majors.filter(number=self.target).exists()
        draft = CreateDraft(
            self.user, endpoint, from_version=None if new_major else self.base,
            new_major=new_major, rules=self.rules,
            summary="Proposed from the checked-out code",
        ).execute()  # fmt: skip
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
