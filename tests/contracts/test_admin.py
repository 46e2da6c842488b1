"""The registry's admin as each role uses it, including crafted and malformed input."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from aggregation import endpoints as demo_endpoints
from contracts.models import ContractVersion, Endpoint, FieldRule, Status
from contracts.serving import registry
from tests.contracts.test_gate import code

PASSWORDS = {
    "mobile-dev": "mobile-demo-password",
    "web-dev": "web-demo-password",
    "release-manager": "release-demo-password",
    "admin": "admin-demo-password",
}


def login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORDS[username])
    return client


def change_url(version: ContractVersion) -> str:
    return reverse("admin:contracts_contractversion_change", args=[version.pk])


def form_data(response) -> dict[str, str]:
    """The POST body the admin's change form would send, as rendered."""
    data = {"change_summary": response.context["adminform"].form.initial.get("change_summary", "")}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, field in formset.management_form.fields.items():
            value = formset.management_form.initial.get(name, field.initial)
            data[f"{formset.prefix}-{name}"] = "" if value is None else str(value)
        # Only the rendered rules; the empty extra rows are left out, as a browser would.
        data[f"{formset.prefix}-TOTAL_FORMS"] = str(len(formset.initial_forms))
        for form in formset.initial_forms:
            for name in form.fields:
                value = form.initial.get(name, form.fields[name].initial)
                if name == "field" and form.instance.pk:
                    value = f"{form.instance.section}:{form.instance.source_path}"
                if name == "DELETE":
                    continue
                data[form.add_prefix(name)] = "" if value is None else str(value)
    return data


def add_rule(data: dict[str, str], field: str, output: str = "") -> dict[str, str]:
    index = int(data["rules-TOTAL_FORMS"])
    data[f"rules-{index}-field"] = field
    data[f"rules-{index}-output_name"] = output
    data[f"rules-{index}-position"] = "0"
    data["rules-TOTAL_FORMS"] = str(index + 1)
    return data


@pytest.fixture
def draft(demo) -> ContractVersion:
    """A fresh draft of mobile/home v1, created through the admin by the mobile team."""
    client = login("mobile-dev")
    endpoint = Endpoint.objects.get(client__name="mobile", name="home")
    response = client.post(
        reverse("admin:contracts_contractversion_add"),
        {"endpoint": endpoint.pk, "summary": "add email"},
    )
    assert response.status_code == 302, response.content
    return ContractVersion.objects.get(status=Status.DRAFT, major__endpoint=endpoint)


