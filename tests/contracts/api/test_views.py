"""The registry API's reads, check, propose and review, through DRF's test client."""

from __future__ import annotations

import pytest

from aggregation import endpoints
from contracts import declarations
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
