"""JWKS keys over real HTTP: rotation by kid, a bounded refetch rate, and an IdP that fails.

The identity provider is a small HTTP server on 127.0.0.1 serving a document the tests
change; the cache's clock is injected, so max age and the refetch interval are stepped.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from aggregation import jwks
from aggregation.auth import authenticate, authenticate_request
from aggregation.errors import Forbidden, Unauthenticated
from bff_project.config import ClientAuth
from tests.timing import FakeClock

SECRET = "s" * 40


class IdentityProvider:
    """A JWKS endpoint on 127.0.0.1 serving a mutable document and counting fetches."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b'{"keys": []}'
        self.fetches = 0
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with provider._lock:
                    provider.fetches += 1
                    status, body = provider.status, provider.body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        self._running = True

    def publish(self, *keys: dict) -> None:
        with self._lock:
            self.status, self.body = 200, json.dumps({"keys": list(keys)}).encode()

    def serve(self, body: bytes, status: int = 200) -> None:
        with self._lock:
            self.status, self.body = status, body

    def stop(self) -> None:
        if self._running:
            self._running = False
            self.server.shutdown()
            self.server.server_close()


class Key:
    """A private key of the IdP and its public JWK."""

    def __init__(self, kid: str, kind: str = "RSA", **members) -> None:
        self.kid = kid
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.algorithm = "RS256"
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.algorithm = "ES256"
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": kid, "use": "sig", **members}
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(self, *, kid: str | None = "same", aud: str = "partner", **claims) -> str:
        now = int(time.time())
        body = {"sub": "ptn_1", "aud": aud, "exp": now + 600, **claims}
        headers = {"kid": self.kid if kid == "same" else kid} if kid is not None else {}
        return jwt.encode(body, self.private, algorithm=self.algorithm, headers=headers)


# Generating RSA keys is slow; the module's tests share these.
K1, K2, E1 = Key("k1"), Key("k2"), Key("e1", kind="EC")


@pytest.fixture
def idp(settings):
    provider = IdentityProvider()
    settings.BFF = {
        **settings.BFF,
        "JWT_ISSUER": None,
        "CLIENT_AUTH": {
            "mobile": ClientAuth(algorithms=("HS256",), secret=SECRET),
            "web": ClientAuth(algorithms=("HS256",), secret=SECRET + "w"),
            "partner": ClientAuth(algorithms=("RS256", "ES256"), jwks_url=provider.url),
        },
    }
    jwks.reset()
    yield provider
    provider.stop()
    jwks.reset()


@pytest.fixture
def clock(idp) -> FakeClock:
    clock = FakeClock(1_000.0)
    jwks.install(jwks.JWKSCache(idp.url, clock=clock))
    return clock


def bearer(token: str) -> str:
    return f"Bearer {token}"


def check(token: str, client: str = "partner"):
    return asyncio.run(authenticate_request(bearer(token), client))


def refused(token: str, client: str = "partner") -> bool:
    try:
        check(token, client)
    except Unauthenticated:
        return True
    return False


def test_tokens_signed_with_published_rsa_and_ec_keys_are_accepted(idp, clock) -> None:
    idp.publish(K1.jwk, E1.jwk)
    assert check(K1.token(scope="catalog:read")).scopes == {"catalog:read"}
    assert check(E1.token()).subject == "ptn_1"
    assert idp.fetches == 1


def test_rotation_to_a_new_key_is_picked_up_by_one_refetch(idp, clock) -> None:
    idp.publish(K1.jwk)
    assert check(K1.token()).subject == "ptn_1"
    idp.publish(K2.jwk)
    clock.advance(jwks.MIN_REFETCH_SECONDS)
    assert check(K2.token()).subject == "ptn_1"
    assert idp.fetches == 2
    assert refused(K1.token())  # the set was refetched without k1
    assert check(K2.token()).subject == "ptn_1"
    assert idp.fetches == 2


def test_a_new_kid_right_after_a_fetch_waits_for_the_refetch_interval(idp, clock) -> None:
    idp.publish(K1.jwk)
    check(K1.token())
    idp.publish(K1.jwk, K2.jwk)
    assert refused(K2.token())
    assert idp.fetches == 1
    clock.advance(jwks.MIN_REFETCH_SECONDS)
    assert check(K2.token()).subject == "ptn_1"
    assert idp.fetches == 2


