"""The registry's part of ``/readyz``: "send me traffic", judged on the serving snapshot.

Readiness is lenient where the deploy gate is strict (SPEC sections 6 and 9):

* Before its first snapshot an instance is not ready.
* Until it has been ready once (it is starting, so it is a deploy of this code), every live
  major this code can serve must be served at its newest approved minor, and every
  endpoint the code declares must have a contract; otherwise ``/readyz`` answers 503
  naming the contract, so a rolling deploy never sends traffic to code that would regress
  one. The one exception is a major approved for newer code: one this code serves no
  version of while it serves a lower major of the same endpoint, or of an endpoint this
  code does not declare. New code that dropped a field of a live major serves nothing of
  it either, but that major is not above everything it serves, so it still blocks.
* Once ready, the instance stays ready as long as it still serves every live major it has
  served since. An approval for newer code (a new minor it cannot produce, a new major)
  does not take it out of rotation: it keeps serving the minor it can, and answers the
  URLs of a major it cannot serve with a retryable 503 ``CONTRACT_UNAVAILABLE`` until
  the rollout replaces it.

``judge()`` is pure; the registry calls it on every reload and remembers what it owes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async

from contract_core.hooks import ProbeResult

if TYPE_CHECKING:
    from contracts.serving import Key, MajorState


@dataclass(frozen=True)
class Readiness:
    """The verdict on one snapshot; every mapping is keyed ``client/endpoint/vN``."""

    ready: bool
    unserveable: Mapping[str, str] = field(default_factory=dict)  # why not ready
    newer_code: Mapping[str, str] = field(default_factory=dict)  # answered 503, still ready
    older_minor: Mapping[str, str] = field(default_factory=dict)  # served behind the newest


def _label(key: Key) -> str:
    client, endpoint, major = key
    return f"{client}/{endpoint}/v{major}"


def _live(state: MajorState, now: datetime) -> bool:
    return bool(state.approved) and (state.sunset_at is None or state.sunset_at > now)


def judge(
    majors: Mapping[Key, MajorState],
    code_endpoints: Iterable[tuple[str, str]],
    owed: frozenset[Key] | None,
    now: datetime,
) -> Readiness:
    """Whether an instance holding this snapshot should get traffic.

    ``owed`` is None while the instance has never been ready, else the majors it has
    served since it first was.
    """
    declared = set(code_endpoints)
    live = {key: state for key, state in majors.items() if _live(state, now)}
    highest_served: dict[tuple[str, str], int] = {}
    for (client, endpoint, major), state in live.items():
        if state.serving is not None:
            previous = highest_served.get((client, endpoint), 0)
            highest_served[(client, endpoint)] = max(previous, major)
    unserveable: dict[str, str] = {}
    newer_code: dict[str, str] = {}
    older_minor: dict[str, str] = {}
    for key, state in sorted(live.items()):
        if state.current:
            continue
        if state.serving is not None:
            older_minor[_label(key)] = (
                f"serves {state.serving.schema_version}; newest approved {state.approved[0]}"
            )
            if owed is None:
                unserveable[_label(key)] = state.reason
            continue
        for_newer_code = key[:2] not in declared or key[2] > highest_served.get(key[:2], key[2])
        if key in (owed or ()) or (owed is None and not for_newer_code):
            unserveable[_label(key)] = state.reason
        else:
            newer_code[_label(key)] = state.reason
    if owed is None:
        with_contract = {key[:2] for key in live}
        for client, endpoint in sorted(declared - with_contract):
            unserveable[f"{client}/{endpoint}"] = "no contract in the registry"
    return Readiness(not unserveable, unserveable, newer_code, older_minor)


async def registry_probe() -> ProbeResult:
    from contracts.serving import registry

    if not registry.loaded:
        # Start-up found the database down; try again rather than wait for the poller.
        await sync_to_async(registry.refresh)()
    snapshot = registry.snapshot
    if not registry.loaded:
        return ProbeResult(ok=False, detail={"error": registry.last_error or "not loaded yet"})
    verdict = registry.readiness
    serving = {
        _label(key): state.serving.schema_version
        for key, state in snapshot.majors.items()
        if state.serving is not None
    }
    detail: dict = {"generation": snapshot.generation, "serving": serving}
    if registry.last_error:
        detail["lastError"] = registry.last_error
    if verdict.unserveable:
        detail["unserveable"] = dict(verdict.unserveable)
    if verdict.newer_code:
        detail["approvedForNewerCode"] = dict(verdict.newer_code)
    if verdict.older_minor:
        detail["olderMinor"] = dict(verdict.older_minor)
    return ProbeResult(ok=verdict.ready, detail=detail)
