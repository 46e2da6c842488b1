"""Issuing and revoking registry API tokens, for the admin and ``registry_token``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from contracts.api.models import SCOPES, ApiToken
from contracts.models import Client


class TokenError(ValueError):
    """The token cannot be issued as asked; the message says why."""


def parse_scopes(raw: Iterable[str]) -> list[str]:
    scopes = sorted({scope.strip() for scope in raw if scope.strip()})
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise TokenError(
            f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}"
        )
    return scopes


def issue(
    user: AbstractBaseUser,
    *,
    name: str,
    scopes: Iterable[str],
    client: str | None = None,
    expires_at: datetime | None = None,
    rate: str = "",
    created_by: AbstractBaseUser | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its secret; the secret is never stored and cannot be shown again."""
    restricted = None
    if client:
        restricted = Client.objects.filter(name=client).first()
        if restricted is None:
            raise TokenError(f"unknown client {client!r}")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError("the expiry is in the past")
    secret = ApiToken.new_secret()
    token = ApiToken(
        user=user,
        name=name,
        scopes=parse_scopes(scopes),
        client=restricted,
        expires_at=expires_at,
        rate=rate,
        created_by=created_by,
    )
    token.set_secret(secret)
    token.save()
    return token, secret


def revoke(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
