"""The client surfaces: one list, which every other list of clients derives from."""

from __future__ import annotations

# Each is a URL prefix (``/mobile/v1/home``), a JWT audience and a registry client.
CLIENTS: tuple[str, ...] = ("mobile", "web", "partner")

# Clients outside the company: internal source fields never reach them unreviewed
# (contracts.services refuses them without a release manager's override).
EXTERNAL_CLIENTS: tuple[str, ...] = ("partner",)
