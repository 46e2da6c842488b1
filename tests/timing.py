"""Time in tests without waiting on it: a fake clock, a hang, and an event-driven wait.

No test sleeps more than ``MAX_SLEEP_SECONDS`` at a time or asserts on how long something
took (tests/test_suite_rules.py holds the suite to it). A component with timing takes a
clock that the test steps (``FakeClock``); a test that waits for another process polls a
condition in short steps up to a generous deadline (``until``), which fails only when the
thing never happens; code that must "never answer" awaits ``hang()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

MAX_SLEEP_SECONDS = 0.5


class FakeClock:
    """A clock that moves only when the test says so; call it for the current time."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def until(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, message: str = ""
) -> T:
    """Poll ``condition`` every ``interval`` seconds until it returns something truthy, and
    return that; fail after ``timeout`` seconds (a bound for a broken run, not a figure
    under test)."""
    assert interval <= MAX_SLEEP_SECONDS
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, message or f"still not true after {timeout} s"
        time.sleep(interval)


async def hang() -> None:
    """Never return (until cancelled): a dependency or server that does not answer."""
    await asyncio.Event().wait()
