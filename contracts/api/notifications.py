"""Registry events told to the outside: signed webhooks and an email to release managers.

Events (submitted, approved, rejected, retired for versions; deprecated for majors) are
read off the audit history as it is written, so the admin, the API, the commands and the
seed all announce them without knowing about this module. Each matching webhook gets a
``WebhookDelivery`` row in the same transaction (the admin's delivery log); the posts and
the email happen after commit on a background thread, so no request waits for a receiver.

A delivery is Slack-compatible JSON (a ``text`` line, plus the event's details), signed
like GitHub's webhooks: ``X-Registry-Signature: sha256=<HMAC-SHA256 of the body with the
webhook's secret>``. Network errors, 5xx, 408 and 429 are retried with exponential backoff
up to the webhook's ``max_attempts``; any other answer is final.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from django.core.mail import send_mail
from django.db import close_old_connections, connection, transaction
from django.dispatch import receiver
from django.utils import timezone
from simple_history.signals import post_create_historical_record

from contracts import roles
from contracts.api.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Registry-Signature"
EVENT_HEADER = "X-Registry-Event"
DELIVERY_HEADER = "X-Registry-Delivery"
RETRYABLE_STATUSES = frozenset({408, 429})
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
TIMEOUT_SECONDS = 5.0

# A version's status change, as (before, after), and the event it is.
VERSION_EVENTS = {
    ("draft", "submitted"): WebhookEvent.SUBMITTED,
    ("submitted", "approved"): WebhookEvent.APPROVED,
    ("submitted", "rejected"): WebhookEvent.REJECTED,
    ("approved", "retired"): WebhookEvent.RETIRED,
}


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _start_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="registry-notifications", daemon=True).start()


class Dispatcher:
    """Posts deliveries and sends emails; ``start``, ``sleep`` and ``transport`` are
    swappable so tests can run it inline against a local receiver."""

    start: Callable[[Callable[[], None]], None] = staticmethod(_start_thread)
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    transport: httpx.BaseTransport | None = None

    def after_commit(self, delivery_ids: list[int], email: dict[str, Any] | None) -> None:
        def work() -> None:
            background = threading.current_thread() is not threading.main_thread()
            if background:
                # A fresh thread's connection; never on the caller's thread, where it would
                # close a connection inside the caller's transaction (PostgreSQL).
                close_old_connections()
            try:
                for delivery_id in delivery_ids:
                    self.deliver(delivery_id)
                if email is not None:
                    self.send_email(**email)
            finally:
                if background:
                    connection.close()

        transaction.on_commit(lambda: self.start(work))

    def deliver(self, delivery_id: int) -> WebhookDelivery:
        delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
        webhook = delivery.webhook
        body = orjson.dumps(delivery.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "bff-contract-registry",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.pk),
            SIGNATURE_HEADER: sign(webhook.secret, body),
        }
        with httpx.Client(transport=self.transport, timeout=TIMEOUT_SECONDS) as client:
            while delivery.attempts < max(1, webhook.max_attempts):
                delivery.attempts += 1
                retry = self._attempt(client, webhook.url, body, headers, delivery)
                if not retry:
                    break
                if delivery.attempts < webhook.max_attempts:
                    delivery.save(update_fields=["attempts", "response_status", "last_error"])
                    self.sleep(
                        min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** (delivery.attempts - 1))
                    )
        if delivery.status == DeliveryStatus.PENDING:
            delivery.status = DeliveryStatus.FAILED
        delivery.finished_at = timezone.now()
        delivery.save()
        if delivery.status == DeliveryStatus.FAILED:
            logger.warning(
                "webhook delivery failed",
                extra={
                    "webhook": webhook.name,
                    "event": delivery.event,
                    "attempts": delivery.attempts,
                    "error": delivery.last_error,
                },
            )
        return delivery

    def _attempt(
        self, client: httpx.Client, url: str, body: bytes, headers: dict, delivery: WebhookDelivery
    ) -> bool:
        """One post; True when it is worth trying again."""
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            delivery.response_status = None
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
            return True
        delivery.response_status = response.status_code
        if response.is_success:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.last_error = ""
            return False
        delivery.last_error = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES:
            return True
        delivery.status = DeliveryStatus.FAILED
        return False

    def send_email(self, *, subject: str, body: str, recipients: list[str]) -> None:
        try:
            send_mail(subject, body, None, recipients)
        except Exception:  # noqa: BLE001 - a mail outage must not fail the registry
            logger.warning("release manager email failed", exc_info=True)


dispatcher = Dispatcher()


def payload(event: str, text: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"text": text, "event": event, "sentAt": timezone.now().isoformat(), **details}


def announce(
    event: str, client: str, text: str, details: dict[str, Any], email: dict[str, Any] | None = None
) -> list[int]:
    """Record a delivery per interested webhook and post them all after commit."""
    body = payload(event, text, details)
    ids = [
        WebhookDelivery.objects.create(webhook=webhook, event=event, payload=body).pk
        for webhook in Webhook.objects.filter(active=True).select_related("client")
        if webhook.wants(event, client)
    ]
    if ids or email is not None:
        dispatcher.after_commit(ids, email)
    return ids


def release_manager_emails() -> list[str]:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(is_active=True, groups__name=roles.RELEASE_MANAGERS)
    return sorted({user.email for user in users if user.email})


@receiver(post_create_historical_record, dispatch_uid="registry-version-events")
def _on_history(sender, instance, history_instance, **kwargs) -> None:
    from contracts.models import ContractVersion, MajorVersion

    if isinstance(instance, ContractVersion):
        _version_event(sender, instance, history_instance)
    elif isinstance(instance, MajorVersion):
        _major_event(sender, instance, history_instance)


def _previous(sender, instance, history_instance):
    return (
        sender.objects.filter(id=instance.pk, history_id__lt=history_instance.history_id)
        .order_by("-history_id")
        .first()
    )


def _version_event(sender, version, history_instance) -> None:
    previous = _previous(sender, version, history_instance)
    if previous is None:
        return
    event = VERSION_EVENTS.get((previous.status, version.status))
    if event is None:
        return
    endpoint = version.major.endpoint
    contract = f"{endpoint.client.name}/{endpoint.name} {version.major.label}"
    who = getattr(history_instance.history_user, "username", None) or "someone"
    label = version.schema_version or f"#{version.pk}"
    texts = {
        WebhookEvent.SUBMITTED: f"{contract}: {who} submitted #{version.pk} for review"
        + (f" ({version.change_summary})" if version.change_summary else ""),
        WebhookEvent.APPROVED: f"{contract}: {who} approved v{label}",
        WebhookEvent.REJECTED: f"{contract}: {who} rejected #{version.pk}: "
        f"{version.review_comment}",
        WebhookEvent.RETIRED: f"{contract}: {who} retired v{label}",
    }
    review_path = f"/admin/contracts/contractversion/{version.pk}/review/"
    details = {
        "client": endpoint.client.name,
        "endpoint": endpoint.name,
        "major": version.major.number,
        "version": version.schema_version,
        "versionId": version.pk,
        "status": version.status,
        "by": who,
        "summary": version.change_summary,
        "comment": version.review_comment,
        "reviewPath": review_path,
    }
    email = None
    if event == WebhookEvent.SUBMITTED:
        recipients = release_manager_emails()
        if recipients:
            email = {
                "subject": f"[contract registry] {contract} #{version.pk} awaits review",
                "body": f"{texts[event]}.\n\nReview it at {review_path}\n",
                "recipients": recipients,
            }
    announce(event, endpoint.client.name, texts[event], details, email)


def _major_event(sender, major, history_instance) -> None:
    previous = _previous(sender, major, history_instance)
    if previous is None or previous.deprecated_at is not None or major.deprecated_at is None:
        return
    endpoint = major.endpoint
    who = getattr(history_instance.history_user, "username", None) or "someone"
    sunset = major.sunset_at.isoformat() if major.sunset_at else None
    until = f", sunset {sunset}" if sunset else ""
    text = f"{endpoint.client.name}/{endpoint.name} v{major.number}: {who} deprecated it{until}"
    announce(
        WebhookEvent.DEPRECATED,
        endpoint.client.name,
        text,
        {
            "client": endpoint.client.name,
            "endpoint": endpoint.name,
            "major": major.number,
            "by": who,
            "sunsetAt": sunset,
        },
    )
