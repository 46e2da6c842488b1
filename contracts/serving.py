"""The serving snapshot: which contract version each (client, endpoint, major) serves.

The request path reads an in-process snapshot and never queries the database. A daemon
thread keeps the snapshot current: it polls the registry generation in the shared cache
(cheap, every ``CACHE_POLL_SECONDS``) and in the database (the fallback, every
``DB_POLL_SECONDS``), and reloads when either moved. If a reload fails, the last good
snapshot keeps serving.

Serving rule (SPEC section 6, written once in ``contract_core.servingrule``): the highest
approved, unretired version whose stored fingerprint equals the fingerprint this code
produces with that version's rules.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.core.cache import caches
from django.db import close_old_connections

from contract_core.paths import RuleError
from contract_core.projection import ProjectionPlan, compile_plan
from contract_core.servingrule import Approved, choose
from contract_core.shapes import build_shape
from contracts.codebase import code_endpoints
from contracts.readiness import Readiness, judge

logger = logging.getLogger(__name__)

GENERATION_KEY = "contracts:generation"
CACHE_POLL_SECONDS = 0.2
DB_POLL_SECONDS = 1.0

Key = tuple[str, str, int]


@dataclass(frozen=True)
class ServingContract:
    """The contract version one major of an endpoint serves, ready for the request path."""

    client: str
    endpoint: str
    major: int
    minor: int
    version_id: int
    fingerprint: str
    plan: ProjectionPlan
    cache_scope: str
    cache_ttl_seconds: int
    cache_jitter_percent: int
    cache_stale_grace_seconds: int
    deprecated_at: datetime | None = None
    sunset_at: datetime | None = None
    successor_major: int | None = None
    shape: Mapping | None = None

    @property
    def schema_version(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def fingerprint8(self) -> str:
        return self.fingerprint[:8]


@dataclass(frozen=True)
class MajorState:
    """What the registry says of one major, whether or not this code can serve it."""

    deprecated_at: datetime | None
    sunset_at: datetime | None
    approved: tuple[str, ...]  # schema versions approved and unretired, highest first
    serving: ServingContract | None
    reason: str = ""  # why the newest approved minor is not served, when it is not

    @property
    def current(self) -> bool:
        """Serving the newest approved minor (what the deploy gate asks of new code)."""
        return self.serving is not None and self.serving.schema_version == self.approved[0]


@dataclass(frozen=True)
class Snapshot:
    generation: int
    majors: Mapping[Key, MajorState] = field(default_factory=dict)
    loaded_at: float = 0.0

    def serving(self, client: str, endpoint: str, major: int) -> ServingContract | None:
        state = self.majors.get((client, endpoint, major))
        return state.serving if state else None


def _current_generation() -> int:
    from contracts.models import RegistryState

    value = RegistryState.objects.filter(pk=1).values_list("generation", flat=True).first()
    return value or 0


def load_snapshot() -> Snapshot:
    """Read the registry and decide what this code serves. Queries the database."""
    from contracts.models import ContractVersion, MajorVersion, Status, rules_of

    generation = _current_generation()
    specs = code_endpoints()
    versions: dict[int, list[ContractVersion]] = {}
    for version in (
        ContractVersion.objects.filter(status=Status.APPROVED)
        .prefetch_related("rules")
        .order_by("major_id", "-minor")
    ):
        versions.setdefault(version.major_id, []).append(version)
    # A provisional major (no number until its first approval) has no URL yet.
    majors = list(MajorVersion.objects.exclude(number=None).select_related("endpoint__client"))
    numbers: dict[tuple[str, str], list[int]] = {}
    for major in majors:
        numbers.setdefault((major.endpoint.client.name, major.endpoint.name), []).append(
            major.number
        )

    states: dict[Key, MajorState] = {}
    for major in majors:
        endpoint = major.endpoint
        key = (endpoint.client.name, endpoint.name, major.number)
        approved = versions.get(major.pk, [])
        later = [n for n in numbers[key[:2]] if n > major.number]
        spec = specs.get(key[:2])
        serving = None
        reason = ""
        if spec is None:
            reason = "this code declares no such endpoint"
        else:
            choice = choose(
                major.number,
                (
                    Approved(v.minor, v.fingerprint, tuple(rules_of(v)), ref=v)
                    for v in approved  # highest minor first
                ),
                lambda rules, spec=spec: build_shape(spec, rules),
            )
            reason = choice.reason
            served = choice.served
            if served is not None:
                version = served.version.ref
                try:
                    plan = compile_plan(spec, served.version.rules)
                except RuleError as exc:  # pragma: no cover - build_shape validated the rules
                    reason = f"v{version.schema_version}: {exc}"
                else:
                    serving = ServingContract(
                        client=key[0],
                        endpoint=key[1],
                        major=major.number,
                        minor=version.minor,
                        version_id=version.pk,
                        fingerprint=version.fingerprint,
                        plan=plan,
                        cache_scope=endpoint.cache_scope,
                        cache_ttl_seconds=endpoint.cache_ttl_seconds,
                        cache_jitter_percent=endpoint.cache_jitter_percent,
                        cache_stale_grace_seconds=endpoint.cache_stale_grace_seconds,
                        deprecated_at=major.deprecated_at,
                        sunset_at=major.sunset_at,
                        successor_major=min(later) if later else None,
                        shape=served.shape,
                    )
        states[key] = MajorState(
            deprecated_at=major.deprecated_at,
            sunset_at=major.sunset_at,
            approved=tuple(v.schema_version for v in approved),
            serving=serving,
            reason=reason,
        )
    return Snapshot(generation=generation, majors=states, loaded_at=time.time())


SnapshotListener = Callable[[Snapshot], None]
_listeners: list[SnapshotListener] = []


def on_snapshot(listener: SnapshotListener) -> None:
    """Call ``listener`` with every snapshot a registry loads, in the loading thread.

    The aggregation layer exports the served versions as a metric this way
    (``AppConfig.ready()``), so this module never imports it.
    """
    _listeners.append(listener)


def publish_generation(generation: int) -> None:
    """Put the new generation in the shared cache; pollers in every process see it."""
    try:
        caches["default"].set(GENERATION_KEY, generation, timeout=None)
    except Exception:  # noqa: BLE001 - the database poll still carries the change
        logger.warning("could not publish the registry generation to the cache", exc_info=True)
    registry.notify_local()


class Registry:
    """Holds the current snapshot and keeps it fresh from a background thread."""

    def __init__(self, loader: Callable[[], Snapshot] = load_snapshot) -> None:
        self.loader = loader
        self.snapshot = Snapshot(generation=-1)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.last_error: str | None = None
        # What readiness holds this process to (contracts.readiness): None until it has
        # been ready once, then every major it has served since.
        self.owed: frozenset[Key] | None = None
        self.readiness = Readiness(ready=False)

    @property
    def loaded(self) -> bool:
        return self.snapshot.generation >= 0

    def get(self, client: str, endpoint: str, major: int) -> ServingContract | None:
        return self.snapshot.serving(client, endpoint, major)

    def refresh(self) -> Snapshot:
        """Reload from the database now; on failure keep the last good snapshot."""
        with self._lock:
            try:
                snapshot = self.loader()
            except Exception as exc:  # noqa: BLE001 - stale is better than nothing
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "registry reload failed; serving the last snapshot",
                    extra={"error": self.last_error},
                )
                return self.snapshot
            self.snapshot = snapshot
            self.last_error = None
            self._judge(snapshot)
            for listener in _listeners:
                listener(snapshot)
            return snapshot

    def _judge(self, snapshot: Snapshot) -> None:
        self.readiness = judge(
            snapshot.majors, code_endpoints().keys(), self.owed, datetime.now(UTC)
        )
        if self.readiness.ready:
            served = {key for key, state in snapshot.majors.items() if state.serving is not None}
            self.owed = (self.owed or frozenset()) | served

    def forget(self) -> None:
        """Start over as a new process would: no snapshot, nothing served yet (for tests)."""
        with self._lock:
            self.snapshot = Snapshot(generation=-1)
            self.owed = None
            self.readiness = Readiness(ready=False)

    def notify_local(self) -> None:
        """A change committed in this process: reload at once, not at the next poll."""
        if self._thread is not None:
            self._wake.set()
        else:
            self.refresh()

    def start(self) -> None:
        """Load once and start polling; idempotent. Call once per serving process."""
        if self._thread is not None:
            return
        # The first load happens on the thread too: ASGI servers import the application
        # inside their event loop, where Django refuses synchronous database access.
        self._thread = threading.Thread(target=self._poll, name="contracts-registry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        self._stop.clear()

    def _poll(self) -> None:
        self.refresh()
        close_old_connections()
        next_db_check = 0.0
        # Compare the cache's generation with the last value seen there, not with the
        # database's: a cache that outlived a database reset must not cause reload storms.
        last_seen = _cached_generation()
        while not self._stop.is_set():
            woken = self._wake.wait(CACHE_POLL_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                changed = woken
                if not changed:
                    seen = _cached_generation()
                    # A cache that cannot be read says nothing either way: the database
                    # poll below still runs, so approvals propagate while Redis is down.
                    if seen is not _UNREADABLE:
                        changed = seen != last_seen
                        last_seen = seen
                if not changed and time.monotonic() >= next_db_check:
                    next_db_check = time.monotonic() + DB_POLL_SECONDS
                    changed = _current_generation() != self.snapshot.generation
                if changed:
                    self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep polling whatever happens
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("registry poll failed", extra={"error": self.last_error})
            finally:
                close_old_connections()


_UNREADABLE = object()


def _cached_generation() -> object:
    """The generation in the shared cache, or ``_UNREADABLE`` when the cache is down."""
    try:
        return caches["default"].get(GENERATION_KEY)
    except Exception:  # noqa: BLE001 - any cache failure; the database poll carries on
        return _UNREADABLE


registry = Registry()
