"""`python -m demo_services`: serve the demo services, each on its own port, from one event loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvicorn
import uvloop

from demo_services import payloads
from demo_services.app import SERVICES, make_app

URL_VARIABLES = {
    "user": ("USER_SERVICE_URL", "http://127.0.0.1:9101"),
    "order": ("ORDER_SERVICE_URL", "http://127.0.0.1:9102"),
    "recommendation": ("RECOMMENDATION_SERVICE_URL", "http://127.0.0.1:9103"),
    "catalog": ("CATALOG_SERVICE_URL", "http://127.0.0.1:9104"),
}
TOKEN_VARIABLE = "INTERNAL_SERVICE_TOKEN"  # noqa: S105 - a variable name, not a secret
# The demo services only ever run locally; the BFF's demo settings share this default.
DEFAULT_TOKEN = "demo-internal-token"  # noqa: S105
_BACKLOG = 2048


class StartupError(Exception):
    """A configuration or bind problem, reported as one line on stderr with exit code 2."""


@dataclass(frozen=True)
class Binding:
    """Where one service listens, and the variable that said so."""

    service: str
    variable: str
    host: str
    port: int
    url: str


def parse_binding(service: str, variable: str, url: str) -> Binding:
    problem = f"{variable}={url!r} is not a service URL of the form http://host:port"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise StartupError(problem) from None
    if (
        parts.scheme != "http"
        or not parts.hostname
        or port is None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise StartupError(problem)
    return Binding(service, variable, parts.hostname, port, f"http://{parts.netloc}")


def bind(binding: Binding) -> socket.socket:
    where = f"{binding.host}:{binding.port} for the {binding.service} service ({binding.variable})"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            binding.host, binding.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise StartupError(f"cannot resolve {where}: {exc.strerror or exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Each uvicorn.Server would install its own handlers and re-raise the signal on exit;
        # with several servers in one loop, `serve` handles signals once for all of them.
        yield


async def serve(listeners: Sequence[tuple[Binding, socket.socket]], token: str) -> None:
    apps = [make_app(binding.service, token) for binding, _ in listeners]
    servers = [
        _Server(
            uvicorn.Config(
                app,
                loop="uvloop",
                http="httptools",
                ws="none",
                lifespan="off",
                access_log=False,
                log_level="warning",
                # Hung calls are released on stop; this bounds any other straggler.
                timeout_graceful_shutdown=2,
            )
        )
        for app in apps
    ]

    def stop() -> None:
        for app in apps:
            app.faults.release_hung_calls()
        for server in servers:
            server.force_exit = server.should_exit
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, (_, sock) in zip(servers, listeners, strict=True)
    ]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            break
        await asyncio.sleep(0.01)
    else:
        for binding, _ in listeners:
            print(f"demo {binding.service} service listening on {binding.url}")
        sys.stdout.flush()
    await asyncio.gather(*tasks)


def _services(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(SERVICES)}, got {value!r}"
        )
    return list(dict.fromkeys(names))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo_services",
        description="Serve the demo user, order, recommendation and catalog services.",
    )
    parser.add_argument(
        "--only",
        type=_services,
        default=list(SERVICES),
        metavar="SERVICES",
        help="comma-separated services to start (default: all four)",
    )
    parser.add_argument(
        "--user-avatar-field",
        choices=sorted(payloads.AVATAR_NAMES),
        default="avatarUrl",
        help="the name(s) the user service sends the avatar under: play a service renaming "
        "avatarUrl to profileImageUrl (default: avatarUrl)",
    )
    args = parser.parse_args(argv)
    payloads.send_avatar_as(args.user_avatar_field)

    listeners: list[tuple[Binding, socket.socket]] = []
    try:
        token = os.environ.get(TOKEN_VARIABLE, DEFAULT_TOKEN)
        if not token:
            raise StartupError(f"{TOKEN_VARIABLE} must not be empty")
        bindings = [
            parse_binding(service, variable, os.environ.get(variable, default))
            for service, (variable, default) in URL_VARIABLES.items()
            if service in args.only
        ]
        for binding in bindings:
            listeners.append((binding, bind(binding)))
    except StartupError as exc:
        for _, sock in listeners:
            sock.close()
        print(f"demo_services: {exc}", file=sys.stderr)
        return 2

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(listeners, token))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
