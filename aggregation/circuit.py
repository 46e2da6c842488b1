"""A per-service circuit breaker: fail fast while a service is down, probe to recover."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import IntEnum


class CircuitState(IntEnum):
    """Numeric so the state can be exported as a gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; after ``reset_seconds``
    lets one probe through (half-open); the probe's success closes it again, its failure
    reopens it for another ``reset_seconds``.

    The clock is injected so tests step time instead of sleeping.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, CircuitState], None] | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.on_change = on_change
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
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

    def allow(self) -> bool:
        """Whether a call may go out now. In half-open state, only one probe at a time."""
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return True
            if self._state is CircuitState.OPEN:
                if not self._cooled_down():
                    return False
                self._set(CircuitState.HALF_OPEN)
            if self._probing:
                return False
            self._probing = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._probing = False
            self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._probing = False
            self._failures += 1
            if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._opened_at = self.clock()
                self._set(CircuitState.OPEN)

    def release(self) -> None:
        """A call that was allowed ended without a verdict (cancelled): free the probe."""
        with self._lock:
            self._probing = False
