"""Mints client tokens with the demo HMAC keys, for demos, tests and benchmarks."""

from __future__ import annotations

import time

import jwt

from aggregation.conf import bff_settings

MAX_TTL_SECONDS = 30 * 24 * 3600


class MintError(ValueError):
    """The token cannot be minted as asked; the message says why."""


def mint_token(
    client: str,
    sub: str,
    *,
    scope: str | None = None,
    ttl: int = 3600,
    now: float | None = None,
) -> str:
    auth = bff_settings.CLIENT_AUTH.get(client)
    if auth is None:
        raise MintError(f"unknown client {client!r}")
    if auth.secret is None:
        raise MintError(
            f"client {client!r} verifies tokens with a public key; "
            "mint its tokens with the identity provider that holds the private key"
        )
    if not sub or len(sub) > 128 or not sub.isprintable():
        raise MintError("sub must be 1-128 printable characters")
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise MintError(f"ttl must be between 1 and {MAX_TTL_SECONDS} seconds")
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": sub, "aud": client, "iat": issued, "exp": issued + ttl}
    if bff_settings.JWT_ISSUER:
        claims["iss"] = bff_settings.JWT_ISSUER
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, auth.secret, algorithm=auth.algorithms[0])
