"""The circuit breaker, stepped with an injected clock."""

from __future__ import annotations

import random

from aggregation.circuit import CircuitBreaker, CircuitState, SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, changes: list | None = None, **options) -> CircuitBreaker:
    policy = {"failure_rate": 0.5, "minimum_calls": 4, "window_seconds": 10.0,
              "half_open_calls": 2, "reset_seconds": 10.0, **options}  # fmt: skip
    return CircuitBreaker(
        "user",
        clock=clock,
        on_change=(lambda name, state: changes.append(state)) if changes is not None else None,
        **policy,
    )


def test_a_down_service_opens_it_after_the_minimum_calls_and_it_fails_fast() -> None:
    cb = breaker(Clock())
    for _ in range(3):
        assert cb.allow()
        cb.record_failure()
    assert cb.state is CircuitState.CLOSED  # too few calls to judge
    cb.record_failure()
    assert cb.state is CircuitState.OPEN
    assert not cb.allow()


def test_a_failure_rate_below_the_threshold_keeps_it_closed() -> None:
    cb = breaker(Clock())
    for outcome in [False, False, True] * 10:  # a third of the calls fail
        cb.record_failure() if outcome else cb.record_success()
    assert cb.state is CircuitState.CLOSED


def test_the_rate_reaching_the_threshold_opens_it() -> None:
    cb = breaker(Clock())
    for outcome in [False, True, False, True]:
        cb.record_failure() if outcome else cb.record_success()
    assert cb.state is CircuitState.OPEN


def test_failures_older_than_the_window_no_longer_count() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.now += 11
    for _ in range(3):
        cb.record_success()
    cb.record_failure()
    assert cb.state is CircuitState.CLOSED  # 1 failure in 4 calls within the window


def test_after_the_reset_time_only_the_probes_go_through() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(4):
        cb.record_failure()
    assert not cb.allow()
    clock.now += 10
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.allow()
    assert cb.allow()
    assert not cb.allow()  # two probes, no more


def test_probes_that_pass_close_it_and_failing_probes_reopen_it() -> None:
    clock = Clock()
    changes: list = []
    cb = breaker(clock, changes)
    for _ in range(4):
        cb.record_failure()
    clock.now += 10
    assert cb.allow()
    cb.record_failure()  # 1 of 2 probes failed: 50 %, the threshold
    assert cb.state is CircuitState.OPEN
    assert not cb.allow()
    clock.now += 10
    assert cb.allow()
    assert cb.allow()
    cb.record_success()
    assert cb.state is CircuitState.HALF_OPEN
    cb.record_success()
    assert cb.state is CircuitState.CLOSED
    assert changes == [
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.CLOSED,
    ]
    # Closed again with a fresh window: the failures before opening do not count.
    for _ in range(3):
        cb.record_failure()
    assert cb.state is CircuitState.CLOSED


def test_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    cb = breaker(clock, half_open_calls=1)
    for _ in range(4):
        cb.record_failure()
    clock.now += 10
    assert cb.allow()
    assert not cb.allow()
    cb.release()
    assert cb.allow()


def test_sliding_window_counts_within_its_span_only() -> None:
    window = SlidingWindow(10.0)
    window.record(100.0, failed=True)
    window.record(105.0, failed=False)
    assert window.totals(105.0) == (2, 1)
    assert window.totals(110.5) == (1, 0)
    assert window.totals(116.0) == (0, 0)


def test_30_percent_failures_leave_the_breaker_closed() -> None:
    """The issue's figure: a consecutive-failure breaker degraded 51 % of pages here."""
    clock, rng = Clock(), random.Random(7)
    cb = breaker(clock, minimum_calls=20)
    refused = 0
    for _ in range(3000):
        clock.now += 0.1  # 10 calls a second for five minutes
        if not cb.allow():
            refused += 1
            continue
        cb.record_failure() if rng.random() < 0.3 else cb.record_success()
    assert refused == 0
