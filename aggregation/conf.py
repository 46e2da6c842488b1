"""The product's own settings, read lazily from ``settings.BFF`` like DRF's api_settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed


class BFFSettings:
    """Attribute access to ``settings.BFF``.

    The dict is looked up once and kept: going through Django's lazy settings object
    costs a few microseconds per access, and a request reads a dozen of these. Tests that
    override ``BFF`` send ``setting_changed``, which drops the kept dict (as DRF's
    ``reload_api_settings`` does).
    """

    def __init__(self) -> None:
        self._bff: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        bff = self._bff
        if bff is None:
            bff = self._bff = settings.BFF
        try:
            return bff[name]
        except KeyError:
            raise AttributeError(f"settings.BFF has no {name!r}") from None

    def reload(self) -> None:
        self._bff = None


bff_settings = BFFSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "BFF":
        bff_settings.reload()


setting_changed.connect(_reload)
