"""``registry_token create | revoke | list``: registry API tokens, for scripts and CI setup."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from contracts.api import tokens
from contracts.api.models import SCOPES, ApiToken

_DURATION = re.compile(r"^(\d{1,5})([hd])$")


def parse_expiry(raw: str) -> datetime:
    """``30d``, ``12h``, a date (``2027-01-31``, end of day UTC) or an ISO datetime."""
    match = _DURATION.match(raw)
    if match:
        amount, unit = int(match[1]), match[2]
        return timezone.now() + (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    moment = parse_datetime(raw)
    if moment is None:
        day = parse_date(raw)
        if day is None:
            raise CommandError(
                f"--expires must be like 30d, 12h, 2027-01-31 or an ISO datetime, got {raw!r}"
            )
        moment = datetime.combine(day, datetime.max.time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


class Command(BaseCommand):
    help = "Create, revoke and list registry API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,revoke,list}")
        create = sub.add_parser("create", help="print a new token (the last word of the output)")
        create.add_argument(
            "--user", required=True, help="the person or pipeline account it acts as"
        )
        create.add_argument("--scopes", required=True, help=f"comma-separated: {','.join(SCOPES)}")
        create.add_argument("--client", default=None, help="restrict it to one client")
        create.add_argument("--expires", default=None, help="30d, 12h, 2027-01-31 or ISO datetime")
        create.add_argument("--name", default=None, help="what it is for")
        create.add_argument("--rate", default="", help="its own rate limit, e.g. 60/min")
        revoke = sub.add_parser("revoke", help="revoke a token by id or by its shown prefix")
        revoke.add_argument("token")
        sub.add_parser("list", help="the tokens, without their secrets")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, action)(**options)

    def create(
        self,
        *,
        user: str,
        scopes: str,
        client: str | None,
        expires: str | None,
        name: str | None,
        rate: str,
        **options,
    ) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"no user {user!r}: create the person's or pipeline's account first")
        if rate and not re.match(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$", rate):
            raise CommandError(f"--rate must look like 60/min, got {rate!r}")
        try:
            token, secret = tokens.issue(
                owner,
                name=name or f"{user} ({scopes})",
                scopes=scopes.split(","),
                client=client,
                expires_at=parse_expiry(expires) if expires else None,
                rate=rate,
            )
        except tokens.TokenError as exc:
            raise CommandError(str(exc)) from None
        restriction = f", client {client}" if client else ""
        expiry = f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else ""
        self.stdout.write(
            f"created token #{token.pk} for {user} (scopes {','.join(token.scopes)}"
            f"{restriction}{expiry}); it is shown only once:"
        )
        self.stdout.write(secret)

    def revoke(self, *, token: str, **options) -> None:
        found = (
            ApiToken.objects.filter(pk=int(token))
            if token.isdigit()
            else ApiToken.objects.filter(prefix=token)
        )
        if found.count() != 1:
            raise CommandError(f"no single token matches {token!r}")
        tokens.revoke(found.get())
        self.stdout.write(f"revoked token {token}")

    def list(self, **options) -> None:
        for token in ApiToken.objects.select_related("user", "client"):
            state = "revoked" if token.revoked_at else ("usable" if token.is_usable else "expired")
            self.stdout.write(
                f"#{token.pk} {token.prefix}… {token.user} [{','.join(token.scopes)}] "
                f"{token.client or 'all clients'} {state} last used {token.last_used_at or 'never'}"
            )
