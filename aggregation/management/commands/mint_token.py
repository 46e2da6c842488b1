"""Prints one valid client token and nothing else."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aggregation.tokens import MintError, mint_token
from contract_core.clients import CLIENTS


class Command(BaseCommand):
    help = "Print one signed token for a client surface (HS256 demo keys)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client", required=True, choices=CLIENTS)
        parser.add_argument("--sub", required=True, help="user id (partner: partner id)")
        parser.add_argument(
            "--scope", default=None, help="space-separated scopes, e.g. catalog:read"
        )
        parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")

    def handle(self, *args, client: str, sub: str, scope: str | None, ttl: int, **options) -> None:
        try:
            token = mint_token(client, sub, scope=scope, ttl=ttl)
        except MintError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(token)
