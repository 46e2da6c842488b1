"""The product's Prometheus metrics: requests, dependencies, circuits, cache, drift."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from contracts.serving import Snapshot

# Buckets around the latencies that matter here: a cache hit (~1 ms) up to a slow
# fan-out hitting its deadline (seconds).
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2)
_SLOW_BUCKETS = (0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
_LATENCY_BUCKETS = _FAST_BUCKETS + _SLOW_BUCKETS

REQUESTS = Counter(
    "bff_requests_total",
    "Client requests by surface, endpoint and status.",
    ["client", "endpoint", "status"],
)
REQUEST_LATENCY = Histogram(
    "bff_request_duration_seconds",
    "Client request latency.",
    ["client", "endpoint"],
    buckets=_LATENCY_BUCKETS,
)
DEPENDENCY_CALLS = Counter(
    "bff_dependency_calls_total",
    "Calls to internal services by dependency and outcome.",
    ["dependency", "outcome"],
)
DEPENDENCY_LATENCY = Histogram(
    "bff_dependency_duration_seconds",
    "Latency of calls to internal services.",
    ["dependency"],
    buckets=_LATENCY_BUCKETS,
)
DEGRADED = Counter(
    "bff_degraded_responses_total",
    "Responses served without a non-critical dependency.",
    ["client", "endpoint", "dependency"],
)
CIRCUIT_STATE = Gauge(
    "bff_circuit_state",
    "Circuit breaker state per service: 0 closed, 1 half-open, 2 open.",
    ["service"],
    multiprocess_mode="max",
)
SCHEMA_DRIFT = Counter(
    "bff_schema_drift_total",
    "Downstream values that did not match the declared source schema.",
    ["client", "endpoint", "section", "reason"],
)
CACHE_EVENTS = Counter(
    "bff_cache_events_total",
    "Response cache events (hit, miss, stale, early, lock_wait, negative, error).",
    ["client", "endpoint", "event"],
)
SERVING_VERSION = Gauge(
    "bff_serving_contract_info",
    "1 for the contract version this process serves.",
    ["client", "endpoint", "major", "version", "fingerprint"],
    multiprocess_mode="max",
)
JWKS_FETCHES = Counter(
    "bff_jwks_fetches_total",
    "Fetches of identity provider key sets (JWKS) by outcome.",
    ["outcome"],
)
RATE_LIMIT_EVENTS = Counter(
    "bff_rate_limit_events_total",
    "Rate-limit decisions other than a plain pass: limited, or store_error (let through).",
    ["client", "event"],
)
CONTRACT_REQUESTS = Counter(
    "bff_contract_requests_total",
    "Served requests by client, endpoint and contract version (flushed every few seconds).",
    ["client", "endpoint", "major", "minor"],
)


def child(metric, *labels: str):
    """``metric.labels(*labels)``, kept: ``labels()`` validates and locks on every call,
    which the hit path pays three times a request. Children are never removed here."""
    key = (metric, labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


_children: dict[tuple, object] = {}


_exported: set[tuple[str, ...]] = set()


def export_serving(snapshot: Snapshot) -> None:
    """Publish which version each major serves, for dashboards and alerts.

    Called with every snapshot the registry loads (``contracts.serving.on_snapshot``).
    Versions no longer served drop to 0 rather than being removed: prometheus_client's
    multi-process mode cannot clear labels.
    """
    current = {
        (client, endpoint, str(major), state.serving.schema_version, state.serving.fingerprint8)
        for (client, endpoint, major), state in snapshot.majors.items()
        if state.serving is not None
    }
    for labels in _exported - current:
        SERVING_VERSION.labels(*labels).set(0)
    for labels in current:
        SERVING_VERSION.labels(*labels).set(1)
    _exported.clear()
    _exported.update(current)
