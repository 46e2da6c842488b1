"""The one way this product is served: the uvicorn command line, shared by every launcher."""

from __future__ import annotations

import sys

APPLICATION = "bff_project.asgi:application"


def uvicorn_command(
    *, host: str, port: int | str, workers: int | str, app: str = APPLICATION
) -> list[str]:
    """``python -m uvicorn …`` as production runs it.

    uvloop + httptools: with the default asyncio loop and ``--workers``, uvicorn never sets
    TCP_NODELAY on accepted sockets and every response waits ~40 ms (Nagle). The peers
    trusted for ``X-Forwarded-*`` come from ``FORWARDED_ALLOW_IPS``, which uvicorn reads
    itself (default ``127.0.0.1``).
    """
    listen = ["--host", host, "--port", str(port), "--workers", str(workers)]
    fast = ["--loop", "uvloop", "--http", "httptools"]
    quiet = ["--no-access-log", "--log-level", "warning"]
    # Say nothing about the server software (SECURITY.md).
    anonymous = ["--no-server-header"]
    return [sys.executable, "-m", "uvicorn", app, *listen, *fast, *quiet, *anonymous]
