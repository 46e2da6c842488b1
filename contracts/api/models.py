"""The registry API's tables: scoped tokens, webhooks and the webhook delivery log.

Tokens are stored as the SHA-256 digest of a 256-bit random secret. A slow password hash
(PBKDF2, argon2) protects secrets a person chose, which an attacker can guess; nobody can
guess 2**256 values, so a fast digest loses nothing and keeps each API call one indexed
lookup. The secret itself is shown once, when the token is created, and never stored.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "bffreg_"  # noqa: S105 - a marker that makes leaked tokens easy to scan for
DISPLAY_PREFIX_LENGTH = len(TOKEN_PREFIX) + 6


class Scope(models.TextChoices):
    READ = "read", "read: the registry, schemas and documents"
    CHECK = "check", "check: run the deploy gate"
    PROPOSE = "propose", "propose: record a shape for review"
    REVIEW = "review", "review: approve or reject (release managers)"


SCOPES = tuple(Scope.values)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A bearer token of the registry API, owned by a person or a pipeline's account."""

    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'CI deploy gate'.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="registry_tokens",
        help_text="Whose rights it acts with; its writes are recorded under this account.",
    )
    scopes = models.JSONField(default=list)
    client = models.ForeignKey(
        "contracts.Client",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="registry_tokens",
        help_text="Leave empty for every client.",
    )
    rate = models.CharField(
        max_length=20,
        blank=True,
        help_text="Its own rate limit in DRF's form (e.g. 60/min); empty for the default.",
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=DISPLAY_PREFIX_LENGTH, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name = "registry API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.user})"

    @classmethod
    def new_secret(cls) -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    def set_secret(self, secret: str) -> None:
        self.digest = digest(secret)
        self.prefix = secret[:DISPLAY_PREFIX_LENGTH]

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (
            self.expires_at is None or self.expires_at > timezone.now()
        )


class WebhookEvent(models.TextChoices):
    SUBMITTED = "submitted", "a version was submitted for review"
    APPROVED = "approved", "a version was approved"
    REJECTED = "rejected", "a version was rejected"
    DEPRECATED = "deprecated", "a major was deprecated"
    RETIRED = "retired", "a version was retired"


class Webhook(models.Model):
    """Where registry events are posted: Slack-compatible JSON, signed with HMAC-SHA256."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=200,
        help_text="Shared with the receiver, which checks the X-Registry-Signature header "
        "(sha256=HMAC-SHA256 of the body with this secret).",
    )
    events = models.JSONField(default=list, help_text="Events posted; empty for all.")
    client = models.ForeignKey(
        "contracts.Client",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhooks",
        help_text="Only this client's events; empty for every client.",
    )
    active = models.BooleanField(default=True)
    max_attempts = models.PositiveSmallIntegerField(default=5)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def wants(self, event: str, client: str) -> bool:
        return (
            self.active
            and (not self.events or event in self.events)
            and (self.client_id is None or self.client.name == client)
        )


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    DELIVERED = "delivered", "delivered"
    FAILED = "failed", "failed"


class WebhookDelivery(models.Model):
    """One event posted (or being posted) to one webhook: the admin's delivery log."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=20, choices=WebhookEvent.choices)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook} ({self.status})"
