"""The circuit breaker against a model of its rule, driven by a Hypothesis state machine.

The model is the rule as aggregation/circuit.py documents it, written out plainly: closed,
the breaker opens when, over the window (its last ``buckets`` slices of time), at least
``minimum_calls`` calls were recorded and at least ``failure_rate`` of them failed; open,
it refuses every call for ``reset_seconds``; then it lets ``half_open_calls`` probes
through, reopens as soon as failures reach ``failure_rate`` of the probes, and closes
with a fresh window once all probes answered. Any verdict counts in the state the breaker
is in when it arrives; a cancelled call frees its probe. Time is a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from aggregation.circuit import CircuitBreaker, CircuitState
from tests.timing import FakeClock

CLOSED, HALF_OPEN, OPEN = CircuitState.CLOSED, CircuitState.HALF_OPEN, CircuitState.OPEN
BUCKETS = 10  # SlidingWindow's default


@dataclass
class Model:
    failure_rate: float
    minimum_calls: int
    window_seconds: float
    half_open_calls: int
    reset_seconds: float
    state: CircuitState = CLOSED
    opened_at: float = 0.0
    calls: list[tuple[float, bool]] = field(default_factory=list)  # (when, failed)
    probing: int = 0
    probe_calls: int = 0
    probe_failures: int = 0
    changes: list[CircuitState] = field(default_factory=list)

    def _slice(self, when: float) -> int:
        return int(when // (self.window_seconds / BUCKETS))

    def in_window(self, now: float) -> list[bool]:
        current = self._slice(now)
        return [failed for when, failed in self.calls if self._slice(when) > current - BUCKETS]

    def _become(self, state: CircuitState) -> None:
        if state is not self.state:
            self.state = state
            self.changes.append(state)

    def _open(self, now: float) -> None:
        self.opened_at, self.calls = now, []
        self._become(OPEN)

    def visible_state(self, now: float) -> CircuitState:
        if self.state is OPEN and now - self.opened_at >= self.reset_seconds:
            return HALF_OPEN
        return self.state

    def allow(self, now: float) -> bool:
        if self.state is CLOSED:
            return True
        if self.state is OPEN:
            if now - self.opened_at < self.reset_seconds:
                return False
            self.probing = self.probe_calls = self.probe_failures = 0
            self._become(HALF_OPEN)
        if self.probing + self.probe_calls >= self.half_open_calls:
            return False
        self.probing += 1
        return True

    def record(self, now: float, failed: bool) -> None:
        if self.state is CLOSED:
            self.calls.append((now, failed))
            window = self.in_window(now)
            if len(window) >= self.minimum_calls and sum(window) >= self.failure_rate * len(window):
                self._open(now)
        elif self.state is HALF_OPEN:
            self.probing = max(0, self.probing - 1)
            self.probe_calls += 1
            self.probe_failures += failed
            if self.probe_failures >= self.failure_rate * self.half_open_calls:
                self._open(now)
            elif self.probe_calls >= self.half_open_calls:
                self.calls = []
                self._become(CLOSED)

    def release(self) -> None:
        self.probing = max(0, self.probing - 1)


class BreakerMachine(RuleBasedStateMachine):
    """Calls go out (if allowed), answer, fail or are cancelled, while time moves on."""

    @initialize(
        failure_rate=st.sampled_from([0.25, 0.5, 0.75, 1.0]),
        minimum_calls=st.integers(1, 5),
        window_seconds=st.sampled_from([1.0, 10.0, 30.0]),
        half_open_calls=st.integers(1, 3),
        reset_seconds=st.sampled_from([0.5, 5.0, 30.0]),
    )
    def start(self, **policy) -> None:
        self.clock = FakeClock(1000.0)
        self.changes: list[CircuitState] = []
        self.breaker = CircuitBreaker(
            "user",
            clock=self.clock,
            on_change=lambda name, state: self.changes.append(state),
            **policy,
        )
        self.model = Model(**policy)
        self.in_flight = 0  # calls allowed and not yet answered

    @rule()
    def call_goes_out(self) -> None:
        allowed = self.breaker.allow()
        assert allowed == self.model.allow(self.clock.now)
        self.in_flight += allowed

    @precondition(lambda self: self.in_flight > 0)
    @rule(failed=st.booleans())
    def call_answers(self, failed: bool) -> None:
        self.in_flight -= 1
        self.breaker.record_failure() if failed else self.breaker.record_success()
        self.model.record(self.clock.now, failed)

    @rule(failed=st.booleans())
    def late_answer_of_a_call_made_elsewhere(self, failed: bool) -> None:
        # Verdicts need not follow an allow() of this breaker (other tasks, late answers).
        self.breaker.record_failure() if failed else self.breaker.record_success()
        self.model.record(self.clock.now, failed)

    @precondition(lambda self: self.in_flight > 0)
    @rule()
    def call_is_cancelled(self) -> None:
        self.in_flight -= 1
        self.breaker.release()
        self.model.release()

    @rule(seconds=st.sampled_from([0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 12.0, 31.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def same_state_as_the_model(self) -> None:
        assert self.breaker.state is self.model.visible_state(self.clock.now)

    @invariant()
    def same_transitions_reported(self) -> None:
        assert self.changes == self.model.changes
        # Never closed straight from open, nor open twice in a row.
        for before, after in zip([CLOSED, *self.changes], self.changes, strict=False):
            assert before is not after
            assert not (before is OPEN and after is CLOSED)

    @invariant()
    def never_more_probes_than_allowed(self) -> None:
        if self.model.state is HALF_OPEN:
            assert self.model.probing + self.model.probe_calls <= self.model.half_open_calls


TestBreakerMachine = BreakerMachine.TestCase
