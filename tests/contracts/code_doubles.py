"""Doubles of "the code after a change": the real endpoint declarations, altered.

The deploy gate reads the code's endpoints through ``settings.BFF["ENDPOINTS"]`` (the
``BFF_ENDPOINTS`` variable in a subprocess); pointing it here plays a deploy of changed
code without mocking the gate that judges it.
"""

from __future__ import annotations

from dataclasses import replace

from aggregation import endpoints, sources
from contracts.schema import EndpointSpec, Field, Obj, Section, string


def _with_user_field(name: str, field: Field | None, rename: str | None = None) -> Obj:
    fields = []
    for key, value in sources.USER.fields:
        if key == name:
            if field is not None:
                fields.append((rename or key, field))
            continue
        fields.append((key, value))
    return Obj(tuple(fields))


def _mobile_home_with_user(user: Obj) -> EndpointSpec:
    spec = endpoints.MOBILE_HOME
    sections = tuple(replace(s, source=user) if s.name == "user" else s for s in spec.sections)
    return replace(spec, sections=sections)


def _replacing(spec: EndpointSpec) -> dict:
    return {**endpoints.ENDPOINTS, spec.key: spec}


# The user service now promises avatarUrl is never null: an additive change (v1.1).
ADDITIVE = _replacing(_mobile_home_with_user(_with_user_field("avatarUrl", string())))

# displayName may now be null: breaking for clients that read it (needs v2).
BREAKING = _replacing(
    _mobile_home_with_user(_with_user_field("displayName", string(nullable=True)))
)

# The user service renamed avatarUrl to profileImageUrl: v1's rule names a field that
# no longer exists.
RENAMED_UPSTREAM = _replacing(
    _mobile_home_with_user(
        _with_user_field("avatarUrl", string(nullable=True), rename="profileImageUrl")
    )
)

# The code grew an endpoint the registry has never heard of.
NEW_ENDPOINT = {
    **endpoints.ENDPOINTS,
    ("mobile", "profile"): EndpointSpec(
        client="mobile", name="profile",
        sections=(Section("user", "object", sources.USER, dependency="user"),),
    ),
}  # fmt: skip
