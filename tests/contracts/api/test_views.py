"""The registry API's reads, check, propose and review, through DRF's test client."""

from __future__ import annotations

import pytest

from aggregation import endpoints
from contract_core import declarations
from contracts.models import ContractVersion, Status
from tests.contracts import code_doubles
from tests.contracts.api.conftest import API, TokenClient

pytestmark = pytest.mark.django_db


def declared(specs) -> dict:
    return {"endpoints": declarations.dump_all(specs.values())}


def test_reads_list_the_registry(token_for) -> None:
    api = token_for("mobile-dev", "read")
    clients = api.get(f"{API}/clients").json()
    assert [c["name"] for c in clients["results"]] == ["mobile", "partner", "web"]
    majors = api.get(f"{API}/majors", {"client": "partner", "endpoint": "product"}).json()
    assert [(m["number"], m["lifecycle"]) for m in majors["results"]] == [
        (1, "deprecated"), (2, "live")]  # fmt: skip
    versions = api.get(f"{API}/versions", {"client": "mobile", "status": "submitted"}).json()
    assert versions["count"] == 1


def test_version_detail_has_rules_diff_and_history(token_for) -> None:
    api = token_for("mobile-dev", "read")
    proposal = ContractVersion.objects.get(status=Status.SUBMITTED)
    body = api.get(f"{API}/versions/{proposal.pk}").json()
    assert {"section": "user", "source": "loyaltyPoints", "output": "loyaltyPoints",
            "jsonType": "integer"} in body["rules"]  # fmt: skip
    assert body["diff"]["against"] == "v1.0"
    assert body["diff"]["compatibility"] == "additive"
    assert [c["path"] for c in body["diff"]["changes"]] == ["user.loyaltyPoints"]
    assert body["history"][-1]["status"] == "submitted"
    assert body["history"][-1]["user"] == "mobile-dev"


