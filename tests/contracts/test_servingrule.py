"""The one serving rule: the choice itself, and the gate and the snapshot agreeing on it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from aggregation import endpoints
from contract_core.paths import RuleError
from contract_core.schema import Rule, string
from contract_core.servingrule import Approved, choose
from contract_core.shapes import build_shape, fingerprint
from contracts.gate import evaluate
from contracts.models import Client, ContractVersion, Endpoint, FieldRule, MajorVersion, Status
from contracts.serving import load_snapshot
from tests.contracts.code_doubles import edit

# -- choose(), on plain data ----------------------------------------------------------------


def produce(rules):
    if any(rule.source == "gone" for rule in rules):
        raise RuleError("user has no field 'gone'")
    return {"rules": [rule.source for rule in rules]}


def version(minor: int, *sources: str, matching: bool = True) -> Approved:
    rules = tuple(Rule("user", source) for source in sources)
    shape = {"rules": list(sources)} if matching else {"other": minor}
    return Approved(minor, fingerprint(shape), rules)


def test_the_highest_matching_version_is_served_and_only_the_newest_is_current() -> None:
    choice = choose(1, [version(0, "a"), version(2, "b", matching=False), version(1, "c")], produce)
    assert choice.serving.minor == 1
    assert not choice.current
    assert [attempt.version.minor for attempt in choice.attempts] == [2, 1]
    assert choice.reason == "v1.2: this code produces another shape; this code serves v1.1"


def test_the_newest_matching_version_is_current() -> None:
    choice = choose(3, [version(0, "a"), version(1, "b")], produce)
    assert (choice.serving.minor, choice.current, choice.reason) == (1, True, "")


def test_a_rule_the_code_cannot_apply_serves_nothing_and_says_why() -> None:
    choice = choose(1, [version(0, "gone")], produce)
    assert choice.serving is None and not choice.current
    assert choice.reason == "v1.0: user has no field 'gone'"
    assert choose(1, [], produce).reason == "no approved version"


# -- the gate passes exactly when the snapshot serves every live major at its newest ---------

PROBE = replace(endpoints.MOBILE_HOME, name="probe")
CODE = {**endpoints.ENDPOINTS, PROBE.key: PROBE}
# Another code's shapes: avatarUrl never null, and a field this code does not declare.
OTHER = edit(
    edit(PROBE, "user", "avatarUrl", lambda f: f and replace(f, nullable=False)),
    "user",
    "nickname",
    lambda f: f or string(),
)
FIELDS = ("userId", "displayName", "avatarUrl", "loyaltyTier", "nickname")

versions_strategy = st.lists(
    st.tuples(
        st.sampled_from([Status.APPROVED, Status.APPROVED, Status.RETIRED]),
        st.sets(st.sampled_from(FIELDS), min_size=1, max_size=3),
        st.booleans(),  # written by this code (when it can be) or by the other code
    ),
    min_size=1,
    max_size=4,
)
registries = st.lists(
    st.tuples(versions_strategy, st.booleans()),  # a major's versions; past its sunset?
    min_size=1,
    max_size=3,
)


def _create(major: MajorVersion, minor: int, status, fields, ours, author, approver) -> None:
    code = PROBE if ours and "nickname" not in fields else OTHER
    rules = [Rule("user", name) for name in sorted(fields)]
    shape = build_shape(code, rules)
    row = ContractVersion.objects.create(major=major, author=author)
    for position, rule in enumerate(rules):
        FieldRule.objects.create(version=row, section="user", source_path=rule.source,
                                 position=position)  # fmt: skip
    row.status, row.minor, row.approver = Status.APPROVED, minor, approver
    row.shape, row.fingerprint = shape, fingerprint(shape)
    row.save()
    if status == Status.RETIRED:
        row.status = Status.RETIRED
        row.save()


@pytest.mark.django_db
@hypothesis_settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(registry=registries)
def test_the_gate_passes_exactly_when_every_live_major_is_served_at_its_newest_minor(
    demo, registry, settings
) -> None:
    settings.BFF = {**settings.BFF,
                           "ENDPOINTS": "tests.contracts.test_servingrule.CODE"}  # fmt: skip
    author = demo.get(username="mobile-dev")
    approver = demo.get(username="release-manager")
    with transaction.atomic():
        endpoint = Endpoint.objects.create(client=Client.objects.get(name="mobile"), name="probe")
        for number, (versions, sunset) in enumerate(registry, start=1):
            past = timezone.now() - timedelta(days=1)
            major = MajorVersion.objects.create(
                endpoint=endpoint, number=number,
                deprecated_at=past if sunset and number > 1 else None,
                sunset_at=past if sunset and number > 1 else None,
            )  # fmt: skip
            for minor, (status, fields, ours) in enumerate(versions):
                _create(major, minor, status, fields, ours, author, approver)

        gate_passes = not [f for f in evaluate() if f.endpoint == "probe"]
        snapshot = load_snapshot()
        live = {
            major.number
            for major in endpoint.majors.all()
            if major.sunset_at is None and major.versions.filter(status=Status.APPROVED).exists()
        }
        states = {key[2]: state for key, state in snapshot.majors.items() if key[1] == "probe"}
        # An endpoint with no live major at all has no contract: the gate says so.
        assert gate_passes == (bool(live) and all(states[n].current for n in live))
        for number in live:
            state = states[number]
            assert state.current == (
                state.serving is not None and state.serving.schema_version == state.approved[0]
            )
        transaction.set_rollback(True)
