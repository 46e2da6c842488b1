"""Per-token rate limits of the registry API, counted in the shared cache (DRF's throttle).

Each token has its own budget: its ``rate`` when set, else ``REGISTRY_API["RATE"]``. A
staff session is counted per user. As on the client API, a cache outage lets requests
through rather than failing them: the limit protects the registry, it must not stop it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from contracts.api.models import ApiToken

logger = logging.getLogger(__name__)

DEFAULT_RATE = "600/min"


def default_rate() -> str | None:
    """``REGISTRY_API["RATE"]``; None (``REGISTRY_API_RATE=off``) turns the limit off."""
    return getattr(settings, "REGISTRY_API", {}).get("RATE", DEFAULT_RATE)


class TokenRateThrottle(SimpleRateThrottle):
    scope = "registry_token"

    def get_rate(self) -> str | None:
        # Resolved per request in allow_request, from the token.
        return None

    def allow_request(self, request, view) -> bool:
        token = request.auth if isinstance(request.auth, ApiToken) else None
        self.rate = (token.rate if token is not None and token.rate else None) or default_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001 - any cache failure: let the request through
            logger.warning("registry API throttle: the cache is unavailable", exc_info=True)
            return True

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiToken):
            ident = f"token:{request.auth.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
