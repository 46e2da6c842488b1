"""Webhooks and emails on registry events, delivered to a real local HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from contract_core.schema import Rule
from contracts import services
from contracts.api import notifications
from contracts.api.models import DeliveryStatus, Webhook, WebhookDelivery
from contracts.models import Client, ContractVersion, Endpoint, MajorVersion, Status
from tests.contracts.api.receiver import Receiver

pytestmark = pytest.mark.django_db

SECRET = "webhook-shared-secret"


@pytest.fixture
def inline(monkeypatch):
    """Deliveries run at commit, in this thread, with no real backoff waits."""
    waits: list[float] = []
    monkeypatch.setattr(notifications.Dispatcher, "start", staticmethod(lambda work: work()))
    monkeypatch.setattr(notifications.Dispatcher, "sleep", staticmethod(waits.append))
    return waits


def valid_signature(item: dict) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), item["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(item["headers"]["X-Registry-Signature"], expected)


def submit_mobile_change(demo) -> ContractVersion:
    author = demo.get(username="mobile-dev")
    endpoint = Endpoint.objects.get(client__name="mobile", name="home")
    base = services.latest_approved(endpoint.majors.get(number=1))
    rules = [*services.rules_of(base), Rule("user", "email")]
    draft = services.CreateDraft(author, endpoint, from_version=base, rules=rules,
                                 summary="Show the email").execute()  # fmt: skip
    return services.SubmitForReview(author, draft).execute()


def test_submission_and_approval_are_posted_signed(
    demo, inline, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        Webhook.objects.create(name="slack", url=receiver.url, secret=SECRET)
        with django_capture_on_commit_callbacks(execute=True):
            version = submit_mobile_change(demo)
        with django_capture_on_commit_callbacks(execute=True):
            services.Approve(demo.get(username="release-manager"), version).execute()
        received = receiver.wait_for(2)
    assert [item["headers"]["X-Registry-Event"] for item in received] == ["submitted", "approved"]
    assert all(valid_signature(item) for item in received)
    submitted, approved = receiver.payloads()
    assert submitted["text"].startswith("mobile/home v1: mobile-dev submitted")
    assert approved["text"] == "mobile/home v1: release-manager approved v1.1"
    assert approved["version"] == "1.1"
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_failing_receiver_is_retried_with_backoff_then_logged(
    demo, inline, django_capture_on_commit_callbacks
):
    with Receiver(statuses=(503, 500)) as receiver:
        Webhook.objects.create(name="flaky", url=receiver.url, secret=SECRET, events=["submitted"])
        with django_capture_on_commit_callbacks(execute=True):
            submit_mobile_change(demo)
        receiver.wait_for(3)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 3
    assert inline == [1.0, 2.0]
    assert [item["status"] for item in receiver.received] == [503, 500, 200]


def test_a_refusing_receiver_is_not_retried(demo, inline, django_capture_on_commit_callbacks):
    with Receiver(statuses=(400,)) as receiver:
        Webhook.objects.create(name="strict", url=receiver.url, secret=SECRET)
        with django_capture_on_commit_callbacks(execute=True):
            submit_mobile_change(demo)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, 400)
    assert delivery.last_error.startswith("HTTP 400")


def test_webhooks_get_only_their_events_and_client(
    demo, inline, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        Webhook.objects.create(name="web only", url=receiver.url, secret=SECRET,
                               client=Client.objects.get(name="web"))  # fmt: skip
        Webhook.objects.create(name="rejections", url=receiver.url, secret=SECRET,
                               events=["rejected"])  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            version = submit_mobile_change(demo)
        with django_capture_on_commit_callbacks(execute=True):
            services.Reject(demo.get(username="release-manager"), version,
                            comment="not now").execute()  # fmt: skip
    assert [(d.webhook.name, d.event) for d in WebhookDelivery.objects.all()] == [
        ("rejections", "rejected")]  # fmt: skip
    assert receiver.payloads()[0]["comment"] == "not now"


def test_deprecation_and_retirement_are_announced(demo, inline, django_capture_on_commit_callbacks):
    manager = demo.get(username="release-manager")
    with Receiver() as receiver:
        Webhook.objects.create(name="all", url=receiver.url, secret=SECRET)
        v2 = MajorVersion.objects.get(endpoint__name="product", number=2)
        version = ContractVersion.objects.get(major=v2, status=Status.APPROVED)
        second = demo.get(username="admin")  # retiring needs a second release manager
        proposal = services.ProposeRetirement(manager, version).execute()
        with django_capture_on_commit_callbacks(execute=True):
            services.ConfirmProposal(second, proposal).execute()
        mobile_v1 = MajorVersion.objects.get(endpoint__name="home", number=1)
        draft = services.CreateDraft(demo.get(username="mobile-dev"), mobile_v1.endpoint,
                                     new_major=True,
                                     rules=[Rule("user", "userId")]).execute()  # fmt: skip
        services.SubmitForReview(demo.get(username="mobile-dev"), draft).execute()
        services.Approve(manager, draft).execute()
        sunset = timezone.now() + timedelta(days=45)
        proposal = services.ProposeDeprecation(manager, mobile_v1, sunset_at=sunset).execute()
        with django_capture_on_commit_callbacks(execute=True):
            services.ConfirmProposal(second, proposal).execute()
    events = [p["event"] for p in receiver.payloads()]
    assert events[0] == "retired"
    assert events[-1] == "deprecated"
    assert receiver.payloads()[-1]["major"] == 1


def test_release_managers_get_an_email_on_submission(
    demo, inline, django_capture_on_commit_callbacks
):
    manager = demo.get(username="release-manager")
    manager.email = "rm@example.com"
    manager.save()
    with django_capture_on_commit_callbacks(execute=True):
        version = submit_mobile_change(demo)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["rm@example.com"]
    assert f"#{version.pk} awaits review" in mail.outbox[0].subject
    assert f"/admin/contracts/contractversion/{version.pk}/review/" in mail.outbox[0].body


def test_delivery_is_after_commit_not_during_the_request(
    demo, monkeypatch, django_capture_on_commit_callbacks
):
    started: list = []
    monkeypatch.setattr(notifications.Dispatcher, "start", staticmethod(started.append))
    Webhook.objects.create(name="slack", url="http://127.0.0.1:9/hook", secret=SECRET)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit_mobile_change(demo)
    assert started == []
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
    for callback in callbacks:
        callback()
    assert len(started) == 1


def test_the_admin_shows_webhooks_and_their_read_only_delivery_log(demo, client) -> None:
    client.force_login(demo.get(username="admin"))
    response = client.post("/admin/contracts/webhook/add/", {
        "name": "slack", "url": "https://hooks.example.com/x", "secret": SECRET,
        "events": ["submitted", "approved"], "active": "on", "max_attempts": "3",
        "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    webhook = Webhook.objects.get()
    assert webhook.events == ["submitted", "approved"]
    delivery = WebhookDelivery.objects.create(webhook=webhook, event="submitted",
                                              payload={"text": "hi"}, status="failed",
                                              attempts=3, last_error="HTTP 500: boom")  # fmt: skip
    page = client.get(f"/admin/contracts/webhook/{webhook.pk}/change/").content.decode()
    assert "HTTP 500: boom" in page
    log = client.get("/admin/contracts/webhookdelivery/")
    assert log.status_code == 200
    assert "failed" in log.content.decode()
    detail = client.post(f"/admin/contracts/webhookdelivery/{delivery.pk}/change/", {})
    assert detail.status_code == 403
    assert client.get("/admin/contracts/webhookdelivery/add/").status_code == 403


def test_a_webhook_form_refuses_a_bad_url_and_attempts(demo, client) -> None:
    client.force_login(demo.get(username="admin"))
    response = client.post("/admin/contracts/webhook/add/", {
        "name": "bad", "url": "not a url", "secret": SECRET, "max_attempts": "50",
        "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    })  # fmt: skip
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"url", "max_attempts"}
    assert not Webhook.objects.exists()
