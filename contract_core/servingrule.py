"""The serving rule (SPEC section 6): which approved version of a major this code serves.

``choose()`` is the one place the rule is written. The snapshot calls it to decide what
an instance serves, the deploy gate to decide whether code may be deployed (only when it
serves the newest approved minor: ``Choice.current``), and readiness reads the snapshot
it built. Plain data in, plain data out: no Django, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contract_core.paths import RuleError
from contract_core.schema import Rule
from contract_core.shapes import fingerprint


@dataclass(frozen=True)
class Approved:
    """An approved, unretired version of one major, as the registry stores it."""

    minor: int
    fingerprint: str
    rules: tuple[Rule, ...]
    shape: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    ref: Any = field(default=None, compare=False, hash=False)  # the caller's row, if any


@dataclass(frozen=True)
class Attempt:
    """What this code produces with one version's rules, or why it cannot."""

    version: Approved
    shape: dict[str, Any] | None
    error: str = ""

    @property
    def matches(self) -> bool:
        return self.shape is not None and fingerprint(self.shape) == self.version.fingerprint


@dataclass(frozen=True)
class Choice:
    """The outcome of the serving rule for one major.

    ``attempts`` runs from the newest version down to the one served (or through all of
    them when none is), so the gate can explain the newest without building it twice.
    """

    major: int
    attempts: tuple[Attempt, ...]

    @property
    def newest(self) -> Approved | None:
        return self.attempts[0].version if self.attempts else None

    @property
    def served(self) -> Attempt | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.matches else None

    @property
    def serving(self) -> Approved | None:
        served = self.served
        return served.version if served is not None else None

    @property
    def current(self) -> bool:
        """This code produces the newest approved minor: what the deploy gate requires."""
        return self.served is not None and len(self.attempts) == 1

    @property
    def reason(self) -> str:
        """Why the newest approved minor is not served; empty when it is."""
        if not self.attempts:
            return "no approved version"
        if self.current:
            return ""
        newest = self.attempts[0]
        label = f"v{self.major}.{newest.version.minor}"
        why = newest.error or "this code produces another shape"
        served = self.serving
        if served is None:
            return f"{label}: {why}"
        return f"{label}: {why}; this code serves v{self.major}.{served.minor}"


def choose(
    major: int,
    approved: Iterable[Approved],
    produce: Callable[[Sequence[Rule]], dict[str, Any]],
) -> Choice:
    """The highest approved version whose stored fingerprint equals what this code produces.

    ``approved`` holds the major's approved, unretired versions in any order; ``produce``
    builds the shape this code produces with a version's rules and raises ``RuleError``
    when a rule names something the code does not declare.
    """
    attempts: list[Attempt] = []
    for version in sorted(approved, key=lambda v: v.minor, reverse=True):
        try:
            attempt = Attempt(version, produce(version.rules))
        except RuleError as exc:
            attempt = Attempt(version, None, str(exc))
        attempts.append(attempt)
        if attempt.matches:
            break
    return Choice(major, tuple(attempts))
