"""One client per event loop, closed per loop or all at once."""

from __future__ import annotations

import asyncio

from aggregation.perloop import PerLoop


class Client:
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def _get(per_loop: PerLoop) -> tuple[Client, Client]:
    return per_loop.get(), per_loop.get()


def test_one_client_per_loop() -> None:
    per_loop = PerLoop(Client)
    first, again = asyncio.run(_get(per_loop))
    assert first is again
    other, _ = asyncio.run(_get(per_loop))
    assert other is not first


def test_aclose_closes_only_the_running_loops_client() -> None:
    per_loop = PerLoop(Client)
    loop = asyncio.new_event_loop()
    try:
        mine = loop.run_until_complete(_get(per_loop))[0]

        async def elsewhere() -> Client:
            client = per_loop.get()
            await per_loop.aclose()
            return client

        theirs = asyncio.run(elsewhere())
        assert theirs.closed and not mine.closed
        assert loop.run_until_complete(_get(per_loop))[0] is mine
        loop.run_until_complete(per_loop.aclose())
        assert mine.closed
        assert loop.run_until_complete(_get(per_loop))[0] is not mine  # built again
    finally:
        loop.close()


def test_aclose_all_closes_every_loops_client() -> None:
    per_loop = PerLoop(Client)
    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        clients = [loop.run_until_complete(_get(per_loop))[0] for loop in loops]
        loops[0].run_until_complete(per_loop.aclose_all())
        assert all(client.closed for client in clients)
    finally:
        for loop in loops:
            loop.close()
