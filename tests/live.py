"""Starts real BFF servers (uvicorn subprocesses) for tests that speak real HTTP to it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bff_project.server import uvicorn_command
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def base_env(**overrides: str) -> dict[str, str]:
    """The environment of a child process: this one's, in demo mode, plus overrides."""
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "1")
    # A stopping test server need not wait for a load balancer to notice (docs/operations.md).
    env.setdefault("SHUTDOWN_DRAIN_SECONDS", "0")
    env["DJANGO_SETTINGS_MODULE"] = "bff_project.settings"
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def seed(env: dict[str, str]) -> None:
    """Migrate ``env``'s database and load the demo registry and users into it."""
    for command in (("migrate", "--noinput", "-v", "0"), ("seed_demo",)):
        result = manage(*command, env=env)
        assert result.returncode == 0, result.stdout + result.stderr


APPROVE_SUBMITTED = (
    "from contracts import services; from contracts.models import ContractVersion; "
    "from django.contrib.auth import get_user_model; "
    "v = ContractVersion.objects.get(status='submitted'); "
    "manager = get_user_model().objects.get(username='release-manager'); "
    "services.Approve(manager, v).execute()"
)


def approve_submitted(env: dict[str, str]) -> None:
    """The demo release manager approves the version in review, from another process."""
    result = manage("shell", "-c", APPROVE_SUBMITTED, env=env)
    assert result.returncode == 0, result.stderr


class LiveBFF:
    """One BFF server under uvicorn on a free port; a context manager."""

    def __init__(self, env: dict[str, str], *, workers: int = 1, migrate: bool = True) -> None:
        self.env = env
        self.workers = workers
        self.migrate = migrate
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> LiveBFF:
        if self.migrate:
            result = manage("migrate", "--noinput", env=self.env)
            assert result.returncode == 0, result.stderr
        self.process = subprocess.Popen(
            uvicorn_command(host="127.0.0.1", port=self.port, workers=self.workers),
            cwd=ROOT,
            env=self.env,
            # A file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"BFF exited during start-up: {self.log()}")
            try:
                httpx.get(f"{self.url}/healthz", timeout=1.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("BFF did not start within 30 s")

    def log(self) -> str:
        """What the server wrote (its JSON log lines and uvicorn's) so far."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def __exit__(self, *exc_info: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
