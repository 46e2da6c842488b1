"""Cache keys that carry the serving schema version, and ids that cannot break them.

Format: ``<prefix>:<client>:<endpoint>:v<major>.<minor>:<fingerprint8>:<scope>`` with
scope ``u:<userId>`` (per user) or ``shared:<id>``. The version part comes from the
serving contract, never from code, so an approved bump moves every reader to new keys
at once and old entries simply expire.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

from contracts.serving import ServingContract

MAX_ENCODED_ID = 100
# Percent-encoding never produces '#', so a hashed id can never equal an encoded one.
_HASHED_MARK = "#"
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


class InvalidKeyPart(ValueError):
    """A key cannot be built from these parts (a per-user key without a user, say)."""


def encode_id(raw: str) -> str:
    """An injective, key-safe spelling of any id: colons, spaces, newlines, '../' and
    unicode are percent-encoded; very long ids are replaced by their SHA-256."""
    if not isinstance(raw, str) or raw == "":
        raise InvalidKeyPart("an id must be a non-empty string")
    if _SAFE.match(raw) and len(raw) <= MAX_ENCODED_ID:
        return raw
    encoded = quote(raw, safe="._-")
    if len(encoded) > MAX_ENCODED_ID:
        return _HASHED_MARK + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
    return encoded


def version_part(contract: ServingContract) -> str:
    return (
        f"{contract.client}:{contract.endpoint}:v{contract.schema_version}:{contract.fingerprint8}"
    )


def user_key(prefix: str, contract: ServingContract, user_id: str | None) -> str:
    if not user_id:
        raise InvalidKeyPart("a per-user key needs a user id")
    return f"{prefix}:{version_part(contract)}:u:{encode_id(user_id)}"


def shared_key(prefix: str, contract: ServingContract, shared_id: str) -> str:
    return f"{prefix}:{version_part(contract)}:shared:{encode_id(shared_id)}"
