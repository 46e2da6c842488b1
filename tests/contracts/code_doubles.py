"""Doubles of "the code after a change": the real endpoint declarations, altered.

The deploy gate reads the code's endpoints through ``settings.BFF["ENDPOINTS"]`` (the
``BFF_ENDPOINTS`` variable in a subprocess); pointing it here plays a deploy of changed
code without mocking the gate that judges it.
"""

from __future__ import annotations

from dataclasses import replace

from aggregation import endpoints, sources
from aggregation.sources import LOYALTY_TIERS, ORDER_STATUSES
from contract_core.schema import Arr, EndpointSpec, Field, Obj, Scalar, Section, obj, string


def _with_user_field(name: str, field: Field | None, rename: str | None = None) -> Obj:
    fields = []
    for key, value in sources.USER.fields:
        if key == name:
            if field is not None:
                fields.append((rename or key, field))
            continue
        fields.append((key, value))
    return Obj(tuple(fields))


def _mobile_home_with_user(user: Obj, sample: dict | None = None) -> EndpointSpec:
    spec = endpoints.MOBILE_HOME
    changes = {"source": user} if sample is None else {"source": user, "sample": sample}
    sections = tuple(replace(s, **changes) if s.name == "user" else s for s in spec.sections)
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
# no longer exists. Its sample record, captured from the service, is renamed too.
RENAMED_UPSTREAM = _replacing(
    _mobile_home_with_user(
        _with_user_field("avatarUrl", string(nullable=True), rename="profileImageUrl"),
        sample={
            ("profileImageUrl" if key == "avatarUrl" else key): value
            for key, value in endpoints.USER.sample.items()
        },
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


# -- a corpus of source-declaration edits, each with how SPEC section 6 classifies it -------
# ``CORPUS[name]`` is (the code's endpoints, the finding's kinds of change, the major the
# printed proposal asks for, or None when the gate passes); each is also a module attribute
# ``CORPUS_<name>`` so that ``BFF_ENDPOINTS`` can point at it. A breaking finding is
# proposed as the next major unless a remap absorbs it (only "renamed" here).


def edit(spec: EndpointSpec, section: str, path: str, change) -> EndpointSpec:
    def walk(source: Obj, names: list[str]) -> Obj:
        fields = []
        for key, value in source.fields:
            if key == names[0]:
                value = change(value) if len(names) == 1 else replace(
                    value, kind=walk(value.kind, names[1:]))  # fmt: skip
                if value is None:
                    continue
            fields.append((key, value))
        if len(names) == 1 and names[0] not in source.names and change(None) is not None:
            fields.append((names[0], change(None)))
        return Obj(tuple(fields))

    sections = tuple(
        replace(s, source=walk(s.source, path.split("."))) if s.name == section else s
        for s in spec.sections
    )
    return replace(spec, sections=sections)


def _home(path: str, change, section: str = "user") -> dict:
    return _replacing(edit(endpoints.MOBILE_HOME, section, path, change))


def _retype(kind):
    return lambda old: None if old is None else replace(old, kind=kind)


def _flags(**flags):
    return lambda old: None if old is None else replace(old, **flags)


_DROP = lambda old: None  # noqa: E731


def _added(field: Field):
    return lambda old: field if old is None else old


CORPUS = {
    "type_changed": (
        _home("itemCount", _retype(Scalar("string")), "recentOrders"),
        {"type_changed"}, 2),
    "type_widened": (
        _home("itemCount", _retype(Scalar("number")), "recentOrders"), {"type_widened"}, 2),
    "union_widened": (
        _home("displayName", _retype(Scalar(("integer", "string")))), {"type_widened"}, 2),
    "became_nullable": (_home("displayName", _flags(nullable=True)), {"became_nullable"}, 2),
    "became_non_nullable": (
        _home("avatarUrl", _flags(nullable=False)), {"became_non_nullable"}, 1),
    "became_optional": (_home("userId", _flags(always_present=False)), {"became_optional"}, 2),
    "enum_value_added": (
        _home("status", _retype(Scalar("string", (*ORDER_STATUSES, "returned"))),
              "recentOrders"), {"enum_value_added"}, 2),
    "enum_value_removed": (
        _home("status", _retype(Scalar("string", ORDER_STATUSES[:-1])), "recentOrders"),
        {"enum_value_removed"}, 1),
    "enum_dropped": (_home("loyaltyTier", _retype(Scalar("string"))), {"enum_dropped"}, 2),
    "enum_became_extensible": (
        _home("loyaltyTier", _retype(Scalar("string", LOYALTY_TIERS, extensible=True))),
        {"enum_became_extensible"}, 2),
    "scalar_became_list": (
        _home("itemCount", _retype(Arr(Scalar("integer"))), "recentOrders"),
        {"kind_changed"}, 2),
    "scalar_became_object": (
        _home("loyaltyTier", _retype(obj(name=string()))), {"field_removed"}, 2),
    "section_kind_changed": (
        _replacing(replace(endpoints.MOBILE_HOME, sections=tuple(
            replace(s, kind="object") if s.name == "recentOrders" else s
            for s in endpoints.MOBILE_HOME.sections))), {"kind_changed"}, 2),
    "nested_became_nullable": (
        {**endpoints.ENDPOINTS, ("web", "dashboard"): edit(
            endpoints.WEB_DASHBOARD, "user", "address.city", _flags(nullable=True))},
        {"became_nullable"}, 2),
    "section_removed": (
        _replacing(replace(endpoints.MOBILE_HOME, sections=endpoints.MOBILE_HOME.sections[:2])),
        {"section_removed"}, 2),
    "vanished_without_replacement": (_home("loyaltyTier", _DROP), {"field_removed"}, 2),
    "unwhitelisted_added": (_home("nickname", _added(string())), set(), None),
    "unwhitelisted_removed": (_home("crmId", _DROP), set(), None),
    "unwhitelisted_retyped": (_home("fraudScore", _retype(Scalar("string"))), set(), None),
    "comments_only": (dict(endpoints.ENDPOINTS), set(), None),
    # A rename: the gate proposes the remap in the same major (see test_gate).
    "renamed": (RENAMED_UPSTREAM, {"field_removed"}, 1),
    # A rename to a wider type: nothing can feed avatarUrl unchanged, so the next major.
    "renamed_and_widened": (
        _replacing(_mobile_home_with_user(_with_user_field(
            "avatarUrl", Field(Scalar(("integer", "string")), nullable=True),
            rename="profileImageUrl"))), {"field_removed"}, 2),
}  # fmt: skip

for _name, (_code, _kinds, _major) in CORPUS.items():
    globals()[f"CORPUS_{_name}"] = _code

# The code dropped an endpoint whose v1 is live.
WITHOUT_WEB_DASHBOARD = {
    key: spec for key, spec in endpoints.ENDPOINTS.items() if key != ("web", "dashboard")
}

# Expand: the user service sends both names and the code declares both.
EXPANDED = _home("profileImageUrl", _added(string(nullable=True)))
