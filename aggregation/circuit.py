"""A per-service circuit breaker judged on the failure rate over a sliding time window.

As resilience4j's ``CircuitBreaker`` does: the breaker opens when, over the last
``window_seconds``, at least ``minimum_calls`` calls were made and at least
``failure_rate`` of them failed. Open, it fails fast for ``reset_seconds``; then it lets
``half_open_calls`` probes through (half-open) and closes if fewer than ``failure_rate``
of them failed, or opens again.

Why a rate and not consecutive failures: a service failing 30 % of calls produces runs of
five failures often enough that a consecutive-failure breaker opened ~17 times in five
minutes, turning 30 % failed calls into 51 % degraded pages. A rate over a window leaves
such a service alone (its failures degrade their own pages) and still opens within
``minimum_calls`` calls when the service is down.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum


class CircuitState(IntEnum):
    """Numeric so the state can be exported as a gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class SlidingWindow:
    """Calls and failures over the last ``seconds``, kept in ``buckets`` slices of time."""

    def __init__(self, seconds: float, buckets: int = 10) -> None:
        self.buckets = buckets
        self.width = seconds / buckets
        self._slots: deque[list[int]] = deque()  # [slice index, calls, failures]

    def _expire(self, now: float) -> int:
        index = int(now // self.width)
        while self._slots and self._slots[0][0] <= index - self.buckets:
            self._slots.popleft()
        return index

    def record(self, now: float, *, failed: bool) -> None:
        index = self._expire(now)
        if not self._slots or self._slots[-1][0] != index:
            self._slots.append([index, 0, 0])
        slot = self._slots[-1]
        slot[1] += 1
        slot[2] += failed

    def totals(self, now: float) -> tuple[int, int]:
        """(calls, failures) within the window ending now."""
        self._expire(now)
        return sum(s[1] for s in self._slots), sum(s[2] for s in self._slots)

    def clear(self) -> None:
        self._slots.clear()


class CircuitBreaker:
    """Opens on a failure rate over a sliding window; probes with a few calls to recover.

    The clock is injected so tests step time instead of sleeping.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_rate: float = 0.5,
        minimum_calls: int = 20,
        window_seconds: float = 10.0,
        half_open_calls: int = 3,
        reset_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, CircuitState], None] | None = None,
    ) -> None:
        self.name = name
        self.failure_rate = failure_rate
        self.minimum_calls = minimum_calls
        self.half_open_calls = half_open_calls
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.on_change = on_change
        self._window = SlidingWindow(window_seconds)
        self._state = CircuitState.CLOSED
        self._opened_at = 0.0
        self._probing = 0  # probes let through and not yet answered
        self._probe_calls = 0
        self._probe_failures = 0
        # Workers run one event loop each, but tests and management commands may call
        # from several threads; the lock keeps the counters consistent for them too.
        self._lock = threading.Lock()

    @property
    def state(self) -> CircuitState:
        with self._lock:
            if self._state is CircuitState.OPEN and self._cooled_down():
                return CircuitState.HALF_OPEN
            return self._state

    def _cooled_down(self) -> bool:
        return self.clock() - self._opened_at >= self.reset_seconds

    def _set(self, state: CircuitState) -> None:
        if state is not self._state:
            self._state = state
            if self.on_change is not None:
                self.on_change(self.name, state)

    def _open(self) -> None:
        self._opened_at = self.clock()
        self._window.clear()
        self._set(CircuitState.OPEN)

    def allow(self) -> bool:
        """Whether a call may go out now. Half-open, only ``half_open_calls`` probes."""
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return True
            if self._state is CircuitState.OPEN:
                if not self._cooled_down():
                    return False
                self._probing = self._probe_calls = self._probe_failures = 0
                self._set(CircuitState.HALF_OPEN)
            if self._probing + self._probe_calls >= self.half_open_calls:
                return False
            self._probing += 1
            return True

    def record_success(self) -> None:
        self._record(failed=False)

    def record_failure(self) -> None:
        self._record(failed=True)

    def _record(self, *, failed: bool) -> None:
        with self._lock:
            if self._state is CircuitState.CLOSED:
                now = self.clock()
                self._window.record(now, failed=failed)
                calls, failures = self._window.totals(now)
                if calls >= self.minimum_calls and failures >= self.failure_rate * calls:
                    self._open()
            elif self._state is CircuitState.HALF_OPEN:
                self._probing = max(0, self._probing - 1)
                self._probe_calls += 1
                self._probe_failures += failed
                if self._probe_failures >= self.failure_rate * self.half_open_calls:
                    self._open()  # the probes can no longer pass
                elif self._probe_calls >= self.half_open_calls:
                    self._window.clear()
                    self._set(CircuitState.CLOSED)
            # Open: a late answer to a call let through before opening changes nothing.

    def release(self) -> None:
        """A call that was allowed ended without a verdict (cancelled): free its probe."""
        with self._lock:
            self._probing = max(0, self._probing - 1)
