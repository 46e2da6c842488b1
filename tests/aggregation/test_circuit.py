"""The circuit breaker, stepped with an injected clock."""

from __future__ import annotations

from aggregation.circuit import CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, changes: list | None = None) -> CircuitBreaker:
    return CircuitBreaker(
        "user",
        failure_threshold=3,
        reset_seconds=10,
        clock=clock,
        on_change=(lambda name, state: changes.append(state)) if changes is not None else None,
    )


def test_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        assert cb.allow()
        cb.record_failure()
    assert cb.state is CircuitState.OPEN
    assert not cb.allow()


def test_a_success_resets_the_count() -> None:
    cb = breaker(Clock())
    cb.record_failure()
    cb.record_failure()
    cb.record_success()
    cb.record_failure()
    cb.record_failure()
    assert cb.state is CircuitState.CLOSED


def test_after_the_reset_time_one_probe_goes_through() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.now += 10
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.allow()
    assert not cb.allow()  # only one probe at a time


def test_successful_probe_closes_and_failed_probe_reopens() -> None:
    clock = Clock()
    changes: list = []
    cb = breaker(clock, changes)
    for _ in range(3):
        cb.record_failure()
    clock.now += 10
    assert cb.allow()
    cb.record_failure()
    assert cb.state is CircuitState.OPEN
    assert not cb.allow()
    clock.now += 10
    assert cb.allow()
    cb.record_success()
    assert cb.state is CircuitState.CLOSED
    assert changes == [
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.CLOSED,
    ]


def test_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.now += 10
    assert cb.allow()
    cb.release()
    assert cb.allow()
