"""The response cache's single flight and store lock, driven by a Hypothesis state machine.

Two processes (two ``ResponseCache`` over one in-memory store, one with an L1) take
requests for two keys while computations start, succeed, fail or come back degraded, and a
fake clock moves on. The cache runs on an event loop the machine owns: each step lets the
loop run until only gated computations are left, then checks

* at most one computation holding a key's lock at a time, across both processes, unless
  the lock of the running one has expired (its holder counts as dead);
* a computation without the lock only for a waiter whose holder went away without
  leaving a value (failed with an error that is not shared, was degraded, or outlived its
  lock), one per such holder for the other process. Note that such a waiter computes
  without taking the lock, so a request arriving meanwhile in another process may take
  the lock and compute the same key too;
* a request that missed gets the computation it waited for, made for its key;
* a hit is fresh, a stale answer is within its grace and expired, neither is degraded;
* an error is the computation's own, or the shared copy of a 404/503 still negative-cached;
* once every computation is let through, every request has its answer.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass

import orjson
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aggregation import cache
from aggregation.cache import L1, LOCK_TTL_MS, Computed, Policy, ResponseCache, SharedError
from aggregation.errors import DependencyUnavailable, ErrorCode, NotFound
from tests.timing import FakeClock

KEYS = ("bff:k0", "bff:k1")
POLICY = Policy(ttl_seconds=10, jitter_percent=0, stale_grace_seconds=10)
NEGATIVE_TTL = 2.0
LOCK_SECONDS = LOCK_TTL_MS / 1000
FINGERPRINT = "f" * 64
LABELS = ("mobile", "home")
SPINS = 40  # loop iterations per step: far more than any chain of awaits in the cache


class MemoryStore:
    """The store protocol in memory, expiring on the fake clock (SET NX PX for the lock)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._values: dict[str, tuple[object, float]] = {}

    def _live(self, key: str):
        value, until = self._values.get(key, (None, 0.0))
        return value if self.clock() < until else None

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl_ms: int) -> None:
        self._values[key] = (value, self.clock() + ttl_ms / 1000)

    async def acquire(self, key: str, token: str, ttl_ms: int) -> bool:
        if self._live(key) is not None:
            return False
        self._values[key] = (token, self.clock() + ttl_ms / 1000)
        return True

    async def release(self, key: str, token: str) -> None:
        if self._live(key) == token:
            del self._values[key]

    async def holder(self, key: str) -> str | None:
        return self._live(key)

    def holder_now(self, key: str) -> str | None:
        return self._live(key)

    def healthy(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


@dataclass
class Computation:
    number: int
    key: str
    started_at: float
    gate: asyncio.Future
    holder: bool  # it holds the key's lock (else: a waiter whose holder went away)
    outcome: str | None = None  # how it ended
    ended_at: float | None = None
    ended_in_step: int | None = None
    expired: bool = False  # its lock ran out while it ran


@dataclass
class Request:
    key: str
    process: int
    task: asyncio.Task
    checked: bool = False


OUTCOMES = {
    "ok": lambda n: Computed(orjson.dumps({"n": n})),
    "degraded": lambda n: Computed(orjson.dumps({"n": n}), degraded=("recommendations",)),
    "not_found": lambda n: NotFound(),  # shared as a negative entry
    "unavailable": lambda n: DependencyUnavailable(ErrorCode.USER_PROFILE_UNAVAILABLE, "down"),
    "crash": lambda n: RuntimeError(f"computation {n} crashed"),  # not shared
}
SHARED = frozenset({"not_found", "unavailable"})


class NeverEarly(random.Random):
    """XFetch's early refresh weighs the real time a computation took, which a machine
    stepping a fake clock cannot hold still: a draw this high never refreshes early
    (tests/aggregation/test_cache.py covers it)."""

    def random(self) -> float:
        return 1 - 1e-9


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Waiting for another process's lock polls the store; here every poll is one turn
        # of the loop, so a step runs the waiters as far as they can go.
        self._poll_seconds = cache.WAIT_POLL_SECONDS
        cache.WAIT_POLL_SECONDS = 0
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.store = MemoryStore(self.clock)
        self.processes = [
            ResponseCache(self.store, clock=self.clock, rng=NeverEarly(),
                          negative_ttl=NEGATIVE_TTL),
            ResponseCache(self.store, clock=self.clock, rng=NeverEarly(),
                          negative_ttl=NEGATIVE_TTL, l1=L1(clock=self.clock)),
        ]  # fmt: skip
        self.numbers = itertools.count(1)
        self.computations: dict[int, Computation] = {}
        self.requests: list[Request] = []
        self.overlaps: list[str] = []
        # Computations without the lock that the cache may start: one for each holder that
        # went away without leaving a value (it failed unshared, its page was degraded, or
        # its lock expired), for the waiter in the other process.
        self.excuses = dict.fromkeys(KEYS, 0)
        self.step = 0

    # -- plumbing

    def _compute_for(self, key: str):
        async def compute() -> Computed:
            number = next(self.numbers)
            now = self.clock()
            # Called right after the lock was taken, or, for a waiter whose holder is gone,
            # with the lock free.
            holder = self.store.holder_now(key + ":lock") is not None
            if holder:
                self.excuses[key] = 0  # waiters from before now wait for this holder
                for other in self._running(key):
                    if other.holder and now < other.started_at + LOCK_SECONDS:
                        self.overlaps.append(f"{number} took {key} from {other.number}")
            elif self.excuses[key] > 0:
                self.excuses[key] -= 1
            else:
                self.overlaps.append(f"{number} computed {key} without the lock, unprompted")
            mine = Computation(number, key, now, self.loop.create_future(), holder)
            self.computations[number] = mine
            outcome = await mine.gate
            made = OUTCOMES[outcome](number)
            if isinstance(made, Exception):
                raise made
            return made

        return compute

    def _running(self, key: str | None = None) -> list[Computation]:
        return [
            c for c in self.computations.values()
            if c.outcome is None and (key is None or c.key == key)
        ]  # fmt: skip

    def _spin(self) -> None:
        async def turns() -> None:
            for _ in range(SPINS):
                await asyncio.sleep(0)

        self.loop.run_until_complete(turns())
        self.step += 1
        self._check_answers()

    def _check_answers(self) -> None:
        now = self.clock()
        for request in self.requests:
            if request.checked or not request.task.done():
                continue
            request.checked = True
            error = request.task.exception()
            if error is not None:
                self._check_error(request, error, now)
                continue
            outcome = request.task.result()
            made = self.computations[orjson.loads(outcome.entry.body)["n"]]
            assert made.key == request.key, "an answer computed for another key"
            assert made.outcome in ("ok", "degraded"), made
            if outcome.state == "miss":
                # The computation this request started or joined, just finished.
                assert made.ended_in_step == self.step, (made, self.step)
                assert outcome.entry.degraded == (("recommendations",) if made.outcome ==
                                                  "degraded" else ())  # fmt: skip
            elif outcome.state == "hit":
                assert made.outcome == "ok", "a degraded page was stored"
                assert outcome.entry.expiry > now, "a hit past its expiry"
            else:
                assert outcome.state == "stale", outcome.state
                assert made.outcome == "ok", "a degraded page was stored"
                expiry = outcome.entry.expiry
                assert expiry <= now < expiry + POLICY.stale_grace_seconds, (expiry, now)

    def _check_error(self, request: Request, error: BaseException, now: float) -> None:
        if isinstance(error, SharedError):
            assert any(
                c.key == request.key and c.outcome in SHARED
                and now < c.ended_at + NEGATIVE_TTL
                for c in self.computations.values()
            ), f"a shared error with no recent failure to share: {error!r}"  # fmt: skip
            return
        assert isinstance(error, NotFound | DependencyUnavailable | RuntimeError), repr(error)
        assert any(
            c.key == request.key and c.outcome not in ("ok", "degraded")
            and c.ended_in_step == self.step
            for c in self.computations.values()
        ), f"an error no computation of this key just ended in: {error!r}"  # fmt: skip

    def _end(self, computation: Computation, outcome: str) -> None:
        if computation.holder and outcome in ("crash", "degraded") and not computation.expired:
            self.excuses[computation.key] += len(self.processes) - 1
        computation.outcome = outcome
        computation.ended_at = self.clock()
        computation.ended_in_step = self.step + 1  # the step _spin is about to run
        computation.gate.set_result(outcome)

    # -- rules

    @rule(process=st.integers(0, 1), key=st.sampled_from(KEYS), count=st.integers(1, 3))
    def requests_arrive(self, process: int, key: str, count: int) -> None:
        for _ in range(count):
            coroutine = self.processes[process].get_or_compute(
                key, self._compute_for(key), POLICY, fingerprint=FINGERPRINT,
                labels=LABELS, wait_seconds=3600,
            )  # fmt: skip
            self.requests.append(Request(key, process, self.loop.create_task(coroutine)))
        self._spin()

    @precondition(lambda self: self._running())
    @rule(data=st.data(), outcome=st.sampled_from(sorted(OUTCOMES)))
    def a_computation_ends(self, data, outcome: str) -> None:
        computation = data.draw(st.sampled_from(self._running()), label="computation")
        self._end(computation, outcome)
        self._spin()

    @rule(seconds=st.sampled_from([0.5, 3.0, 6.0, 11.0, 25.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for computation in self._running():
            ran_out = self.clock() >= computation.started_at + LOCK_SECONDS
            if computation.holder and not computation.expired and ran_out:
                computation.expired = True
                self.excuses[computation.key] += len(self.processes) - 1
        self._spin()

    @invariant()
    def one_computation_per_key_at_a_time(self) -> None:
        assert self.overlaps == []

    def teardown(self) -> None:
        try:
            # Let every computation through (new ones may start: a waiter whose holder
            # failed computes itself); then every request has its answer.
            for _ in range(20):
                running = self._running()
                if not running:
                    break
                for computation in running:
                    self._end(computation, "ok")
                self._spin()
            assert all(request.task.done() for request in self.requests), "a request hangs"
            assert self.overlaps == []
        finally:
            pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            for task in pending:
                task.cancel()

            async def cancelled() -> None:
                await asyncio.gather(*pending, return_exceptions=True)

            self.loop.run_until_complete(cancelled())
            self.loop.close()
            cache.WAIT_POLL_SECONDS = self._poll_seconds


TestCacheMachine = CacheMachine.TestCase
