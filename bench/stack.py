"""The system under test: a throwaway database, the demo services and BFF servers.

Everything runs on 127.0.0.1 with secrets generated for the run and production settings
(``DJANGO_DEBUG=0``). ``REDIS_URL`` is unset, so the response cache is Django's in-process
cache; a scenario that measures the Redis path starts a private redis-server the way
``tests/conftest.py`` does and sets it in ``Stack.env`` before ``start_bffs``.

Every process started here is stopped by ``Stack.close()``, which the benchmark calls
from ``finally``; the BFF servers also get SIGTERM if the benchmark itself dies (Linux
``PR_SET_PDEATHSIG``), so an interrupted run leaves nothing listening.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import jwt

from bff_project.server import uvicorn_command
from demo_services.testing import DemoServices, free_ports

# /metrics needs the ops token in production settings; the benchmark reads it.
OPS_TOKEN = secrets.token_urlsafe(24)
OPS_HEADERS = {"Authorization": f"Bearer {OPS_TOKEN}"}

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STARTUP_TIMEOUT_S = 60.0

# Latencies of the internal services in the fan-out scenario (SPEC section 10).
LATENCIES_MS = {"user": 30, "order": 60, "recommendation": 90}

# Variables of the product that must not leak in from the caller's shell and change what
# is measured (another database, Redis, per-client keys, an issuer).
_PRODUCT_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "JWT_ISSUER",
    "DJANGO_SETTINGS_MODULE",
    "CACHE_KEY_PREFIX",
    "REQUEST_DEADLINE_SECONDS",
)
_PRODUCT_PREFIXES = ("JWT_MOBILE_", "JWT_WEB_", "JWT_PARTNER_", "DOWNSTREAM_", "CIRCUIT_")


class StackError(RuntimeError):
    """A part of the system under test did not start or answer as it should."""


def _die_with_parent() -> None:
    # prctl(PR_SET_PDEATHSIG, SIGTERM): the child is told to stop if the benchmark dies.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class BFFServer:
    """One uvicorn server (``--workers 2 --loop uvloop --http httptools``) for one app."""

    def __init__(self, app: str, env: dict[str, str], log: Path, *, workers: int = 2) -> None:
        self.app = app
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - a fixed argv
            uvicorn_command(host="127.0.0.1", port=self.port, workers=workers, app=app),
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(
                    f"the BFF ({self.app}) exited with {self.process.returncode}: {self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise StackError(
            f"the BFF ({self.app}) was not ready in {STARTUP_TIMEOUT_S:g}s: {self.log_tail()}"
        )

    def cpu_seconds(self) -> float:
        """User and system CPU time of the server and its worker processes so far (Linux)."""
        pids = [self.process.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    pids.append(int(stat.parent.name))
        ticks = 0
        for pid in pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def log_tail(self, size: int = 1500) -> str:
        self._log.flush()
        text = Path(self._log.name).read_bytes()[-size:].decode(errors="replace").strip()
        return text or "(no output)"

    def stop(self) -> None:
        _stop(self.process)
        self._log.close()


class Stack:
    """Database, demo services and BFF servers of one benchmark run; a context manager."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="bff-bench-"))
        self.jwt_secret = secrets.token_urlsafe(48)  # 64 characters, HS256 wants >= 32 bytes
        internal_token = secrets.token_urlsafe(32)
        self.demo = DemoServices(token=internal_token)
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in _PRODUCT_VARIABLES and not name.startswith(_PRODUCT_PREFIXES)
        }
        env.update(self.demo.env)
        env.update(
            DJANGO_DEBUG="0",
            # /metrics needs the ops token in production; the benchmark reads it.
            OPS_TOKEN=OPS_TOKEN,
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            JWT_SECRET=self.jwt_secret,
            INTERNAL_SERVICE_TOKEN=internal_token,
            DATABASE_URL=f"sqlite:///{self.workdir / 'db.sqlite3'}",
            ALLOWED_HOSTS="127.0.0.1",
            RATE_LIMITS="off",
            LOG_LEVEL="WARNING",
            BFF_BENCH_VIEWS="1",
            # Nothing routes by /readyz here: a stopping server need not drain.
            SHUTDOWN_DRAIN_SECONDS="0",
        )
        self.env = env
        self.servers: list[BFFServer] = []
        self._started = 0

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def prepare(self) -> None:
        """Migrate and seed the database, start the demo services, set their latencies."""
        for command in (("migrate", "--noinput", "-v", "0"), ("seed_demo",)):
            done = subprocess.run(  # noqa: S603 - a fixed argv
                [PYTHON, "manage.py", *command],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                raise StackError(f"manage.py {command[0]} failed: {done.stderr[-800:]}")
        self.demo.start()
        for service, latency_ms in LATENCIES_MS.items():
            self.demo.set_faults(service, latency_ms=latency_ms)

    def start_bffs(self, apps: list[str]) -> list[BFFServer]:
        """Start one BFF server per app, side by side; each has its own metrics directory."""
        started = []
        for app in apps:
            self._started += 1
            metrics_dir = self.workdir / f"prometheus-{self._started}"
            metrics_dir.mkdir()
            env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
            server = BFFServer(app, env, self.workdir / f"bff-{self._started}.log")
            self.servers.append(server)
            started.append(server)
        for server in started:
            server.wait_ready()
        return started

    def mint_tokens(
        self,
        user_ids: Iterable[int],
        *,
        ttl_s: int = 3600,
        client: str = "mobile",
        scope: str | None = None,
    ) -> Iterator[str]:
        """Tokens for ``usr_<id>`` (``ptn_<id>`` for partners), minted in-process with the
        run's secret."""
        expires = int(time.time()) + ttl_s
        prefix = "ptn" if client == "partner" else "usr"
        for user_id in user_ids:
            claims = {"sub": f"{prefix}_{user_id}", "aud": client, "exp": expires}
            if scope:
                claims["scope"] = scope
            yield jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def service_headers(self) -> dict[str, str]:
        return self.demo.headers("mobile-bff")

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()
        self.demo.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
