"""Signing keys from an identity provider's JWKS document, cached and rotated by ``kid``."""

from __future__ import annotations

from functools import cache

import jwt
from jwt import PyJWKClient

JWKS_CACHE_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 2


@cache
def _client(url: str) -> PyJWKClient:
    # PyJWKClient refetches the document when a token names a kid it has not seen,
    # which is how a key rotation at the provider reaches us without a restart.
    return PyJWKClient(
        url, cache_keys=True, lifespan=JWKS_CACHE_SECONDS, timeout=JWKS_TIMEOUT_SECONDS
    )


def signing_key(url: str, token: str) -> object:
    try:
        return _client(url).get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientError as exc:
        raise jwt.InvalidTokenError(str(exc)) from None