def test_a_removed_key_verifies_until_the_set_is_refetched_after_max_age(idp, clock) -> None:
    idp.publish(K1.jwk, K2.jwk)
    check(K1.token())
    idp.publish(K2.jwk)
    clock.advance(jwks.MAX_AGE_SECONDS - 1)
    assert check(K1.token()).subject == "ptn_1"  # still within max age: no fetch
    assert idp.fetches == 1
    clock.advance(1)
    assert refused(K1.token())
    assert idp.fetches == 2
    assert check(K2.token()).subject == "ptn_1"
    assert idp.fetches == 2


def test_unknown_kids_cost_at_most_one_fetch_per_refetch_interval(idp, clock) -> None:
    idp.publish(K1.jwk)
    check(K1.token())
    clock.advance(jwks.MIN_REFETCH_SECONDS)

    async def flood(count: int) -> list[bool]:
        results = []
        for _ in range(count):
            try:
                await authenticate_request(bearer(K1.token(kid=uuid.uuid4().hex)), "partner")
            except Unauthenticated:
                results.append(True)
            else:
                results.append(False)
        return results

    assert all(asyncio.run(flood(50)))
    assert idp.fetches == 2
    clock.advance(jwks.MIN_REFETCH_SECONDS - 0.001)
    assert all(asyncio.run(flood(10)))
    assert idp.fetches == 2
    clock.advance(0.001)
    assert all(asyncio.run(flood(10)))
    assert idp.fetches == 3


def test_concurrent_unknown_kids_share_one_fetch(idp, clock) -> None:
    idp.publish(K1.jwk, K2.jwk)
    tokens = [K2.token()] * 20 + [K1.token(kid=uuid.uuid4().hex) for _ in range(20)]

    async def together() -> list[object]:
        return await asyncio.gather(
            *(authenticate_request(bearer(token), "partner") for token in tokens),
            return_exceptions=True,
        )

    results = asyncio.run(together())
    assert [r.subject for r in results[:20]] == ["ptn_1"] * 20
    assert all(isinstance(r, Unauthenticated) for r in results[20:])
    assert idp.fetches == 1


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def test_hs256_token_signed_with_the_jwks_public_key_is_401(idp, clock) -> None:
    """Key confusion: the IdP's public key, which anyone can download, as an HMAC secret."""
    idp.publish(K1.jwk)
    check(K1.token())
    claims = {"sub": "ptn_1", "aud": "partner", "exp": int(time.time()) + 600}
    header = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    signing_input = _b64(json.dumps(header).encode()) + b"." + _b64(json.dumps(claims).encode())
    mac = hmac.new(K1.public_pem, signing_input, hashlib.sha256).digest()
    assert refused((signing_input + b"." + _b64(mac)).decode())


def test_alg_none_is_401(idp, clock) -> None:
    idp.publish(K1.jwk)
    claims = {"sub": "ptn_1", "aud": "partner", "exp": int(time.time()) + 600}
    header = {"alg": "none", "typ": "JWT", "kid": "k1"}
    unsigned = _b64(json.dumps(header).encode()) + b"." + _b64(json.dumps(claims).encode())
    assert refused(unsigned.decode() + ".")
    assert idp.fetches == 0  # an algorithm we never accept does not cost a fetch


def test_a_key_verifies_only_algorithms_it_declares_and_configuration_pins(idp, clock) -> None:
    pss_only = Key("p1", alg="PS256")  # a pinned RS256 header must not unlock a PS256 key
    idp.publish(pss_only.jwk, E1.jwk)
    assert refused(pss_only.token())
    assert refused(K1.token(kid="e1"))  # RS256 header naming an EC key
    assert check(E1.token()).subject == "ptn_1"


def test_token_without_kid_is_accepted_only_from_a_single_key_set(idp, clock) -> None:
    idp.publish(K1.jwk)
    assert check(K1.token(kid=None)).subject == "ptn_1"
    idp.publish(K1.jwk, K2.jwk)
    clock.advance(jwks.MAX_AGE_SECONDS)
    assert refused(K1.token(kid=None))
    assert check(K1.token()).subject == "ptn_1"


