"""The product's own settings, read lazily from ``settings.BFF`` like DRF's api_settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings


class BFFSettings:
    """Attribute access to ``settings.BFF``; read at each access so tests can override."""

    def __getattr__(self, name: str) -> Any:
        try:
            return settings.BFF[name]
        except KeyError:
            raise AttributeError(f"settings.BFF has no {name!r}") from None


bff_settings = BFFSettings()
