"""The registry's management commands: export (JSON Schema) and the demo seed."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from contracts.models import ContractVersion, Status


def export(*args: str) -> str:
    out = StringIO()
    call_command("contracts", "export", *args, stdout=out)
    return out.getvalue()


def test_export_prints_one_json_document_keyed_by_client_endpoint_version(demo) -> None:
    document = json.loads(export())
    assert sorted(document) == ["mobile", "partner", "web"]
    schema = document["mobile"]["home"]["1.0"]
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    user = schema["properties"]["user"]
    assert set(user["properties"]) == {"userId", "displayName", "avatarUrl", "loyaltyTier"}
    assert "fraudScore" not in json.dumps(document)


def test_exported_schemas_are_open_to_added_properties_and_say_so(demo) -> None:
    text = export()
    assert "additionalProperties" not in text
    schema = json.loads(text)["mobile"]["home"]["1.0"]
    assert "open to added properties" in schema["description"]


def test_export_leaves_out_versions_not_approved(demo) -> None:
    assert ContractVersion.objects.filter(status=Status.SUBMITTED).exists()
    document = json.loads(export())
    assert list(document["mobile"]["home"]) == ["1.0"]


def test_export_to_a_directory_writes_one_file_per_version(demo, tmp_path) -> None:
    output = export("--out", str(tmp_path / "schemas"))
    files = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert files == [
        "mobile.home.v1.0.schema.json",
        "partner.product.v1.0.schema.json",
        "partner.product.v2.0.schema.json",
        "partner.products.v1.0.schema.json",
        "partner.products.v2.0.schema.json",
        "web.dashboard.v1.0.schema.json",
    ]
    assert "wrote 6 schema file(s)" in output


def test_export_to_an_unwritable_place_is_a_command_error(demo, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CommandError, match="cannot write"):
        export("--out", str(blocker / "sub"))


def test_seed_creates_the_demo_registry_once(demo) -> None:
    versions = ContractVersion.objects.count()
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert ContractVersion.objects.count() == versions
    assert "created contract" not in out.getvalue()
    statuses = sorted(ContractVersion.objects.values_list("status", flat=True))
    assert statuses == ["approved"] * 6 + ["submitted"]
