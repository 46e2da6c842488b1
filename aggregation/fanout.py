"""The fan-out engine: runs an endpoint's dependencies concurrently under one deadline.

Semantics are allSettled for non-critical dependencies (a failure yields the declared
empty default and marks the response degraded) and fail-fast for critical ones (the
first critical failure cancels everything still running and is raised at once, so the
client is not kept waiting for data that can no longer be shown). A dependency may need
the results of others (``needs``); it starts as soon as they have all succeeded, and is
skipped with its default when one of them failed.

Dependencies that can start together start slowest first: each task sends its request
(a fraction of a millisecond of client work) before the next one runs, so the order
decides how late the slowest call, which bounds the page, leaves. The order comes from
each dependency's observed latency in this process (an exponentially weighted average
of its successful calls), so it follows the services as they are, not as declared; until
a dependency has answered once, the declared order stands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aggregation import metrics
from aggregation.downstream import DownstreamError, DownstreamTimeout
from aggregation.errors import ErrorCode
from contract_core.tracing import TraceContext

logger = logging.getLogger(__name__)

TIMEOUT_GRACE_SECONDS = 0.1
# Weight of the newest call in a dependency's latency average: the last ten or so count.
LATENCY_WEIGHT = 0.2
# Observed latency per dependency name, seconds: what orders the starts.
observed_latency: dict[str, float] = {}


@dataclass(frozen=True)
class CallContext:
    """What every downstream call of one request needs to know."""

    client: str
    endpoint: str
    subject: str
    trace_id: str
    timeout: float
    params: Mapping[str, Any] = field(default_factory=dict)
    trace: TraceContext | None = None  # None: X-Trace-Id alone goes downstream


Fetch = Callable[[CallContext, Mapping[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Dependency:
    """One piece of data an endpoint needs, and what to do when it cannot be had."""

    name: str
    fetch: Fetch
    critical: bool = False
    default: Any = None
    needs: tuple[str, ...] = ()
    timeout: float | None = None  # None: the configured default
    unavailable_code: ErrorCode = ErrorCode.INTERNAL  # the 503 code when critical


@dataclass(frozen=True)
class CriticalDependencyFailed(Exception):
    """A critical dependency failed; the response cannot be built."""

    dependency: Dependency
    error: DownstreamError


@dataclass(frozen=True)
class FanOutResult:
    values: Mapping[str, Any]
    degraded: tuple[str, ...]


class _Failed(Exception):
    def __init__(self, error: DownstreamError) -> None:
        self.error = error


async def _call(dependency: Dependency, context: CallContext, done: Mapping[str, Any]) -> Any:
    started = time.perf_counter()
    outcome = "ok"
    try:
        timeout = dependency.timeout or context.timeout
        try:
            # A safety net for fetches that do not time themselves out. The grace lets a
            # downstream call's own time limit fire first, so its failure is recorded by
            # the circuit breaker instead of being a cancellation without a verdict.
            async with asyncio.timeout(timeout + TIMEOUT_GRACE_SECONDS):
                # The dependency's own limit reaches the calls it makes through the context.
                if timeout != context.timeout:
                    context = replace(context, timeout=timeout)
                return await dependency.fetch(context, done)
        except TimeoutError:
            raise DownstreamTimeout(dependency.name, f"no answer within {timeout:.3f}s") from None
    except DownstreamError as exc:
        outcome = exc.outcome
        raise _Failed(exc) from exc
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics.child(metrics.DEPENDENCY_CALLS, dependency.name, outcome).inc()
        metrics.child(metrics.DEPENDENCY_LATENCY, dependency.name).observe(elapsed)
        if outcome == "ok":
            average = observed_latency.get(dependency.name)
            observed_latency[dependency.name] = (
                elapsed if average is None else average + LATENCY_WEIGHT * (elapsed - average)
            )


def _degrade(dependency: Dependency, context: CallContext, reason: str) -> None:
    metrics.DEGRADED.labels(context.client, context.endpoint, dependency.name).inc()
    logger.warning(
        "dependency degraded",
        extra={
            "traceId": context.trace_id,
            "client": context.client,
            "endpoint": context.endpoint,
            "dependency": dependency.name,
            "outcome": reason,
        },
    )


async def run(
    dependencies: tuple[Dependency, ...], context: CallContext, *, deadline: float
) -> FanOutResult:
    """Run ``dependencies``; raises CriticalDependencyFailed on a critical failure."""
    by_name = {dependency.name: dependency for dependency in dependencies}
    values: dict[str, Any] = {}
    degraded: list[str] = []
    failed: set[str] = set()
    pending: dict[asyncio.Task, Dependency] = {}
    waiting = list(dependencies)

    def start_ready() -> None:
        ready = []
        for dependency in list(waiting):
            if any(need in failed for need in dependency.needs):
                waiting.remove(dependency)
                values[dependency.name] = dependency.default
                failed.add(dependency.name)
            elif all(need in values for need in dependency.needs):
                waiting.remove(dependency)
                ready.append(dependency)
        if len(ready) > 1:  # slowest first; a stable sort keeps the declared order of ties
            ready.sort(key=lambda dependency: -observed_latency.get(dependency.name, 0.0))
        for dependency in ready:
            task = asyncio.create_task(_call(dependency, context, values))
            pending[task] = dependency

    def fail(dependency: Dependency, error: DownstreamError) -> None:
        if dependency.critical:
            raise CriticalDependencyFailed(dependency, error)
        values[dependency.name] = dependency.default
        failed.add(dependency.name)
        degraded.append(dependency.name)
        _degrade(dependency, context, error.outcome)

    try:
        async with asyncio.timeout(deadline):
            start_ready()
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    dependency = pending.pop(task)
                    try:
                        values[dependency.name] = task.result()
                    except _Failed as exc:
                        fail(dependency, exc.error)
                    except Exception as exc:
                        if dependency.critical:
                            raise
                        # A bug in a non-critical dependency's code degrades the page
                        # instead of failing it; the log line carries the traceback.
                        logger.exception(
                            "dependency raised",
                            extra={"traceId": context.trace_id, "dependency": dependency.name},
                        )
                        fail(dependency, DownstreamError(dependency.name, type(exc).__name__))
                start_ready()
    except TimeoutError:
        # The request deadline: whatever has not answered yet counts as timed out,
        # critical dependencies first so that one of them, if any, decides the outcome.
        late = sorted([*pending.values(), *waiting], key=lambda d: not d.critical)
        for dependency in late:
            fail(dependency, DownstreamTimeout(dependency.name, "request deadline reached"))
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    for name in by_name:
        values.setdefault(name, by_name[name].default)
    return FanOutResult(values=values, degraded=tuple(degraded))
