"""Hooks through which the project runs what the apps register: readiness probes, pool closers.

The apps register from ``AppConfig.ready()``; ``bff_project`` runs them (``ops`` in
``/readyz`` and ``/metrics``, ``lifecycle`` at the ASGI lifespan's shutdown). The
registries live here, below the apps, so that no app imports the project.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one readiness probe; ``detail`` is safe to show to operators."""

    ok: bool
    detail: dict = field(default_factory=dict)


Probe = Callable[[], Awaitable[ProbeResult]]


class Registered(NamedTuple):
    probe: Probe
    critical: bool


_probes: dict[str, Registered] = {}


def register_readiness_probe(name: str, probe: Probe, *, critical: bool = True) -> None:
    """Add a check to ``/readyz``; apps call this from ``AppConfig.ready()``.

    Only a critical probe's failure makes the instance unready; the others are reported.
    """
    _probes[name] = Registered(probe, critical)


def readiness_probes() -> dict[str, Registered]:
    """The registered probes by name, in the order they were registered."""
    return dict(_probes)


PoolCloser = Callable[[], Awaitable[None]]
_closers: list[PoolCloser] = []


def register_pool_closer(closer: PoolCloser) -> None:
    """Run ``closer`` at shutdown; apps call this from ``AppConfig.ready()``."""
    _closers.append(closer)


def pool_closers() -> tuple[PoolCloser, ...]:
    return tuple(_closers)
