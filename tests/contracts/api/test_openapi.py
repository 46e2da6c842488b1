"""The registry API's own OpenAPI document: valid, and true to a fuzzer (schemathesis)."""

from __future__ import annotations

import subprocess
import sys

import httpx
from openapi_spec_validator import validate

from tests.contracts.api.conftest import API
from tests.contracts.api.test_remote import new_token, production
from tests.live import LiveBFF

# Bounded so the run takes well under a minute on two busy cores.
MAX_EXAMPLES = "10"


def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(
    registry, tmp_path
) -> None:
    token = new_token(registry, "--user", "release-manager", "--scopes",
                      "read,check,propose,review", "--rate", "100000/min")  # fmt: skip
    with LiveBFF(production(registry), migrate=False) as server:
        document = httpx.get(f"{server.url}{API}/openapi.json", timeout=10).json()
        validate(document)
        assert {"/registry/api/v1/check", "/registry/api/v1/proposals",
                "/registry/api/v1/versions/{id}/approve"} <= set(document["paths"])  # fmt: skip
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}{API}/openapi.json",
             "--checks", "not_a_server_error,response_schema_conformance",
             "--phases", "examples,coverage,fuzzing", "--max-examples", MAX_EXAMPLES,
             "--seed", "14", "--header", f"Authorization: Bearer {token}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:] + server.log()[-2000:]
        assert "Rate limited" not in run.stdout
