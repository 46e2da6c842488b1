"""The OpenAPI documents: valid 3.1, built from the serving versions, errors enveloped."""

from __future__ import annotations

import pytest
from django.test import Client
from openapi_spec_validator import validate

from contracts.serving import registry


def fetch(path: str):
    return Client().get(path)


@pytest.mark.parametrize(
    "path",
    [
        "/mobile/v1/openapi.json",
        "/web/v1/openapi.json",
        "/partner/v1/openapi.json",
        "/partner/v2/openapi.json",
    ],
)
def test_every_surface_publishes_a_valid_openapi_31_document(demo, path) -> None:
    response = fetch(path)
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_schemas_are_the_serving_whitelists(demo) -> None:
    document = fetch("/mobile/v1/openapi.json").json()
    operation = document["paths"]["/mobile/v1/home"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]["user"]["properties"]) == {
        "userId",
        "displayName",
        "avatarUrl",
        "loyaltyTier",
    }
    assert operation["x-schema-version"] == registry.get("mobile", "home", 1).schema_version
    for status in ("400", "401", "403", "404", "410", "429", "500", "503"):
        assert operation["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


def test_deprecated_major_is_marked_and_v2_has_the_renamed_field(demo) -> None:
    v1 = fetch("/partner/v1/openapi.json").json()["paths"]["/partner/v1/products/{productId}"]
    v2 = fetch("/partner/v2/openapi.json").json()["paths"]["/partner/v2/products/{productId}"]
    assert v1["get"]["deprecated"] is True
    assert "deprecated" not in v2["get"]
    product = v2["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "displayPrice" in product["properties"]["product"]["properties"]
    assert v2["get"]["security"] == [{"bearer": ["catalog:read"]}]


@pytest.mark.parametrize("path", ["/mobile/v9/openapi.json", "/desktop/v1/openapi.json"])
def test_unknown_surface_or_major_is_404_in_the_envelope(demo, path) -> None:
    response = fetch(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "VERSION_NOT_FOUND"
