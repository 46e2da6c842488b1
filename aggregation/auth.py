"""Authenticates client bearer tokens with PyJWT, algorithms pinned per client surface.

A token must carry ``exp``, ``sub`` and ``aud``; ``aud`` must name the surface called
(a valid token for another client gets 403, not 401), and ``iss`` must match when
``JWT_ISSUER`` is set. The algorithm comes from configuration, never from the token,
so ``alg: none`` and key-confusion tokens fail like any bad signature.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from aggregation.conf import bff_settings
from aggregation.errors import Forbidden, Unauthenticated
from bff_project.config import ClientAuth

LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 8192
# Subjects end up in downstream URLs, cache keys and logs: only a plain alphabet passes.
_SUBJECT = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the client surface, the subject (user or partner id), the scopes."""

    client: str
    subject: str
    scopes: frozenset[str]


def _key_for(auth: ClientAuth, token: str) -> object:
    if auth.secret is not None:
        return auth.secret
    if auth.public_key is not None:
        return auth.public_key
    from aggregation.jwks import signing_key  # only clients configured with a JWKS URL

    return signing_key(auth.jwks_url, token)


def _decode(token: str, client: str, auth: ClientAuth) -> Mapping[str, object]:
    options = {"require": ["exp", "sub", "aud"]}
    return jwt.decode(
        token,
        _key_for(auth, token),
        algorithms=list(auth.algorithms),
        audience=client,
        issuer=bff_settings.JWT_ISSUER,
        leeway=LEEWAY_SECONDS,
        options=options,
    )


def _valid_for_another_client(token: str, client: str) -> bool:
    """Whether the token is genuine but minted for another surface (403, not 401)."""
    try:
        claimed = jwt.decode(token, options={"verify_signature": False}).get("aud")
    except jwt.PyJWTError:
        return False
    audiences = {claimed} if isinstance(claimed, str) else set(claimed or ())
    for other, auth in bff_settings.CLIENT_AUTH.items():
        if other == client or other not in audiences:
            continue
        try:
            _decode(token, other, auth)
        except (jwt.PyJWTError, ValueError):
            continue
        return True
    return False


def authenticate(authorization: str | None, client: str) -> Principal:
    """The principal of a request to ``client``'s surface, or Unauthenticated/Forbidden."""
    if not authorization:
        raise Unauthenticated("A bearer token is required.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("The Authorization header must be 'Bearer <token>'.")
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated("The token is too large.")
    auth = bff_settings.CLIENT_AUTH[client]
    try:
        claims = _decode(token, client, auth)
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("The token has expired.") from None
    except jwt.InvalidAudienceError:
        if _valid_for_another_client(token, client):
            raise Forbidden(f"This token is not for the {client} API.") from None
        raise Unauthenticated("The token is not valid.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"The token lacks the '{exc.claim}' claim.") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        # Bad signature, wrong algorithm (``none`` included), malformed, unknown key id.
        if _valid_for_another_client(token, client):
            raise Forbidden(f"This token is not for the {client} API.") from None
        raise Unauthenticated("The token is not valid.") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise Unauthenticated("The token's subject is malformed.")
    return Principal(client=client, subject=subject, scopes=_scopes(claims))


def _scopes(claims: Mapping[str, object]) -> frozenset[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list | tuple):
        return frozenset(str(item) for item in raw)
    return frozenset()


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise Forbidden(f"This token lacks the '{scope}' scope.")