@pytest.mark.parametrize("kid", [17, "", ["k1"], "k" * 300])
def test_malformed_kid_is_401(idp, clock, kid) -> None:
    idp.publish(K1.jwk)
    claims = {"sub": "ptn_1", "aud": "partner", "exp": int(time.time()) + 600}
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = _b64(json.dumps(header).encode()) + b"." + _b64(json.dumps(claims).encode())
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input, K1.private)
    assert refused((signing_input + b"." + _b64(signature)).decode())


def test_expired_token_is_401(idp, clock) -> None:
    idp.publish(K1.jwk)
    with pytest.raises(Unauthenticated, match="expired"):
        check(K1.token(exp=int(time.time()) - 120))


def test_idp_down_keeps_cached_keys_and_refuses_unknown_kids(idp, clock) -> None:
    idp.publish(K1.jwk)
    check(K1.token())
    idp.stop()
    clock.advance(jwks.MAX_AGE_SECONDS + 1)
    assert check(K1.token()).subject == "ptn_1"  # the refetch failed: previous keys stand
    assert refused(K2.token())
    clock.advance(jwks.MIN_REFETCH_SECONDS)
    assert refused(K2.token())
    assert check(K1.token()).subject == "ptn_1"


def test_idp_down_from_the_start_is_401(idp, clock) -> None:
    idp.stop()
    assert refused(K1.token())


MALFORMED = {
    "not-json": (200, b"not json"),
    "list": (200, b"[]"),
    "keys-not-list": (200, b'{"keys": "k1"}'),
    "empty": (200, b'{"keys": []}'),
    "bad-rsa": (200, b'{"keys": [{"kty": "RSA", "kid": "k1", "n": 5, "e": "AQAB"}]}'),
    "symmetric": (200, b'{"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}'),
    "alg-none": (200, b'{"keys": [{"kty": "RSA", "kid": "k1", "alg": "none"}]}'),
    "oversized": (200, b'{"keys": [' + b'{"kty": "x"},' * 30_000 + b"{}]}"),
    "status-500": (500, json.dumps({"keys": [K1.jwk]}).encode()),
    "redirect": (302, b""),
}


@pytest.mark.parametrize(("status", "body"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_document_is_401_not_500(idp, clock, status, body) -> None:
    idp.serve(body, status)
    assert refused(K1.token())


def test_a_private_key_in_the_set_is_never_used(idp, clock) -> None:
    private = RSAAlgorithm.to_jwk(K1.private, as_dict=True)
    leaked = {name: value for name, value in private.items() if name != "key_ops"}
    idp.publish({**leaked, "kid": "k1"})
    assert refused(K1.token())


def test_a_malformed_refresh_keeps_the_previous_keys(idp, clock) -> None:
    idp.publish(K1.jwk)
    check(K1.token())
    idp.serve(b"<html>maintenance</html>")
    clock.advance(jwks.MAX_AGE_SECONDS)
    assert check(K1.token()).subject == "ptn_1"
    assert idp.fetches == 2


def test_another_audience_is_403_only_from_keys_already_held(idp, clock) -> None:
    partner_token = K1.token()
    idp.publish(K1.jwk)
    # Presented to mobile, a partner token must not make mobile fetch partner's JWKS.
    assert refused(partner_token, "mobile")
    assert idp.fetches == 0
    check(partner_token)
    with pytest.raises(Forbidden, match="not for the mobile API"):
        check(partner_token, "mobile")
    assert idp.fetches == 1


def test_a_mobile_token_presented_to_partner_is_403(idp, clock) -> None:
    mobile = jwt.encode(
        {"sub": "usr_1", "aud": "mobile", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"
    )
    with pytest.raises(Forbidden, match="not for the partner API"):
        check(mobile)
    assert idp.fetches == 0


def test_sync_authenticate_uses_only_keys_already_held(idp, clock) -> None:
    idp.publish(K1.jwk)
    with pytest.raises(Unauthenticated):
        authenticate(bearer(K1.token()), "partner")
    assert idp.fetches == 0
    check(K1.token())
    assert authenticate(bearer(K1.token()), "partner").subject == "ptn_1"
    assert idp.fetches == 1
