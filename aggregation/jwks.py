"""Signing keys from an identity provider's JWKS document, cached and rotated by ``kid``.

The request path is async, so the document is fetched with httpx on the event loop and
never with a blocking client. The refetch policy, per JWKS URL:

- the whole document is refreshed once it is ``max_age_seconds`` old (a removed key
  stops verifying then at the latest);
- a token naming a kid the cache does not hold triggers a refetch (how a new key at the
  provider reaches us without a restart), but concurrent requests share that one fetch
  and no fetch starts within ``min_refetch_seconds`` of the previous attempt, so a flood
  of tokens with invented kids cannot make us hammer the provider;
- a failed fetch or a malformed document keeps the keys we had: the provider being down
  must not log everyone out. An unknown kid then stays unknown, which is a 401.

``KeyNotFound`` (a ``jwt.InvalidTokenError``) is the only error callers see.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import jwt
import orjson

from aggregation import metrics
from aggregation.perloop import PerLoop

logger = logging.getLogger(__name__)

MIN_REFETCH_SECONDS = 10.0
MAX_AGE_SECONDS = 300.0
FETCH_TIMEOUT_SECONDS = 2.0
MAX_DOCUMENT_BYTES = 262_144
MAX_KID_LENGTH = 256

# The algorithms a key may verify when its JWK does not declare one, by key type (and
# curve). Symmetric ("oct") keys have no place in a public key set and are never used.
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})


class KeyNotFound(jwt.InvalidTokenError):
    """The key set holds no usable key for the token's kid (or could not be fetched)."""


class _FetchFailed(Exception):
    """The document could not be fetched or is not a usable JWK set; ``outcome`` says how."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome
        self.detail = detail


@dataclass(frozen=True)
class SigningKey:
    """One verification key of the set: its id, the public key, the algorithms it may verify."""

    kid: str | None
    key: object
    algorithms: frozenset[str]


@dataclass(frozen=True)
class KeySet:
    """The usable signing keys of one document, by kid."""

    by_kid: Mapping[str, SigningKey]
    keys: tuple[SigningKey, ...]

    def find(self, kid: str | None) -> SigningKey | None:
        if kid is None:
            # Without a kid the token could be meant for any key: only an unambiguous set
            # may answer.
            return self.keys[0] if len(self.keys) == 1 else None
        return self.by_kid.get(kid)


def _allowed_algorithms(jwk: Mapping[str, object]) -> frozenset[str]:
    declared = jwk.get("alg")
    if isinstance(declared, str):
        return frozenset({declared})
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        return _RSA_ALGORITHMS
    if kty == "EC" and crv in _EC_ALGORITHMS:
        return frozenset({_EC_ALGORITHMS[crv]})
    if kty == "OKP" and crv in _OKP_CURVES:
        return frozenset({"EdDSA"})
    return frozenset()


def _signing_key(jwk: object) -> SigningKey | None:
    """The key of one JWK, or None when it is not a usable public signing key."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in {"RSA", "EC", "OKP"}:
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    algorithms = _allowed_algorithms(jwk)
    if not algorithms:
        return None
    try:
        key = jwt.PyJWK.from_dict(jwk).key
    # One bad entry (a wrong type, a missing member, an unknown algorithm) must not cost
    # the others: the provider's document is not ours to trust to be well formed.
    except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError, NotImplementedError):
        return None
    if hasattr(key, "private_numbers"):  # a private key published by mistake: not ours
        return None
    return SigningKey(kid=kid, key=key, algorithms=algorithms)