def test_end_to_end_flow_from_draft_to_served_version(
    draft, django_capture_on_commit_callbacks
) -> None:
    dev = login("mobile-dev")
    page = dev.get(change_url(draft))
    assert page.status_code == 200
    assert b"user.avatarUrl (string|null)" in page.content  # the field picker
    # Declared, offered, labelled: internal and personal fields say so in the picker.
    assert "user.fraudScore (number) · internal".encode() in page.content
    assert "user.email (string) · personal data".encode() in page.content
    assert b"contract-preview" in page.content
    assert b"Sample payload" in page.content or b"preview-size" in page.content

    preview = dev.post(
        reverse("admin:contracts_contractversion_preview", args=[draft.pk]),
        data={"rules": [{"field": "user:userId"}, {"field": "user:email"}]},
        content_type="application/json",
    ).json()
    assert preview["payload"]["user"] == {"userId": "usr_9821", "email": "tara.9821@example.com"}
    assert 0 < preview["payloadBytes"] < preview["rawBytes"]

    # Submit posts the change form: the rule added but not yet saved is saved, then submitted.
    response = dev.post(change_url(draft), {**add_rule(form_data(page), "user:email"),
                                            "_submit": "1"})  # fmt: skip
    assert response.status_code == 302, response.context and response.context.get("errors")
    assert draft.rules.filter(section="user", source_path="email").exists()
    draft.refresh_from_db()
    assert draft.status == Status.SUBMITTED
    assert [c["kind"] for c in draft.diff] == ["field_added"]

    manager = login("release-manager")
    queue = manager.get(reverse("admin:contracts_reviewqueue_changelist"))
    assert f"/admin/contracts/contractversion/{draft.pk}/review/".encode() in queue.content
    review_url = reverse("admin:contracts_contractversion_review", args=[draft.pk])
    review = manager.get(review_url)
    assert b"field_added" in review.content and b"user.email" in review.content
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(review_url, {"decision": "approve", "comment": "fine"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.schema_version) == (Status.APPROVED, "1.1")
    served = registry.get("mobile", "home", 1)
    assert served.schema_version == "1.1"
    assert "email" in served.plan.project("user", {"userId": "u", "email": "e"})[0]


def test_frontend_team_sees_only_its_own_client(demo) -> None:
    web_version = ContractVersion.objects.filter(major__endpoint__client__name="web").first()
    dev = login("mobile-dev")
    listing = dev.get(reverse("admin:contracts_contractversion_changelist"))
    assert b"mobile/home" in listing.content
    assert b"web/dashboard" not in listing.content
    assert dev.get(change_url(web_version)).status_code == 302  # "does not exist" redirect
    assert (
        dev.get(
            reverse("admin:contracts_contractversion_review", args=[web_version.pk])
        ).status_code
        == 404
    )


def test_crafted_post_for_another_clients_endpoint_is_a_form_error(demo) -> None:
    web = Endpoint.objects.get(client__name="web")
    response = login("mobile-dev").post(
        reverse("admin:contracts_contractversion_add"), {"endpoint": web.pk}
    )
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not ContractVersion.objects.filter(status=Status.DRAFT).exists()


def test_frontend_team_cannot_approve(demo) -> None:
    submitted = ContractVersion.objects.get(status=Status.SUBMITTED)
    response = login("web-dev").post(
        reverse("admin:contracts_contractversion_review", args=[submitted.pk]),
        {"decision": "approve"},
    )
    assert response.status_code in (403, 404)
    submitted.refresh_from_db()
    assert submitted.status == Status.SUBMITTED


def test_author_cannot_approve_their_own_version(demo) -> None:
    from django.contrib.auth.models import Group

    submitted = ContractVersion.objects.get(status=Status.SUBMITTED)
    submitted.author.groups.add(Group.objects.get(name="release managers"))
    response = login("mobile-dev").post(
        reverse("admin:contracts_contractversion_review", args=[submitted.pk]),
        {"decision": "approve"},
    )
    assert response.status_code == 200
    assert b"nobody approves a version they authored" in response.content
    submitted.refresh_from_db()
    assert submitted.status == Status.SUBMITTED


@pytest.mark.parametrize("username", ["mobile-dev", "release-manager", "admin"])
def test_nobody_edits_an_approved_version_through_the_admin(demo, username) -> None:
    approved = ContractVersion.objects.get(major__endpoint__name="home", status=Status.APPROVED)
    before = list(approved.rules.values_list("section", "source_path", "output_name"))
    client = login(username)
    page = client.get(change_url(approved))
    assert page.status_code == 200
    assert b'name="rules-0-field"' not in page.content
    crafted = {
        "change_summary": "hacked",
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
        "rules-0-field": "user:fraudScore",
        "rules-0-output_name": "",
        "rules-0-position": "0",
    }
    response = client.post(change_url(approved), crafted)
    assert response.status_code == 403
    approved.refresh_from_db()
    assert approved.change_summary != "hacked"
    assert list(approved.rules.values_list("section", "source_path", "output_name")) == before


@pytest.mark.parametrize(
    ("field", "output", "message"),
    [
        ("user:notAField", "", b"Select a valid choice"),
        ("user:fraudScore", "bad name!", b"bad name!"),
        ("user:email", "avatarUrl", b"two rules write the output"),
        ("user:address", "", b"Select a valid choice"),
    ],
    ids=["unknown-field", "malformed-output", "rename-collides", "whole-object"],
)
def test_bad_rules_are_form_errors(draft, field, output, message) -> None:
    dev = login("mobile-dev")
    page = dev.get(change_url(draft))
    response = dev.post(change_url(draft), add_rule(form_data(page), field, output))
    assert response.status_code == 200
    assert message in response.content
    assert not draft.rules.filter(section="user", source_path=field.split(":")[1]).exists()


def test_duplicate_output_name_is_a_form_error(draft) -> None:
    dev = login("mobile-dev")
    data = add_rule(form_data(dev.get(change_url(draft))), "user:displayName")
    response = dev.post(change_url(draft), data)
    assert response.status_code == 200
    assert b"two rules write the output" in response.content


def test_breaking_change_in_same_major_is_refused_on_submit(draft) -> None:
    dev = login("mobile-dev")
    data = form_data(dev.get(change_url(draft)))
    avatar = FieldRule.objects.get(version=draft, section="user", source_path="avatarUrl")
    index = next(
        k.split("-")[1] for k, v in data.items() if k.endswith("-id") and v == str(avatar.pk)
    )
    data[f"rules-{index}-DELETE"] = "on"
    response = dev.post(change_url(draft), {**data, "_submit": "1"}, follow=True)
    assert b"Saved, not submitted: breaking changes cannot go into v1" in response.content
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


def test_preview_rejects_garbage_without_a_500(draft) -> None:
    dev = login("mobile-dev")
    url = reverse("admin:contracts_contractversion_preview", args=[draft.pk])
    assert dev.post(url, data=b"not json", content_type="application/json").status_code == 400
    body = dev.post(
        url, data={"rules": [{"field": "user:nope"}]}, content_type="application/json"
    ).json()
    assert "nope" in body["error"]


def test_history_is_visible_in_the_admin(demo) -> None:
    approved = ContractVersion.objects.get(major__endpoint__name="home", status=Status.APPROVED)
    page = login("release-manager").get(
        reverse("admin:contracts_contractversion_history", args=[approved.pk])
    )
    assert page.status_code == 200
    assert b"release-manager" in page.content
    change_page = login("release-manager").get(change_url(approved))
    assert b"rule added: user.avatarUrl" in change_page.content


def test_a_rule_is_remapped_after_an_upstream_rename_and_reviewed_as_a_remap(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    code(settings, "RENAMED_UPSTREAM")  # the service now sends profileImageUrl
    dev = login("mobile-dev")
    endpoint = Endpoint.objects.get(client__name="mobile", name="home")
    dev.post(reverse("admin:contracts_contractversion_add"),
             {"endpoint": endpoint.pk, "summary": "follow the rename"})  # fmt: skip
    draft = ContractVersion.objects.get(status=Status.DRAFT, major__endpoint=endpoint)
    page = dev.get(change_url(draft))
    # The avatar rule's picker offers, first, the fields that feed its output unchanged.
    group = re.search(
        r'<optgroup label="Remap: fields that can feed avatarUrl unchanged">(.*?)</optgroup>',
        page.content.decode(),
        re.S,
    )
    assert group is not None
    offered = re.findall(r'value="([^"]+)"', group.group(1))
    assert "user:profileImageUrl" in offered
    assert "user:fraudScore" not in offered  # a number cannot feed a string
    assert "user:displayName" not in offered  # another rule reads it already

    rules = [{"field": f"{r.section}:{r.source_path}", "output": r.output_name}
             for r in draft.rules.all() if r.source_path != "avatarUrl"]  # fmt: skip
    remapped = [*rules, {"field": "user:profileImageUrl", "output": "avatarUrl"}]
    shown = dev.post(reverse("admin:contracts_contractversion_preview", args=[draft.pk]),
                     data={"rules": remapped}, content_type="application/json").json()  # fmt: skip
    sample = demo_endpoints.USER.sample
    assert shown["payload"]["user"]["avatarUrl"] == sample["avatarUrl"]
    assert "profileImageUrl" not in shown["payload"]["user"]
    assert [c["kind"] for c in shown["changes"]] == ["remap"]

    data = form_data(page)
    avatar = FieldRule.objects.get(version=draft, source_path="avatarUrl")
    index = next(
        k.split("-")[1] for k, v in data.items() if k.endswith("-id") and v == str(avatar.pk)
    )
    data[f"rules-{index}-field"] = "user:profileImageUrl"  # the output name is left empty
    # Save and submit in one post, as the change form's Submit button sends it.
    response = dev.post(change_url(draft), {**data, "_submit": "1"})
    assert response.status_code == 302, response.context and response.context.get("errors")
    avatar.refresh_from_db()
    assert (avatar.source_path, avatar.output_name) == ("profileImageUrl", "avatarUrl")
    draft.refresh_from_db()
    assert draft.status == Status.SUBMITTED
    assert [(c["kind"], c["compatibility"]) for c in draft.diff] == [("remap", "additive")]
    manager = login("release-manager")
    review_url = reverse("admin:contracts_contractversion_review", args=[draft.pk])
    review = manager.get(review_url).content.decode()
    assert 'class="change-additive kind-remap"' in review
    assert "now fed from `profileImageUrl` instead of `avatarUrl`" in review
    with django_capture_on_commit_callbacks(execute=True):
        manager.post(review_url, {"decision": "approve", "comment": "same JSON"})
    assert registry.get("mobile", "home", 1).schema_version == "1.1"


def test_retiring_through_the_admin_is_a_proposal_another_manager_confirms(
    demo, django_capture_on_commit_callbacks
) -> None:
    v1 = ContractVersion.objects.get(major__endpoint__name="home", status=Status.APPROVED)
    url = reverse("admin:contracts_contractversion_retire", args=[v1.pk])
    manager = login("release-manager")
    page = manager.get(url)
    assert b"v1 will have no servable version: its URLs will answer 503" in page.content
    response = manager.post(url, {"step": "propose", "reason": "moving on"}, follow=True)
    assert b"withdraw-proposal-button" in response.content
    assert b"confirm-button" not in response.content
    v1.refresh_from_db()
    assert v1.status == Status.APPROVED
    with django_capture_on_commit_callbacks(execute=True):
        login("admin").post(url, {"step": "confirm"})
    v1.refresh_from_db()
    assert v1.status == Status.RETIRED
    assert registry.get("mobile", "home", 1) is None


def test_a_team_member_can_neither_propose_nor_confirm_lifecycle_changes(demo) -> None:
    v1 = ContractVersion.objects.get(major__endpoint__name="home", status=Status.APPROVED)
    response = login("mobile-dev").post(
        reverse("admin:contracts_contractversion_retire", args=[v1.pk]), {"step": "propose"}
    )
    assert response.status_code == 403
    assert b"Not allowed" in response.content


def test_a_deprecation_is_proposed_with_the_date_picker_and_confirmed_by_another_manager(
    demo,
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from contracts.models import MajorVersion

    major = MajorVersion.objects.get(endpoint__client__name="partner", endpoint__name="products",
                                     number=1)  # fmt: skip
    url = reverse("admin:contracts_majorversion_deprecate", args=[major.pk])
    manager = login("release-manager")
    assert b'type="datetime-local"' in manager.get(url).content
    sunset = timezone.now() + timedelta(days=400)
    past = manager.post(url, {"step": "propose", "sunset_at": "2020-01-01T00:00"}, follow=True)
    assert b"the sunset must be in the future" in past.content
    response = manager.post(
        url, {"step": "propose", "sunset_at": sunset.strftime("%Y-%m-%dT%H:%M")}, follow=True
    )
    assert b"will answer 410" in response.content
    major.refresh_from_db()
    assert major.sunset_at.date() != sunset.date()  # unchanged until confirmed
    login("admin").post(url, {"step": "confirm", "comment": "ok"})
    major.refresh_from_db()
    assert major.sunset_at.date() == sunset.date()
    history = login("admin").get(reverse("admin:contracts_majorversion_history", args=[major.pk]))
    assert b"confirmed by admin" in history.content
    assert b"Deleted user" not in history.content


def test_history_shows_an_empty_user_as_a_dash_not_a_deleted_user(demo) -> None:
    approved = ContractVersion.objects.get(major__endpoint__name="home", status=Status.APPROVED)
    page = login("release-manager").get(
        reverse("admin:contracts_contractversion_history", args=[approved.pk])
    )
    assert re.search(rb"Approver:</strong>\s*-\s*(?:&nbsp;)?&rarr;", page.content)
    assert b"Deleted user" not in page.content


def test_the_team_withdraws_a_submission_from_the_change_page(demo) -> None:
    submitted = ContractVersion.objects.get(status=Status.SUBMITTED)
    dev = login("mobile-dev")
    page = dev.get(change_url(submitted))
    assert b'id="withdraw-button"' in page.content
    assert b'name="_save"' not in page.content  # read-only: no pointless Save
    workflow = reverse("admin:contracts_contractversion_workflow", args=[submitted.pk])
    assert login("web-dev").post(workflow, {"step": "withdraw"}).status_code == 404
    response = dev.post(workflow, {"step": "withdraw"}, follow=True)
    assert b"Withdraw: done" in response.content
    submitted.refresh_from_db()
    assert submitted.status == Status.DRAFT
    assert b'id="submit-for-review-button"' in response.content
