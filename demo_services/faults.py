"""The fault plan of a demo service: parsed and validated from JSON, then applied per call."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from demo_services.responses import JSON, Receive, Send, send_body

INJECTED_BODY = b'{"error":"injected"}'
SHUTTING_DOWN_BODY = b'{"error":"shutting_down"}'
_MAX_DELAY_MS = 3_600_000
_MAX_OVERSIZED_BYTES = 1 << 30
_CHUNK = b"x" * 65_536


class FaultPlanError(ValueError):
    """A fault plan that is not a JSON object of known, well-typed, in-range fields."""


@dataclass(frozen=True)
class FaultPlan:
    """What a service does wrong; the defaults do nothing wrong."""

    latency_ms: float = 0
    jitter_ms: float = 0
    status: int | None = None
    failure_rate: float = 1.0
    hang: bool = False
    malformed_json: bool = False
    oversized_bytes: int | None = None
    content_type: str | None = None
    seed: int | None = None

    @classmethod
    def from_json(cls, data: object) -> FaultPlan:
        """Validate a decoded JSON value; raises FaultPlanError naming the first problem."""
        if not isinstance(data, dict):
            raise FaultPlanError("a fault plan must be a JSON object")
        allowed = [field.name for field in fields(cls)]
        for key in data:
            if key not in allowed:
                raise FaultPlanError(f"unknown key {key!r}; allowed keys: {', '.join(allowed)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            _VALIDATORS[key](key, value)
            values[key] = value
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_empty(self) -> bool:
        """True when no call is delayed or altered (`failure_rate` and `seed` alone do nothing)."""
        return not (self.latency_ms or self.jitter_ms or self.hang or self.has_failure_faults)

    @property
    def has_failure_faults(self) -> bool:
        return (
            self.status is not None
            or self.malformed_json
            or self.oversized_bytes is not None
            or self.content_type is not None
        )


NO_FAULTS = FaultPlan()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_between(low: float, high: float) -> Callable[[str, object], None]:
    def check(key: str, value: object) -> None:
        if not _is_number(value) or not low <= value <= high:  # type: ignore[operator]
            raise FaultPlanError(f"{key} must be a number between {low:g} and {high:g}")

    return check


def _optional_int_between(low: int, high: int) -> Callable[[str, object], None]:
    def check(key: str, value: object) -> None:
        if value is not None and (not _is_int(value) or not low <= value <= high):  # type: ignore[operator]
            raise FaultPlanError(f"{key} must be null or an integer between {low} and {high}")

    return check


def _boolean(key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise FaultPlanError(f"{key} must be true or false")


def _content_type(key: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value or not all(" " <= ch <= "~" for ch in value):
        raise FaultPlanError(f"{key} must be null or a non-empty printable ASCII string")


def _seed(key: str, value: object) -> None:
    if value is not None and not _is_int(value):
        raise FaultPlanError(f"{key} must be null or an integer")


_VALIDATORS: dict[str, Callable[[str, object], None]] = {
    "latency_ms": _number_between(0, _MAX_DELAY_MS),
    "jitter_ms": _number_between(0, _MAX_DELAY_MS),
    "status": _optional_int_between(100, 599),
    "failure_rate": _number_between(0, 1),
    "hang": _boolean,
    "malformed_json": _boolean,
    "oversized_bytes": _optional_int_between(1, _MAX_OVERSIZED_BYTES),
    "content_type": _content_type,
    "seed": _seed,
}


@dataclass(frozen=True)
class Decision:
    """What happens to one call under the plan."""

    delay_s: float
    fail: bool


class FaultState:
    """The plan a service currently follows, with the random source it draws from."""

    def __init__(
        self,
        rng_factory: Callable[[int | None], random.Random] = random.Random,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._rng_factory = rng_factory
        self._sleep = sleep  # injected by tests, which step time instead of waiting
        self._released = asyncio.Event()
        self.install(NO_FAULTS)

    def install(self, plan: FaultPlan) -> None:
        # A fresh random source per plan makes a seeded plan replay the same sequence.
        self.plan = plan
        self.active = not plan.is_empty
        self._rng = self._rng_factory(plan.seed)

    def clear(self) -> None:
        self.install(NO_FAULTS)

    def release_hung_calls(self) -> None:
        """Answer hanging calls, now and later, with 503: a hang must not outlive the server."""
        self._released.set()

    def decide(self) -> Decision:
        plan = self.plan
        delay_ms = plan.latency_ms
        if plan.jitter_ms:
            delay_ms += self._rng.random() * plan.jitter_ms
        fail = plan.has_failure_faults and (
            plan.failure_rate >= 1 or self._rng.random() < plan.failure_rate
        )
        return Decision(delay_s=delay_ms / 1000, fail=fail)

    async def respond(self, receive: Receive, send: Send, status: int, body: bytes) -> None:
        """Send the response `status`/`body` as the plan bends it.

        The latency (plus a uniform jitter) is waited out first; then `hang` keeps the call
        open until the client goes away. Otherwise, with probability `failure_rate`, the
        failure faults apply: `status` replaces the response with `{"error": "injected"}`,
        `oversized_bytes` pads the object to at least that many bytes, `malformed_json`
        truncates the body and `content_type` relabels it.
        """
        if not self.active:
            await send_body(send, status, body)
            return
        plan = self.plan
        decision = self.decide()
        if decision.delay_s:
            await self._sleep(decision.delay_s)
        if plan.hang:
            await self._hang(receive, send)
            return
        if not decision.fail:
            await send_body(send, status, body)
            return
        content_type = JSON if plan.content_type is None else plan.content_type.encode()
        if plan.status is not None:
            status, body = plan.status, INJECTED_BODY
        if plan.oversized_bytes is not None:
            await _send_padded(
                send, status, body, plan.oversized_bytes, content_type, plan.malformed_json
            )
            return
        if plan.malformed_json:
            # Any strict prefix of a JSON object is invalid JSON.
            body = body[: max(1, len(body) // 2)]
        await send_body(send, status, body, content_type)

    async def _hang(self, receive: Receive, send: Send) -> None:
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        released = asyncio.ensure_future(self._released.wait())
        try:
            await asyncio.wait((disconnected, released), return_when=asyncio.FIRST_COMPLETED)
            client_gone = disconnected.done()
        finally:
            disconnected.cancel()
            released.cancel()
        if not client_gone:
            await send_body(send, 503, SHUTTING_DOWN_BODY)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_padded(
    send: Send, status: int, body: bytes, size: int, content_type: bytes, truncate: bool
) -> None:
    # The real object gains a "_padding" member, so the big body is still the right shape;
    # it is streamed so a gigabyte costs no more memory than a chunk.
    head = body[:-1] + (b"," if len(body) > 2 else b"") + b'"_padding":"'
    tail = b"" if truncate else b'"}'
    padding = max(0, size - len(head) - len(tail))
    headers = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % (len(head) + padding + len(tail))),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": head, "more_body": True})
    while padding > 0:
        chunk = _CHUNK if padding >= len(_CHUNK) else _CHUNK[:padding]
        padding -= len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": tail})
