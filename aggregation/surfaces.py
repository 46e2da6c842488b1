"""Each client endpoint's dependencies: what it calls, what is critical, what it falls back to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aggregation import calls, endpoints
from aggregation.errors import ErrorCode
from aggregation.fanout import CallContext, Dependency
from contracts.schema import EndpointSpec

Assemble = Callable[[Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class Surface:
    """An endpoint's code: its declared shape, its dependencies, how sections are filled."""

    spec: EndpointSpec
    dependencies: tuple[Dependency, ...]
    assemble: Assemble | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def sections_from(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.assemble is not None:
            return self.assemble(values)
        return {section.name: values[section.dependency] for section in self.spec.sections}


async def _user(context: CallContext, done: Mapping[str, Any]) -> dict:
    return await calls.user(context, context.subject)


def _orders(limit: int):
    async def fetch(context: CallContext, done: Mapping[str, Any]) -> list:
        return await calls.orders(context, context.subject, limit)

    return fetch


def _recommendations(limit: int):
    async def fetch(context: CallContext, done: Mapping[str, Any]) -> list:
        return await calls.recommendations(context, context.subject, limit)

    return fetch


USER = Dependency("user", _user, critical=True,
                  unavailable_code=ErrorCode.USER_PROFILE_UNAVAILABLE)  # fmt: skip

MOBILE_HOME = Surface(
    spec=endpoints.MOBILE_HOME,
    dependencies=(
        USER,
        Dependency("orders", _orders(3), default=[]),
        Dependency("recommendations", _recommendations(6), default=[]),
    ),
)
