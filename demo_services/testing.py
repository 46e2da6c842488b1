"""`DemoServices`: the demo services in a subprocess on free ports, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

import httpx

from demo_services.__main__ import DEFAULT_TOKEN, TOKEN_VARIABLE, URL_VARIABLES
from demo_services.app import SERVICES

_ROOT = Path(__file__).resolve().parent.parent


class DemoServicesError(RuntimeError):
    """The demo services did not start, or refused a control call."""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports that were free a moment ago."""
    # Holding every socket until all are picked keeps the ports distinct.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class DemoServices:
    """Runs `python -m demo_services` on four free ports; use as a context manager.

    `urls` maps each service to its base URL; `env` holds the four *_SERVICE_URL variables
    and INTERNAL_SERVICE_TOKEN, ready to merge into a BFF's environment.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 10.0,
        args: Sequence[str] = (),
    ) -> None:
        self.token = token
        self.args = tuple(args)  # extra arguments of `python -m demo_services`
        self.startup_timeout = startup_timeout
        ports = free_ports(len(SERVICES), host)
        self.urls: dict[str, str] = {
            service: f"http://{host}:{port}" for service, port in zip(SERVICES, ports, strict=True)
        }
        self.env: dict[str, str] = {
            URL_VARIABLES[service][0]: url for service, url in self.urls.items()
        }
        self.env[TOKEN_VARIABLE] = token
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None  # the process's stderr, kept for error messages
        self._client = httpx.Client(timeout=5.0, trust_env=False)

    def headers(self, account: str = "test-bff", **extra: str) -> dict[str, str]:
        """The headers a well-behaved BFF sends: service account and internal token."""
        return {"X-Service-Account": account, "X-Internal-Token": self.token, **extra}

    def start(self) -> DemoServices:
        # A file, not a pipe: nobody reads stderr until start-up fails, and a full pipe blocks.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(  # noqa: S603 - a fixed argv
            [sys.executable, "-m", "demo_services", *self.args],
            cwd=_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + self.startup_timeout
        waiting = list(SERVICES)
        while waiting:
            if self.process.poll() is not None:
                self._fail(f"demo services exited with code {self.process.returncode}")
            try:
                self._client.get(f"{self.urls[waiting[0]]}/_control/health", timeout=0.5)
                waiting.pop(0)
                continue
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self._fail(f"demo services did not answer within {self.startup_timeout:g} s")
            time.sleep(0.05)
        return self

    def _fail(self, problem: str) -> NoReturn:
        errors = self._errors()
        self.stop()
        raise DemoServicesError(f"{problem}: {errors}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        self.stop()
        self._client.close()

    def __enter__(self) -> DemoServices:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def set_faults(self, service: str, **plan: Any) -> dict[str, Any]:
        """Install a fault plan (see demo_services.faults.FaultPlan); returns it in full."""
        return self._control("PUT", service, "/_control/faults", json=plan)

    def clear_faults(self, service: str | None = None) -> None:
        for name in SERVICES if service is None else (service,):
            self._control("DELETE", name, "/_control/faults")

    def faults(self, service: str) -> dict[str, Any]:
        return self._control("GET", service, "/_control/faults")

    def stats(self, service: str) -> dict[str, Any]:
        """The service's counters since the last reset (see demo_services.app.Counters)."""
        return self._control("GET", service, "/_control/stats")

    def reset(self) -> None:
        """Zero every service's counters and clear its faults."""
        for service in SERVICES:
            self._control("POST", service, "/_control/reset")

    def _control(self, method: str, service: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if service not in self.urls:
            raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
        response = self._client.request(method, f"{self.urls[service]}{path}", **kwargs)
        if response.status_code != 200:
            raise DemoServicesError(
                f"{method} {path} on the {service} service answered "
                f"{response.status_code}: {response.text}"
            )
        return response.json()

    def _errors(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip() or "(no stderr)"
