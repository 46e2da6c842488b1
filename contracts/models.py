"""The registry's tables: clients, endpoints, majors, contract versions and their field rules.

Approved versions are immutable here, in the model layer, not only in the admin: saving,
deleting or bulk-updating one (or one of its rules) raises ``ImmutableVersionError``.
Writes that change the workflow go through ``contracts.services``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from contract_core.schema import Rule


class ImmutableVersionError(ValidationError):
    """An approved (or retired) contract version, or one of its rules, was to be changed."""


class Client(models.Model):
    """A client surface with its own API (mobile, web, partner)."""

    name = models.SlugField(max_length=32, unique=True)
    display_name = models.CharField(max_length=100)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CacheScope(models.TextChoices):
    PER_USER = "per_user", "per user"
    SHARED = "shared", "shared"
    NONE = "none", "not cached"


class EndpointQuerySet(models.QuerySet):
    def update(self, **kwargs):
        # update() skips save(): check the cache scope rule on every row it would touch.
        if kwargs.get("cache_scope") == CacheScope.SHARED:
            for endpoint in self.select_related("client"):
                endpoint.cache_scope = CacheScope.SHARED
                endpoint.validate_cache_scope()
        return super().update(**kwargs)


class Endpoint(models.Model):
    """One endpoint of a client surface, with its cache policy."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="endpoints")
    name = models.SlugField(max_length=64)
    description = models.CharField(max_length=300, blank=True)
    cache_scope = models.CharField(
        max_length=16, choices=CacheScope.choices, default=CacheScope.PER_USER
    )
    cache_ttl_seconds = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(86_400)]
    )
    cache_jitter_percent = models.PositiveSmallIntegerField(
        default=10,
        validators=[MaxValueValidator(50)],
        help_text="TTLs are spread by up to this share, so keys written together "
        "do not expire together.",
    )
    cache_stale_grace_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MaxValueValidator(86_400)],
        help_text="How long past expiry a value may still be served when recomputing fails.",
    )
    history = HistoricalRecords()

    objects = EndpointQuerySet.as_manager()

    class Meta:
        ordering = ["client__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "name"], name="endpoint_unique_per_client"),
            models.CheckConstraint(
                condition=Q(cache_ttl_seconds__gte=1, cache_ttl_seconds__lte=86_400),
                name="endpoint_ttl_range",
            ),
            models.CheckConstraint(
                condition=Q(cache_jitter_percent__lte=50), name="endpoint_jitter_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client.name}/{self.name}"

    def save(self, *args, **kwargs) -> None:
        # Enforced here, not only in forms: every write path (admin, history, commands,
        # the API) must keep per-user data out of shared cache entries.
        self.validate_cache_scope()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        self.validate_cache_scope()

    @property
    def reads_per_user_data(self) -> bool:
        """Whether this code's responses for it depend on who asks (unknown code: yes)."""
        from contracts.codebase import code_endpoint

        spec = code_endpoint(self.client.name, self.name)
        return spec is None or spec.per_user

    def validate_cache_scope(self) -> None:
        """A page built from one user's data can never be a shared cache entry."""
        if self.cache_scope == CacheScope.SHARED and self.reads_per_user_data:
            raise ValidationError(
                {
                    "cache_scope": f"{self} reads per-user data: its responses can be cached "
                    "per user or not at all, never shared between users."
                }
            )


class MajorVersion(models.Model):
    """A major version of an endpoint: its own URL (``/v{number}/``), its own lifecycle."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="majors")
    # Taken when the major's first version is approved: until then the major is
    # provisional (NULL), so abandoned drafts of a new major never consume a number.
    number = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    deprecated_at = models.DateTimeField(null=True, blank=True)
    sunset_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["endpoint", "number"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "number"], name="major_unique_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="major_number_positive"),
            models.CheckConstraint(
                condition=Q(sunset_at__isnull=True) | Q(deprecated_at__isnull=False),
                name="major_sunset_needs_deprecation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.label}"

    @property
    def label(self) -> str:
        return "new major" if self.number is None else f"v{self.number}"


class Status(models.TextChoices):
    DRAFT = "draft", "draft"
    SUBMITTED = "submitted", "submitted"
    APPROVED = "approved", "approved"
    REJECTED = "rejected", "rejected"
    RETIRED = "retired", "retired"


FROZEN_STATUSES = (Status.APPROVED, Status.RETIRED)
EDITABLE_STATUSES = (Status.DRAFT,)


class Role(models.TextChoices):
    TEAM = "team", "the client's frontend team"
    RELEASE_MANAGER = "release_manager", "a release manager"


@dataclass(frozen=True)
class Transition:
    """One step of the workflow: from which statuses, to which, by whom."""

    label: str
    sources: tuple[str, ...]
    target: str | None  # None: the version keeps its status (a new row, or a proposal)
    role: str


# The workflow, in one table: the services check every action against it and the admin
# shows exactly the buttons it allows. Retiring is a proposal that a second release
# manager confirms (``LifecycleProposal``); the version changes status on confirmation.
WORKFLOW: dict[str, Transition] = {
    "submit": Transition("Submit for review", (Status.DRAFT,), Status.SUBMITTED, Role.TEAM),
    "withdraw": Transition("Withdraw", (Status.SUBMITTED,), Status.DRAFT, Role.TEAM),
    "update_from_base": Transition(
        "Update from the new base", (Status.DRAFT, Status.SUBMITTED), Status.DRAFT, Role.TEAM
    ),
    "request_changes": Transition(
        "Request changes", (Status.SUBMITTED,), Status.DRAFT, Role.RELEASE_MANAGER
    ),
    "approve": Transition("Approve", (Status.SUBMITTED,), Status.APPROVED, Role.RELEASE_MANAGER),
    "reject": Transition("Reject", (Status.SUBMITTED,), Status.REJECTED, Role.RELEASE_MANAGER),
    "new_draft": Transition(
        "New draft from this version",
        (Status.APPROVED, Status.RETIRED, Status.REJECTED),
        None,
        Role.TEAM,
    ),
    "propose_retirement": Transition(
        "Propose retiring", (Status.APPROVED,), None, Role.RELEASE_MANAGER
    ),
    "retire": Transition("Retire", (Status.APPROVED,), Status.RETIRED, Role.RELEASE_MANAGER),
    "delete": Transition("Delete", (Status.DRAFT,), None, Role.TEAM),
}


class FrozenGuardedQuerySet(models.QuerySet):
    """Refuses bulk updates and deletes that would touch an approved (or retired) version.

    Bulk operations skip save() and delete(); they must not become a way around the rule.
    Subclasses name the lookup to the version's status (``status_field``) and the rows
    (``what``, for the message).
    """

    status_field: str
    what: str

    def _refuse_if_frozen(self, verb: str) -> None:
        if self.filter(**{f"{self.status_field}__in": FROZEN_STATUSES}).exists():
            raise ImmutableVersionError(f"{self.what} cannot be {verb}")

    def update(self, **kwargs):
        self._refuse_if_frozen("changed")
        return super().update(**kwargs)

    def delete(self):
        self._refuse_if_frozen("deleted")
        return super().delete()


class ContractVersionQuerySet(FrozenGuardedQuerySet):
    status_field = "status"
    what = "approved contract versions"


class ContractVersion(models.Model):
    """One version ``major.minor`` of an endpoint's contract, with its workflow state.

    ``minor`` is assigned on approval (the next minor of its major), so drafts and
    rejected proposals never take a number and approved numbers have no gaps.
    """

    major = models.ForeignKey(MajorVersion, on_delete=models.PROTECT, related_name="versions")
    minor = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    based_on = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="successors",
        help_text="The version this one was drafted from.",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="authored_versions"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reviewed_versions",
    )
    review_comment = models.TextField(blank=True)
    # Why a release manager let internal source fields into a partner contract.
    internal_override = models.CharField(max_length=300, blank=True)
    change_summary = models.CharField(max_length=300, blank=True)
    shape = models.JSONField(null=True, blank=True, editable=False)
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    diff = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    objects = ContractVersionQuerySet.as_manager()

    class Meta:
        ordering = ["major", "minor", "id"]
        constraints = [
            models.UniqueConstraint(fields=["major", "minor"], name="version_unique_minor"),
            models.CheckConstraint(
                condition=~Q(approver=F("author")), name="version_not_approved_by_author"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=FROZEN_STATUSES)
                | (Q(minor__isnull=False) & Q(approver__isnull=False) & ~Q(fingerprint="")),
                name="version_approved_is_complete",
            ),
            models.CheckConstraint(
                condition=Q(status__in=FROZEN_STATUSES) | Q(minor__isnull=True),
                name="version_minor_only_when_approved",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.major.endpoint} {self.label}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            previous = (
                type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
            )
            if previous in FROZEN_STATUSES and not self._is_retirement(previous):
                raise ImmutableVersionError(
                    f"{self} is {previous} and cannot be changed; draft a new version from it"
                )
        super().save(*args, **kwargs)

    def _is_retirement(self, previous: str) -> bool:
        """The one change an approved version allows: being retired, nothing else."""
        if not (previous == Status.APPROVED and self.status == Status.RETIRED):
            return False
        stored = type(self).objects.get(pk=self.pk)
        frozen_fields = ("major_id", "minor", "author_id", "approver_id", "fingerprint", "shape")
        return all(getattr(stored, name) == getattr(self, name) for name in frozen_fields)

    def delete(self, *args, **kwargs):
        if self.is_frozen:
            raise ImmutableVersionError(f"{self} is {self.status} and cannot be deleted")
        return super().delete(*args, **kwargs)

    @property
    def label(self) -> str:
        if self.minor is None:
            return f"{self.major.label} {self.status} #{self.pk}"
        return f"v{self.major.number}.{self.minor}"

    @property
    def schema_version(self) -> str | None:
        return None if self.minor is None else f"{self.major.number}.{self.minor}"

    @property
    def is_frozen(self) -> bool:
        return self.status in FROZEN_STATUSES


class ReviewQueue(ContractVersion):
    """Submitted versions waiting for a release manager (the admin's review queue)."""

    class Meta:
        proxy = True
        verbose_name = "version awaiting review"
        verbose_name_plural = "versions awaiting review"


def rules_of(version: ContractVersion) -> list[Rule]:
    """A version's whitelist as the core's rules, in the order they were picked.

    Sorted here rather than by the query, so rows prefetched with the version are used
    (the serving snapshot and the gate prefetch them for every version they read).
    """
    rows = sorted(version.rules.all(), key=lambda row: (row.section, row.position, row.pk))
    return [Rule(row.section, row.source_path, row.output_name) for row in rows]


class FieldRuleQuerySet(FrozenGuardedQuerySet):
    status_field = "version__status"
    what = "rules of approved contract versions"

    def bulk_create(self, objs, *args, **kwargs):
        version_ids = {obj.version_id for obj in objs}
        if (
            ContractVersion.objects.filter(pk__in=version_ids)
            .exclude(status__in=EDITABLE_STATUSES)
            .exists()
        ):
            raise ImmutableVersionError("rules can only be added to drafts")
        return super().bulk_create(objs, *args, **kwargs)


class FieldRule(models.Model):
    """One whitelisted field of a section: its source path and its output name."""

    version = models.ForeignKey(ContractVersion, on_delete=models.CASCADE, related_name="rules")
    section = models.CharField(max_length=64)
    source_path = models.CharField(max_length=200)
    output_name = models.CharField(
        max_length=200, blank=True, help_text="Leave empty to keep the source name."
    )
    json_type = models.CharField(max_length=64, editable=False, blank=True)
    position = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

    objects = FieldRuleQuerySet.as_manager()

    class Meta:
        ordering = ["section", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "section", "output_name"], name="rule_unique_output_name"
            ),
        ]

    def __str__(self) -> str:
        if self.output_name and self.output_name != self.source_path:
            return f"{self.section}.{self.source_path} → {self.output_name}"
        return f"{self.section}.{self.source_path}"

    def save(self, *args, **kwargs) -> None:
        self._ensure_editable()
        # Stored filled in, so the database's unique constraint sees the real output name.
        self.output_name = self.output_name or self.source_path
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._ensure_editable()
        return super().delete(*args, **kwargs)

    def _ensure_editable(self) -> None:
        status = (
            ContractVersion.objects.filter(pk=self.version_id)
            .values_list("status", flat=True)
            .first()
        )
        if status is not None and status not in EDITABLE_STATUSES:
            raise ImmutableVersionError(f"rules of a {status} version cannot be changed")

    @property
    def output_path(self) -> str:
        return self.output_name or self.source_path


class ProposalKind(models.TextChoices):
    RETIRE_VERSION = "retire_version", "retire a version"
    DEPRECATE_MAJOR = "deprecate_major", "deprecate and sunset a major"


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "pending"
    CONFIRMED = "confirmed", "confirmed"
    DECLINED = "declined", "declined"
    WITHDRAWN = "withdrawn", "withdrawn"


class LifecycleProposalQuerySet(models.QuerySet):
    def pending(self, kind: str, **target) -> LifecycleProposalQuerySet:
        """The pending proposals of ``kind`` for ``target`` (a ``version=`` or a ``major=``)."""
        return self.filter(kind=kind, status=ProposalStatus.PENDING, **target)


class LifecycleProposal(models.Model):
    """A proposed change to what a major serves (retire a version, deprecate or sunset a
    major), applied only when a release manager other than the proposer confirms it."""

    kind = models.CharField(max_length=32, choices=ProposalKind.choices)
    major = models.ForeignKey(MajorVersion, on_delete=models.PROTECT, related_name="proposals")
    version = models.ForeignKey(
        ContractVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="proposals"
    )
    sunset_at = models.DateTimeField(null=True, blank=True)
    effect = models.TextField(help_text="What clients will receive once it is confirmed.")
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.PENDING
    )
    proposer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="lifecycle_proposals"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reviewed_lifecycle_proposals",
    )
    review_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    objects = LifecycleProposalQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reviewer=F("proposer")), name="proposal_not_confirmed_by_proposer"
            ),
            models.UniqueConstraint(
                fields=["version"],
                condition=Q(status="pending", kind="retire_version"),
                name="proposal_one_pending_retirement",
            ),
            models.UniqueConstraint(
                fields=["major"],
                condition=Q(status="pending", kind="deprecate_major"),
                name="proposal_one_pending_deprecation",
            ),
        ]

    def __str__(self) -> str:
        target = self.version.label if self.version_id else self.major.label
        return f"{self.major.endpoint}: {self.get_kind_display()} {target} ({self.status})"


class RegistryState(models.Model):
    """A single row whose generation grows with every registry change, for cheap polling."""

    generation = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="registry_state_single_row")]

    def __str__(self) -> str:
        return f"registry generation {self.generation}"


# The registry API's tables live with the API; imported here so Django finds them.
from contracts.api.models import ApiToken, Webhook, WebhookDelivery  # noqa: E402, F401
