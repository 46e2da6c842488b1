"""Authenticates client bearer tokens with PyJWT, algorithms pinned per client surface.

A token must carry ``exp``, ``sub`` and ``aud``; ``aud`` must name the surface called
(a valid token for another client gets 403, not 401), and ``iss`` must match when
``JWT_ISSUER`` is set. The algorithm comes from configuration, never from the token,
so ``alg: none`` and key-confusion tokens fail like any bad signature. Keys come from
the client's secret or PEM, or from its identity provider's JWKS (``aggregation.jwks``),
for which ``authenticate_request`` is the async entry point.

A token verified once is remembered until it expires (``VerifiedTokens``): clients send
the same token with every request for its lifetime, and checking its signature and
claims again is the largest part of a cache hit's work. The memory is keyed by the whole
token and bound to the key that verified it, so a rotated secret or a refreshed JWKS
verifies afresh; only successes are remembered.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jwt

from aggregation import jwks
from aggregation.conf import bff_settings
from aggregation.errors import Forbidden, Unauthenticated
from bff_project.config import ClientAuth

LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 8192
# Subjects end up in downstream URLs, cache keys and logs: only a plain alphabet passes,
# starting with a letter or digit, so no subject is a dot segment (".", "..") that a URL
# parser would collapse into another path. downstream.path_segment encodes dots as well.
_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the client surface, the subject (user or partner id), the scopes."""

    client: str
    subject: str
    scopes: frozenset[str]


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("A bearer token is required.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("The Authorization header must be 'Bearer <token>'.")
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated("The token is too large.")
    return token


def _kid(token: str, auth: ClientAuth) -> str | None:
    """The key id a JWKS-verified token names; InvalidTokenError for a malformed header.

    A token whose algorithm is not pinned is refused here, before it can cost a fetch.
    """
    header = jwt.get_unverified_header(token)
    if header.get("alg") not in auth.algorithms:
        raise jwt.InvalidAlgorithmError("The token's algorithm is not allowed.")
    kid = header.get("kid")
    if kid is not None and not (isinstance(kid, str) and 0 < len(kid) <= jwks.MAX_KID_LENGTH):
        raise jwt.InvalidTokenError("The token's key id is malformed.")
    return kid


def _key_without_io(auth: ClientAuth, token: str) -> object | None:
    """The configured key, or a JWKS key this process already holds; never fetches."""
    if auth.secret is not None:
        return auth.secret
    if auth.public_key is not None:
        return auth.public_key
    if auth.jwks_url is None:
        return None
    try:
        return jwks.cached_signing_key(auth.jwks_url, _kid(token, auth))
    except jwt.PyJWTError:
        return None


def _decode(
    token: str, audience: str, auth: ClientAuth, key: object | None
) -> Mapping[str, object]:
    algorithms = list(auth.algorithms)
    if isinstance(key, jwks.SigningKey):
        # A JWKS key verifies only what it declares (or its type allows), and of that
        # only what configuration pins: the token's own "alg" chooses nothing.
        algorithms = [alg for alg in algorithms if alg in key.algorithms]
        key = key.key
    if key is None:
        raise jwks.KeyNotFound("No key verifies this token.")
    if not algorithms:
        raise jwt.InvalidAlgorithmError("The key's algorithm is not allowed.")
    return jwt.decode(
        token,
        key,
        algorithms=algorithms,
        audience=audience,
        issuer=bff_settings.JWT_ISSUER,
        leeway=LEEWAY_SECONDS,
        options={"require": ["exp", "sub", "aud"]},
    )


def _valid_for_another_client(token: str, client: str) -> bool:
    """Whether the token is genuine but minted for another surface (403, not 401).

    Only keys already at hand are tried: a token naming another audience must not make
    us fetch that client's JWKS (anyone can write any audience into a token).
    """
    try:
        claimed = jwt.decode(token, options={"verify_signature": False}).get("aud")
    except jwt.PyJWTError:
        return False
    audiences = {claimed} if isinstance(claimed, str) else set(claimed or ())
    for other, auth in bff_settings.CLIENT_AUTH.items():
        if other == client or other not in audiences:
            continue
        try:
            _decode(token, other, auth, _key_without_io(auth, token))
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        return True
    return False


def _verify(
    token: str, client: str, auth: ClientAuth, key: object | None
) -> tuple[Principal, float]:
    """The principal a valid token names, and its expiry (epoch seconds)."""
    try:
        claims = _decode(token, client, auth, key)
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
    principal = Principal(client=client, subject=subject, scopes=_scopes(claims))
    return principal, float(claims["exp"])


class VerifiedTokens:
    """Tokens this process has verified, each until its ``exp`` (plus the leeway).

    An entry answers only for the same client, the same verifying key object (the
    configured secret or PEM, or the JWKS key the cache holds now) and the same issuer
    setting; anything else verifies again. At most ``max_entries`` are held: when full,
    the expired ones go, and if none has expired, all of them (a burst of new tokens costs
    one verification each, as without the memory).
    """

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.time):
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, object, object, Principal]] = {}

    def get(self, client: str, token: str, key: object, issuer: object) -> Principal | None:
        found = self._entries.get((client, token))
        if found is None:
            return None
        until, verified_by, verified_issuer, principal = found
        if verified_by is not key or verified_issuer != issuer or self.clock() >= until:
            return None
        return principal

    def put(self, token: str, key: object, issuer: object, principal: Principal, until: float):
        entries = self._entries
        if len(entries) >= self.max_entries:
            now = self.clock()
            for name in [name for name, found in entries.items() if found[0] <= now]:
                del entries[name]
            if len(entries) >= self.max_entries:
                entries.clear()
        entries[(principal.client, token)] = (until, key, issuer, principal)

    def clear(self) -> None:
        self._entries.clear()


verified_tokens = VerifiedTokens()


def _verified(token: str, client: str, auth: ClientAuth, key: object | None) -> Principal:
    """``_verify``, remembered per token until it expires."""
    issuer = bff_settings.JWT_ISSUER
    known = verified_tokens.get(client, token, key, issuer)
    if known is not None:
        return known
    principal, expires = _verify(token, client, auth, key)
    verified_tokens.put(token, key, issuer, principal, expires + LEEWAY_SECONDS)
    return principal


def authenticate(authorization: str | None, client: str, *, key: object | None = None) -> Principal:
    """The principal of a request to ``client``'s surface, or Unauthenticated/Forbidden.

    Synchronous and free of I/O: the key is ``key``, else the client's secret or PEM,
    else (for a JWKS client) a key this process already holds. Request handlers await
    ``authenticate_request`` instead, which fetches JWKS keys when it must.
    """
    token = _bearer(authorization)
    auth = bff_settings.CLIENT_AUTH[client]
    if key is None:
        key = _key_without_io(auth, token)
    return _verified(token, client, auth, key)


async def authenticate_request(authorization: str | None, client: str) -> Principal:
    """The principal of a request to ``client``'s surface, or Unauthenticated/Forbidden.

    For a JWKS client the signing key is awaited from ``aggregation.jwks`` (fetched on
    the event loop, never blocking it); for secret and PEM clients no I/O happens.
    """
    token = _bearer(authorization)
    auth = bff_settings.CLIENT_AUTH[client]
    if auth.jwks_url is None:
        return _verified(token, client, auth, _key_without_io(auth, token))
    try:
        key = await jwks.signing_key(auth.jwks_url, _kid(token, auth))
    except jwt.PyJWTError:
        key = None  # unknown kid, malformed header: _verify says 401 (or 403)
    return _verified(token, client, auth, key)


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
