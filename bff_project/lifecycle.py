"""A serving process's start and end: draining on SIGTERM, closing pools on the way out.

uvicorn answers SIGTERM by closing its listening socket at once, so a load balancer still
routing here sees refused connections instead of a ``/readyz`` that says "stop sending".
Draining puts a delay in between: on SIGTERM ``/readyz`` answers 503 at once and every
response carries ``Connection: close`` (keep-alive clients move on after their current
request); after ``SHUTDOWN_DRAIN_SECONDS`` uvicorn's own graceful shutdown starts: the
listener closes, in-flight requests get up to ``SHUTDOWN_GRACE_SECONDS`` to finish, then
the ASGI lifespan's shutdown closes the process's connection pools (no "Unclosed client
session" at exit). SIGINT (Ctrl-C) skips the drain: nobody routes by ``/readyz`` there.

The delay is put in front of uvicorn's own signal handler, found where uvicorn installs
it (``signal.signal``) while the lifespan starts; under a server that installs none, the
handler is left alone and only the pools are closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bff_project import ops
from contract_core.hooks import pool_closers

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def close_pools() -> None:
    """Run every closer the apps registered (``contract_core.hooks.register_pool_closer``)."""
    for closer in pool_closers():
        try:
            await closer()
        except Exception:  # noqa: BLE001 - one pool failing to close must not keep the others
            logger.warning("closing a connection pool failed", exc_info=True)


def install_drain(loop: asyncio.AbstractEventLoop, *, drain: float, grace: float) -> bool:
    """Put the drain in front of the server's SIGTERM handler; False if there is none."""
    if threading.current_thread() is not threading.main_thread():
        return False
    server_handler = signal.getsignal(signal.SIGTERM)
    if not callable(server_handler):
        return False
    # uvicorn's handler is its Server's bound method; its config bounds the wait for
    # in-flight requests once the listener is closed.
    server_config = getattr(getattr(server_handler, "__self__", None), "config", None)
    if hasattr(server_config, "timeout_graceful_shutdown"):
        server_config.timeout_graceful_shutdown = grace

    def on_sigterm(signum: int, frame: object) -> None:
        if ops.draining():
            return  # a second SIGTERM (the group's and the supervisor's) changes nothing
        ops.start_draining()
        loop.call_soon_threadsafe(loop.call_later, drain, server_handler, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    return True


def with_lifecycle(app: ASGIApp, *, drain: float, grace: float) -> ASGIApp:
    """``app`` plus the ASGI lifespan (drain on SIGTERM, close pools) and draining headers."""

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                install_drain(asyncio.get_running_loop(), drain=drain, grace=grace)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await close_pools()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http" or not ops.draining():
            await app(scope, receive, send)
            return

        async def closing(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, closing)

    return application
