"""The fan-out engine over plain coroutines: concurrency, fail-fast, degrade, deadline."""

from __future__ import annotations

import asyncio

import pytest

from aggregation import fanout
from aggregation.downstream import DownstreamStatus, DownstreamUnavailable
from aggregation.errors import ErrorCode
from aggregation.fanout import CallContext, Dependency
from tests.timing import hang

CONTEXT = CallContext(
    client="mobile", endpoint="home", subject="usr_1", trace_id="t" * 32, timeout=5.0
)


def run(dependencies, *, deadline: float = 5.0):
    return asyncio.run(fanout.run(tuple(dependencies), CONTEXT, deadline=deadline))


def value(result):
    async def fetch(context, done):
        await asyncio.sleep(0)
        return result

    return fetch


def failing(error):
    async def fetch(context, done):
        raise error

    return fetch


def test_dependencies_run_concurrently() -> None:
    started: list[str] = []
    gate = asyncio.Event

    async def scenario():
        both = gate()

        def waiter(name):
            async def fetch(context, done):
                started.append(name)
                if len(started) == 2:
                    both.set()
                await asyncio.wait_for(both.wait(), 1)  # deadlocks if run one by one
                return name

            return fetch

        return await fanout.run(
            (Dependency("a", waiter("a")), Dependency("b", waiter("b"))), CONTEXT, deadline=2
        )

    result = asyncio.run(scenario())
    assert result.values == {"a": "a", "b": "b"}
    assert result.degraded == ()


def test_non_critical_failure_gives_the_default_and_marks_degraded() -> None:
    result = run(
        [
            Dependency("user", value({"id": 1}), critical=True),
            Dependency("recs", failing(DownstreamStatus("recommendation", 503)), default=[]),
        ]
    )
    assert result.values == {"user": {"id": 1}, "recs": []}
    assert result.degraded == ("recs",)


def test_critical_failure_is_raised_and_cancels_the_rest() -> None:
    cancelled = asyncio.Event

    async def scenario():
        flag = cancelled()

        async def slow(context, done):
            try:
                await hang()
            except asyncio.CancelledError:
                flag.set()
                raise

        with pytest.raises(fanout.CriticalDependencyFailed) as info:
            await fanout.run(
                (
                    Dependency(
                        "user",
                        failing(DownstreamUnavailable("user")),
                        critical=True,
                        unavailable_code=ErrorCode.USER_PROFILE_UNAVAILABLE,
                    ),
                    Dependency("recs", slow, default=[]),
                ),
                CONTEXT,
                deadline=60,
            )
        assert flag.is_set()
        return info.value

    failure = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert failure.dependency.name == "user"
    assert failure.error.outcome == "unavailable"


def test_per_dependency_timeout_degrades_only_that_dependency() -> None:
    async def slow(context, done):
        await hang()

    result = run(
        [
            Dependency("user", value(1), critical=True),
            Dependency("recs", slow, default=[], timeout=0.05),
        ]
    )
    assert result.values["recs"] == []
    assert result.degraded == ("recs",)


def test_request_deadline_fails_a_slow_critical_dependency() -> None:
    async def slow(context, done):
        await hang()

    with pytest.raises(fanout.CriticalDependencyFailed) as info:
        run([Dependency("user", slow, critical=True)], deadline=0.05)
    assert info.value.error.outcome == "timeout"


def test_dependency_waits_for_what_it_needs_and_sees_it() -> None:
    async def enrich(context, done):
        return [item * 10 for item in done["recs"]]

    result = run(
        [
            Dependency("recs", value([1, 2]), default=[]),
            Dependency("enriched", enrich, needs=("recs",), default=None),
        ]
    )
    assert result.values["enriched"] == [10, 20]


def test_dependency_is_skipped_when_what_it_needs_failed() -> None:
    calls: list[str] = []

    async def enrich(context, done):
        calls.append("enrich")
        return "never"

    result = run(
        [
            Dependency("recs", failing(DownstreamStatus("r", 500)), default=[]),
            Dependency("enriched", enrich, needs=("recs",), default="plain"),
        ]
    )
    assert calls == []
    assert result.values["enriched"] == "plain"
    assert result.degraded == ("recs",)


def test_a_bug_in_a_non_critical_dependency_degrades_instead_of_failing() -> None:
    result = run(
        [
            Dependency("user", value(1), critical=True),
            Dependency("recs", failing(KeyError("items")), default=[]),
        ]
    )
    assert result.values["recs"] == []
    assert result.degraded == ("recs",)


def test_a_bug_in_a_critical_dependency_propagates() -> None:
    with pytest.raises(KeyError):
        run([Dependency("user", failing(KeyError("boom")), critical=True)])


@pytest.fixture
def fresh_latencies(monkeypatch):
    monkeypatch.setattr(fanout, "observed_latency", {})
    return fanout.observed_latency


def recording(started: list[str], name: str):
    async def fetch(context, done):
        started.append(name)  # runs when the task first runs: the order requests leave in
        await asyncio.sleep(0)
        return name

    return fetch


def test_the_declared_order_stands_until_latencies_are_known(fresh_latencies) -> None:
    started: list[str] = []
    run([Dependency(name, recording(started, name)) for name in ("user", "orders", "recs")])
    assert started == ["user", "orders", "recs"]
    # Every call succeeded: each has an observed latency now.
    assert set(fresh_latencies) == {"user", "orders", "recs"}


def test_dependencies_that_start_together_start_slowest_first(fresh_latencies) -> None:
    fresh_latencies.update(user=0.030, orders=0.060, recs=0.090)
    started: list[str] = []
    run([Dependency(name, recording(started, name)) for name in ("user", "orders", "recs")])
    assert started == ["recs", "orders", "user"]


def test_the_observed_latency_is_a_moving_average_of_successes(fresh_latencies) -> None:
    fresh_latencies["slow"] = 1.0
    run([Dependency("slow", value("x"))])
    # One fast success moves the average a fifth of the way, not all the way.
    assert 0.75 < fresh_latencies["slow"] < 0.85
    run([Dependency("slow", failing(DownstreamUnavailable("slow", "refused")))])
    assert 0.75 < fresh_latencies["slow"] < 0.85  # failures do not count
