"""A client of a remote registry's API, for ``contracts check|propose|export --registry URL``.

It sends this checkout's declarations (``contracts.declarations``) and reads back what the
registry's own gate and service layer decided, so CI needs a token, not the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from contracts import declarations
from contracts.schema import EndpointSpec

API_PATH = "/registry/api/v1"
TIMEOUT_SECONDS = 30.0


class RemoteError(Exception):
    """The registry could not be reached, or refused the call; the message says which."""


class RegistryClient:
    """Calls one registry with one token; ``transport`` is swappable for tests."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise RemoteError(f"--registry must be an http(s) URL, got {url!r}")
        if not token:
            raise RemoteError("set CONTRACTS_REGISTRY_TOKEN to a registry API token")
        base = url.rstrip("/")
        if not base.endswith(API_PATH):
            base += API_PATH
        self.base = base
        self._client = httpx.Client(
            base_url=base,
            transport=transport,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    def check(self, specs: Iterable[EndpointSpec]) -> dict[str, Any]:
        return self._call("POST", "/check", json={"endpoints": declarations.dump_all(specs)})

    def propose(
        self, spec: EndpointSpec, major: int | None, remaps: list[str] | None = None
    ) -> dict[str, Any]:
        body = {"declaration": declarations.dump(spec), "major": major, "remaps": remaps or []}
        return self._call("POST", "/proposals", json=body)

    def export(self, *, include_retired: bool) -> dict[str, Any]:
        params = {"includeRetired": "true"} if include_retired else {}
        return self._call("GET", "/export", params=params)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the registry at {self.base}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            if response.status_code == 409:
                raise RemoteError(str(error["message"]))  # the registry's rules, word for word
            raise RemoteError(f"the registry answered {response.status_code}: {error['message']}")
        raise RemoteError(f"the registry answered {response.status_code} without a JSON body")
