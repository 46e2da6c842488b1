"""The registry's roles: one frontend team group per client, and the release managers."""

from __future__ import annotations

from contract_core.clients import CLIENTS

RELEASE_MANAGERS = "release managers"


def frontend_team(client: str) -> str:
    return f"{client} frontend team"


FRONTEND_TEAMS = {client: frontend_team(client) for client in CLIENTS}
ALL_GROUPS = (*FRONTEND_TEAMS.values(), RELEASE_MANAGERS)