def test_check_equals_the_local_gate(token_for) -> None:
    api = token_for("mobile-dev", "check")
    ok = api.post(f"{API}/check", declared(endpoints.ENDPOINTS), format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json() == {"ok": True, "findings": []}
    broken = api.post(f"{API}/check", declared(code_doubles.BREAKING), format="json").json()
    assert broken["ok"] is False
    assert [f["contract"] for f in broken["findings"]] == ["mobile/home v1"]


def test_wrong_token_is_401_and_missing_scope_403(token_for) -> None:
    assert TokenClient("bffreg_nope").get(f"{API}/clients").status_code == 401
    assert TokenClient().get(f"{API}/clients").status_code == 401
    checker = token_for("mobile-dev", "check")
    response = checker.get(f"{API}/clients")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


def propose_body(specs, key=("mobile", "home"), major=None) -> dict:
    return {"declaration": declarations.dump(specs[key]), "major": major}


def test_a_propose_token_records_a_proposal_in_the_review_queue(token_for, client, manager):
    api = token_for("mobile-dev", "propose")
    response = api.post(f"{API}/proposals", propose_body(code_doubles.ADDITIVE), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"]["status"] == "submitted"
    assert body["version"]["author"] == "mobile-dev"
    assert [c["kind"] for c in body["changes"]] == ["became_non_nullable"]
    version = ContractVersion.objects.get(pk=body["version"]["id"])
    # The audit history names the token's owner, as for an admin action.
    assert {r.history_user.username for r in version.history.all()} == {"mobile-dev"}
    client.force_login(manager)
    queue = client.get("/admin/contracts/reviewqueue/")
    assert queue.status_code == 200
    assert f"/admin/contracts/contractversion/{version.pk}/" in queue.content.decode()


def test_a_breaking_proposal_in_a_live_major_is_refused_and_nothing_is_written(token_for):
    api = token_for("mobile-dev", "propose")
    before = ContractVersion.objects.count()
    response = api.post(f"{API}/proposals", propose_body(code_doubles.BREAKING, major=1),
                        format="json")  # fmt: skip
    assert response.status_code == 409
    assert "breaks v1" in response.json()["error"]["message"]
    assert ContractVersion.objects.count() == before


def test_a_check_token_can_neither_propose_nor_review(token_for) -> None:
    api = token_for("release-manager", "check", "read")
    proposal = ContractVersion.objects.get(status=Status.SUBMITTED)
    assert api.post(f"{API}/proposals", propose_body(code_doubles.ADDITIVE),
                    format="json").status_code == 403  # fmt: skip
    response = api.post(f"{API}/versions/{proposal.pk}/approve", {}, format="json")
    assert response.status_code == 403
    assert "'review' scope" in response.json()["error"]["message"]
    assert ContractVersion.objects.get(pk=proposal.pk).status == Status.SUBMITTED


def test_a_release_manager_cannot_approve_their_own_proposal(token_for, demo) -> None:
    manager = demo.get(username="release-manager")
    manager.groups.add(*__import__("django.contrib.auth.models", fromlist=["Group"]).Group
                       .objects.filter(name="mobile frontend team"))  # fmt: skip
    proposer = token_for("release-manager", "propose", "review")
    created = proposer.post(f"{API}/proposals", propose_body(code_doubles.ADDITIVE),
                            format="json").json()["version"]  # fmt: skip
    response = proposer.post(f"{API}/versions/{created['id']}/approve", {"comment": "lgtm"},
                             format="json")  # fmt: skip
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "nobody approves a version they authored"
    assert ContractVersion.objects.get(pk=created["id"]).status == Status.SUBMITTED


def test_a_review_token_approves_and_rejects_with_the_admins_rules(token_for) -> None:
    reviewer = token_for("release-manager", "review")
    proposal = ContractVersion.objects.get(status=Status.SUBMITTED)
    missing = reviewer.post(f"{API}/versions/{proposal.pk}/reject", {}, format="json")
    assert missing.status_code == 400
    assert "comment" in missing.json()["error"]["message"]
    approved = reviewer.post(f"{API}/versions/{proposal.pk}/approve", {"comment": "ok"},
                             format="json")  # fmt: skip
    assert approved.status_code == 200
    assert approved.json()["version"] == "1.1"
    assert approved.json()["approver"] == "release-manager"
    again = reviewer.post(f"{API}/versions/{proposal.pk}/reject", {"comment": "no"},
                          format="json")  # fmt: skip
    assert again.status_code == 409
    assert "only submitted versions" in again.json()["error"]["message"]
    assert ContractVersion.objects.get(pk=proposal.pk).status == Status.APPROVED


def test_a_developer_review_token_cannot_approve(token_for) -> None:
    api = token_for("web-dev", "review")
    proposal = ContractVersion.objects.get(status=Status.SUBMITTED)
    response = api.post(f"{API}/versions/{proposal.pk}/approve", {}, format="json")
    assert response.status_code == 403
    assert "release managers" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["declaration"].update(client="tablet"), "declaration.client"),
        (lambda b: b["declaration"]["sections"][0].update(kind="tree"),
         "declaration.sections[0].kind"),
        (lambda b: b["declaration"]["sections"][0]["source"]["fields"][0]["kind"].update(
            types=["strng"]), "declaration.sections[0].source.fields[0].kind.types[0]"),
        (lambda b: b["declaration"].pop("sections"), "declaration.sections"),
        (lambda b: b.update(major=0), "major"),
    ],
)  # fmt: skip
def test_malformed_input_is_a_400_naming_the_field(token_for, mutate, field) -> None:
    api = token_for("mobile-dev", "propose")
    body = propose_body(endpoints.ENDPOINTS)
    mutate(body)
    before = ContractVersion.objects.count()
    response = api.post(f"{API}/proposals", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert f"{field}:" in error["message"]
    assert ContractVersion.objects.count() == before


def test_oversized_deep_or_broken_bodies_are_400_naming_the_body(token_for) -> None:
    api = token_for("mobile-dev", "check")
    huge = b'{"endpoints": [' + b'" ",' * 200_000 + b'" "]}'
    deep = b'{"endpoints": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for raw in (huge, deep, b"{not json", b"\xff\xfe"):
        response = api.generic("POST", f"{API}/check", raw, content_type="application/json")
        assert response.status_code == 400, (raw[:20], response.content)
        assert response.json()["error"]["message"].startswith("body:")


def test_unknown_filters_are_400_naming_them(token_for) -> None:
    api = token_for("mobile-dev", "read")
    response = api.get(f"{API}/versions", {"client": "tablet"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid input: client: unknown client 'tablet'"
    response = api.get(f"{API}/majors", {"client": "mobile", "endpoint": "dashboard"})
    assert "endpoint: unknown endpoint 'dashboard'" in response.json()["error"]["message"]
    assert api.get(f"{API}/versions/999999").status_code == 404


def test_a_client_restricted_token_sees_and_proposes_only_its_client(token_for) -> None:
    api = token_for("mobile-dev", "read", "propose", client="mobile")
    assert [c["name"] for c in api.get(f"{API}/clients").json()["results"]] == ["mobile"]
    web = ContractVersion.objects.filter(major__endpoint__client__name="web").first()
    assert api.get(f"{API}/versions/{web.pk}").status_code == 404
    body = propose_body(endpoints.ENDPOINTS, key=("web", "dashboard"))
    assert api.post(f"{API}/proposals", body, format="json").status_code == 403


def test_json_schema_and_export_match_the_export_command(token_for) -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("contracts", "export", stdout=out)
    api = token_for("web-dev", "read")
    assert api.get(f"{API}/export").json() == json.loads(out.getvalue())
    v1 = ContractVersion.objects.get(major__endpoint__name="home", minor=0)
    schema = api.get(f"{API}/versions/{v1.pk}/schema").json()
    assert schema == json.loads(out.getvalue())["mobile"]["home"]["1.0"]


def test_the_surface_openapi_document_is_served(token_for) -> None:
    api = token_for("web-dev", "read")
    document = api.get(f"{API}/clients/partner/v2/openapi").json()
    assert document["openapi"] == "3.1.0"
    assert "/partner/v2/products" in document["paths"]
    assert api.get(f"{API}/clients/partner/v7/openapi").status_code == 404


def test_staff_browse_the_api_in_html_others_get_json(client, manager, token_for) -> None:
    manager.is_staff = True
    manager.save()
    client.force_login(manager)
    page = client.get(f"{API}/versions", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    api = token_for("mobile-dev", "read")
    assert api.get(f"{API}/versions", HTTP_ACCEPT="text/html").status_code == 406