def parse_key_set(document: object) -> KeySet:
    """The usable signing keys of a JWKS document; ``_FetchFailed`` when there are none."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _FetchFailed("malformed", "not a JWK set")
    keys = tuple(key for key in map(_signing_key, document["keys"]) if key is not None)
    if not keys:
        raise _FetchFailed("malformed", "no usable signing key")
    by_kid: dict[str, SigningKey] = {}
    for key in keys:
        if key.kid is not None:
            by_kid.setdefault(key.kid, key)  # a duplicated kid: the first one wins
    return KeySet(by_kid=by_kid, keys=keys)


class JWKSCache:
    """The keys of one JWKS URL, refreshed by age and on unknown kids, at a bounded rate.

    The clock and the transport are injected so tests step time and serve documents
    without sleeping or patching.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        min_refetch_seconds: float = MIN_REFETCH_SECONDS,
        max_age_seconds: float = MAX_AGE_SECONDS,
    ) -> None:
        self.url = url
        self.clock = clock
        self.transport = transport
        self.timeout = timeout
        self.min_refetch_seconds = min_refetch_seconds
        self.max_age_seconds = max_age_seconds
        self.fetches = 0
        self._keys: KeySet | None = None
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        # Workers run one event loop each, but the sync path and tests may use others:
        # the lock keeps the "may I fetch now" decision single across threads.
        self._lock = threading.Lock()
        self._inflight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]
        self._inflight = weakref.WeakKeyDictionary()
        self._clients = PerLoop(self._new_client)

    def cached(self, kid: str | None) -> SigningKey | None:
        """The key for ``kid`` if the cache holds it, without any I/O."""
        keys = self._keys
        return keys.find(kid) if keys is not None else None

    async def get(self, kid: str | None) -> SigningKey:
        """The key for ``kid``, refetching the document when the policy allows."""
        key = self.cached(kid)
        if key is not None and not self._stale():
            return key
        await self._refresh()
        key = self.cached(kid)
        if key is None:
            raise KeyNotFound("No signing key matches the token's key id.")
        return key

    def _stale(self) -> bool:
        fetched_at = self._fetched_at
        return fetched_at is None or self.clock() - fetched_at >= self.max_age_seconds

    async def _refresh(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            task = self._inflight.get(loop)
            if task is None:
                now = self.clock()
                attempted = self._attempted_at
                if attempted is not None and now - attempted < self.min_refetch_seconds:
                    return
                self._attempted_at = now
                self.fetches += 1
                task = loop.create_task(self._fetch())
                self._inflight[loop] = task
                task.add_done_callback(lambda _: self._inflight.pop(loop, None))
        # Shielded: a client that hangs up must not cancel the fetch others are waiting on.
        await asyncio.shield(task)

    async def _fetch(self) -> None:
        try:
            keys = parse_key_set(await self._download())
        except _FetchFailed as exc:
            self._failed(exc.outcome, exc.detail)
            return
        # Whatever else the provider's answer provokes, it must cost a 401, never a 500.
        except Exception as exc:  # noqa: BLE001
            self._failed("error", type(exc).__name__)
            return
        metrics.JWKS_FETCHES.labels("ok").inc()
        with self._lock:
            self._keys = keys
            self._fetched_at = self.clock()

    def _failed(self, outcome: str, detail: str) -> None:
        metrics.JWKS_FETCHES.labels(outcome).inc()
        logger.warning(
            "JWKS fetch failed; keeping the keys already held",
            extra={"jwks_url": self.url, "outcome": outcome, "detail": detail},
        )

    async def _download(self) -> object:
        try:
            async with asyncio.timeout(self.timeout):
                async with self._clients.get().stream(
                    "GET", self.url, headers={"Accept": "application/json"}
                ) as response:
                    if response.status_code != 200:
                        raise _FetchFailed("status", f"HTTP {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_DOCUMENT_BYTES:
                            raise _FetchFailed("too_large", f"over {MAX_DOCUMENT_BYTES} bytes")
        except TimeoutError:
            raise _FetchFailed("timeout", f"no answer within {self.timeout}s") from None
        except httpx.HTTPError as exc:
            raise _FetchFailed("unavailable", type(exc).__name__) from exc
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _FetchFailed("malformed", "not JSON") from None

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
            transport=self.transport,
            trust_env=False,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the running loop's HTTP client (at shutdown)."""
        await self._clients.aclose()


_caches: dict[str, JWKSCache] = {}
_caches_lock = threading.Lock()


def cache_for(url: str) -> JWKSCache:
    """This process's cache for ``url``, created on first use."""
    cache = _caches.get(url)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(url, JWKSCache(url))
    return cache


def install(cache: JWKSCache) -> JWKSCache:
    """Use ``cache`` for its URL from now on (tests install one with their own clock)."""
    with _caches_lock:
        _caches[cache.url] = cache
    return cache


async def aclose() -> None:
    """Close every key set's HTTP clients of the running loop (at shutdown)."""
    for cache in list(_caches.values()):
        await cache.aclose()


def reset() -> None:
    """Forget every cached key set."""
    with _caches_lock:
        _caches.clear()


async def signing_key(url: str, kid: str | None) -> object:
    """The key for ``kid`` from the set at ``url``; ``KeyNotFound`` when there is none."""
    return await cache_for(url).get(kid)


def cached_signing_key(url: str, kid: str | None) -> SigningKey | None:
    """The key for ``kid`` if this process already holds it; never fetches."""
    cache = _caches.get(url)
    return cache.cached(kid) if cache is not None else None
