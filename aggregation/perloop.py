"""One client per event loop: httpx and redis.asyncio clients are bound to the loop that
first used them.

A serving process runs one loop per worker, so this is one client per worker; a test
client or ``asyncio.run`` brings a new loop, and gets a new client rather than one whose
connections belong to a loop that is gone. Entries go with their loop (weak keys).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Closable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closable)


class PerLoop(Generic[C]):
    """The client of the running event loop, built by ``build`` on the loop's first use."""

    def __init__(self, build: Callable[[], C]) -> None:
        self._build = build
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, C]
        self._clients = weakref.WeakKeyDictionary()

    def get(self) -> C:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._build()
        return client

    async def aclose(self) -> None:
        """Close and forget the running loop's client, if it has one (at shutdown)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    async def aclose_all(self) -> None:
        """Close and forget every loop's client."""
        for client in list(self._clients.values()):
            await client.aclose()
        self._clients.clear()
