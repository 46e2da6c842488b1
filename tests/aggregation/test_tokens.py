"""The mint_token command: one valid token on stdout, clear errors otherwise."""

from __future__ import annotations

from io import StringIO

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from aggregation.conf import bff_settings
from aggregation.tokens import mint_token


def run(*args: str) -> str:
    out = StringIO()
    call_command("mint_token", *args, stdout=out)
    return out.getvalue()


def test_prints_exactly_one_token_for_the_client() -> None:
    output = run("--client", "mobile", "--sub", "usr_9821")
    assert output.count("\n") == 1
    token = output.strip()
    secret = bff_settings.CLIENT_AUTH["mobile"].secret
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience="mobile")
    assert claims["sub"] == "usr_9821"
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_partner_token_carries_its_scope() -> None:
    token = run("--client", "partner", "--sub", "ptn_acme", "--scope", "catalog:read").strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["aud"], claims["scope"]) == ("partner", "catalog:read")


def test_issuer_is_added_when_configured(settings) -> None:
    settings.BFF = {**settings.BFF, "JWT_ISSUER": "https://idp.example"}
    token = mint_token("web", "usr_1")
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == "https://idp.example"


@pytest.mark.parametrize(
    "args",
    [
        ("--client", "mobile", "--sub", ""),
        ("--client", "mobile", "--sub", "x" * 129),
        ("--client", "mobile", "--sub", "usr\n1"),
        ("--client", "mobile", "--sub", "usr_1", "--ttl", "0"),
        ("--client", "mobile", "--sub", "usr_1", "--ttl", "99999999"),
    ],
)
def test_bad_arguments_are_command_errors(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        run(*args)


def test_unknown_client_is_refused() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        run("--client", "desktop", "--sub", "usr_1")


def test_public_key_client_cannot_be_minted_here(settings) -> None:
    from bff_project.config import ClientAuth

    auth = {
        **settings.BFF["CLIENT_AUTH"],
        "partner": ClientAuth(algorithms=("RS256",), public_key="pem"),
    }
    with (
        override_settings(BFF={**settings.BFF, "CLIENT_AUTH": auth}),
        pytest.raises(CommandError, match="public key"),
    ):
        run("--client", "partner", "--sub", "ptn_1")
