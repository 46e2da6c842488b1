"""Token validation: every way a token can be wrong is a 401 or a 403, never a 500."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aggregation import auth
from aggregation.auth import VerifiedTokens, authenticate, authenticate_request, require_scope
from aggregation.errors import Forbidden, Unauthenticated
from bff_project.config import ClientAuth
from tests.timing import FakeClock

SECRET = "s" * 40


@functools.cache
def _rsa_private_key() -> rsa.RSAPrivateKey:
    # Generating an RSA key takes tens of milliseconds; the module's tests share one.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def keys(settings):
    """Every client on its own HMAC secret, except partner on an RSA key pair."""
    private = _rsa_private_key()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings.BFF = {
        **settings.BFF,
        "JWT_ISSUER": None,
        "CLIENT_AUTH": {
            "mobile": ClientAuth(algorithms=("HS256",), secret=SECRET + "m"),
            "web": ClientAuth(algorithms=("HS256",), secret=SECRET + "w"),
            "partner": ClientAuth(algorithms=("RS256",), public_key=public_pem),
        },
    }
    return {"private": private, "public_pem": public_pem}


def token(client="mobile", *, secret=None, algorithm="HS256", **claims) -> str:
    now = int(time.time())
    body = {"sub": "usr_1", "aud": client, "iat": now, "exp": now + 600, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, secret or SECRET + client[0], algorithm=algorithm)


def bearer(value: str) -> str:
    return f"Bearer {value}"


def test_valid_token_gives_the_principal(keys) -> None:
    principal = authenticate(bearer(token(scope="a b")), "mobile")
    assert (principal.client, principal.subject, principal.scopes) == (
        "mobile",
        "usr_1",
        frozenset({"a", "b"}),
    )


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwdw==",
        "Bearer not.a.jwt",
        "Bearer " + "x" * 9000,
        "bearer",
    ],
)
def test_missing_or_malformed_header_is_401(keys, header) -> None:
    with pytest.raises(Unauthenticated):
        authenticate(header, "mobile")


def test_expired_token_is_401(keys) -> None:
    with pytest.raises(Unauthenticated, match="expired"):
        authenticate(bearer(token(exp=int(time.time()) - 120)), "mobile")


def test_small_clock_skew_is_tolerated(keys) -> None:
    assert authenticate(bearer(token(exp=int(time.time()) - 5)), "mobile").subject == "usr_1"


def test_wrong_secret_is_401(keys) -> None:
    with pytest.raises(Unauthenticated):
        authenticate(bearer(token(secret="z" * 40)), "mobile")


def _unsigned(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_alg_none_is_401(keys) -> None:
    claims = {"sub": "usr_1", "aud": "mobile", "exp": int(time.time()) + 600}
    with pytest.raises(Unauthenticated):
        authenticate(bearer(_unsigned(claims)), "mobile")


def test_hs256_token_signed_with_the_rs256_public_key_is_401(keys) -> None:
    """The key-confusion attack: the public key used as an HMAC secret.

    PyJWT itself refuses to HMAC-sign with a PEM key, so the attacker's token is built
    by hand here, as an attacker would.
    """

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    claims = {
        "sub": "ptn_1",
        "aud": "partner",
        "exp": int(time.time()) + 600,
        "scope": "catalog:read",
    }
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(claims).encode())
    mac = hmac.new(keys["public_pem"].encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + b64(mac)).decode()
    with pytest.raises(Unauthenticated):
        authenticate(bearer(forged), "partner")


def test_rs256_client_accepts_its_own_signed_token(keys) -> None:
    value = jwt.encode(
        {"sub": "ptn_1", "aud": "partner", "exp": int(time.time()) + 60},
        keys["private"],
        algorithm="RS256",
    )
    assert authenticate(bearer(value), "partner").subject == "ptn_1"


def test_genuine_token_for_another_client_is_403(keys) -> None:
    with pytest.raises(Forbidden, match="not for the mobile API"):
        authenticate(bearer(token("web")), "mobile")


def test_token_for_an_unknown_audience_is_401(keys) -> None:
    with pytest.raises(Unauthenticated):
        authenticate(bearer(token(aud="desktop")), "mobile")


@pytest.mark.parametrize("missing", ["sub", "exp", "aud"])
def test_required_claims_are_enforced(keys, missing) -> None:
    with pytest.raises(Unauthenticated):
        authenticate(bearer(token(**{missing: None})), "mobile")


@pytest.mark.parametrize("subject", ["../admin", "usr 1", "", "a" * 200, "usr\n1", 42])
def test_malformed_subject_is_401(keys, subject) -> None:
    with pytest.raises(Unauthenticated):
        authenticate(bearer(token(sub=subject)), "mobile")


def test_issuer_is_checked_when_configured(keys, settings) -> None:
    settings.BFF = {**settings.BFF, "JWT_ISSUER": "https://idp.example"}
    assert authenticate(bearer(token(iss="https://idp.example")), "mobile")
    with pytest.raises(Unauthenticated):
        authenticate(bearer(token(iss="https://evil.example")), "mobile")
    with pytest.raises(Unauthenticated):
        authenticate(bearer(token()), "mobile")


def test_scope_is_required_where_asked(keys) -> None:
    principal = authenticate(bearer(token(scope="catalog:read")), "mobile")
    require_scope(principal, "catalog:read")
    with pytest.raises(Forbidden, match="catalog:write"):
        require_scope(principal, "catalog:write")


def test_the_async_entry_point_validates_secret_and_pem_clients_alike(keys) -> None:
    partner = jwt.encode(
        {"sub": "ptn_1", "aud": "partner", "exp": int(time.time()) + 60, "scope": "catalog:read"},
        keys["private"],
        algorithm="RS256",
    )

    async def scenario():
        mobile = await authenticate_request(bearer(token(scope="a")), "mobile")
        pem = await authenticate_request(bearer(partner), "partner")
        with pytest.raises(Forbidden, match="not for the mobile API"):
            await authenticate_request(bearer(token("web")), "mobile")
        with pytest.raises(Unauthenticated):
            await authenticate_request(bearer(token(secret="z" * 40)), "mobile")
        with pytest.raises(Unauthenticated):
            await authenticate_request(None, "mobile")
        return mobile, pem

    mobile, pem = asyncio.run(scenario())
    assert (mobile.client, mobile.subject, mobile.scopes) == ("mobile", "usr_1", {"a"})
    assert (pem.client, pem.subject, pem.scopes) == ("partner", "ptn_1", {"catalog:read"})


def test_an_explicit_key_replaces_the_configured_one(keys) -> None:
    other = "o" * 40
    assert authenticate(bearer(token(secret=other)), "mobile", key=other).subject == "usr_1"
    with pytest.raises(Unauthenticated):
        authenticate(bearer(token()), "mobile", key=other)


def test_a_verified_token_is_remembered_until_it_expires(keys, monkeypatch) -> None:
    decodes = []
    real_decode = jwt.decode
    monkeypatch.setattr(
        auth.jwt, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k)
    )
    monkeypatch.setattr(auth, "verified_tokens", VerifiedTokens())
    header = bearer(token(exp=int(time.time()) + 60))
    first = authenticate(header, "mobile")
    assert authenticate(header, "mobile") == first
    assert len(decodes) == 1
    # Until exp + leeway, as PyJWT would accept it; then verified (and refused) again.
    monkeypatch.setattr(auth.verified_tokens, "clock", lambda: time.time() + 60 + 31)
    monkeypatch.setattr(auth.jwt.api_jwt, "datetime", _shifted_datetime(60 + 31))
    with pytest.raises(Unauthenticated, match="expired"):
        authenticate(header, "mobile")


def _shifted_datetime(seconds: float):
    from datetime import datetime, timedelta

    class Shifted(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(seconds=seconds)

    return Shifted


def test_a_rotated_secret_verifies_remembered_tokens_again(keys, settings) -> None:
    header = bearer(token())
    assert authenticate(header, "mobile").subject == "usr_1"
    settings.BFF = {
        **settings.BFF,
        "CLIENT_AUTH": {
            **settings.BFF["CLIENT_AUTH"],
            "mobile": ClientAuth(algorithms=("HS256",), secret="r" * 40),
        },
    }
    with pytest.raises(Unauthenticated):
        authenticate(header, "mobile")


def test_an_issuer_setting_verifies_remembered_tokens_again(keys, settings) -> None:
    header = bearer(token())
    assert authenticate(header, "mobile")
    settings.BFF = {**settings.BFF, "JWT_ISSUER": "https://idp.example"}
    with pytest.raises(Unauthenticated):
        authenticate(header, "mobile")


def test_a_remembered_token_answers_only_its_own_client(keys) -> None:
    header = bearer(token())
    assert authenticate(header, "mobile")
    with pytest.raises(Forbidden, match="not for the web API"):
        authenticate(header, "web")


def test_failures_are_not_remembered(keys) -> None:
    header = bearer(token(secret="z" * 40))
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            authenticate(header, "mobile")
    assert not any(t == header[7:] for _, t in auth.verified_tokens._entries)


def test_the_memory_is_bounded_expired_first() -> None:
    clock = FakeClock()
    memory = VerifiedTokens(max_entries=3, clock=clock)
    key = object()
    principal = auth.Principal("mobile", "usr_1", frozenset())
    memory.put("old", key, None, principal, clock.now + 1)
    memory.put("a", key, None, principal, clock.now + 100)
    memory.put("b", key, None, principal, clock.now + 100)
    clock.now += 2
    memory.put("c", key, None, principal, clock.now + 100)  # "old" has expired: it goes
    assert [memory.get("mobile", t, key, None) is not None for t in ("a", "b", "c")] == [True] * 3
    memory.put("d", key, None, principal, clock.now + 100)  # none expired: all go
    assert memory.get("mobile", "a", key, None) is None
    assert memory.get("mobile", "d", key, None) == principal
    assert memory.get("mobile", "d", object(), None) is None  # another key: verify again
