"""Private Redis processes for tests that stop, fail over or shard Redis.

The session's shared Redis (``redis_server`` in ``tests/conftest.py``) must stay up for
every other test; these start their own: a single node a test may stop, a primary with a
replica and three sentinels, and a three-node cluster. Tests that need a binary skip when
it is missing, unless ``BFF_REQUIRE_REDIS_TOPOLOGIES`` is set (CI sets it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port

REQUIRE_ENV = "BFF_REQUIRE_REDIS_TOPOLOGIES"


def binary(name: str) -> str:
    """The path of a Redis binary; skips the test when missing (fails when CI requires it)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install redis-server redis-sentinel)"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def _wait(check, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


class RedisNode:
    """One redis-server (or sentinel) process on a free port; ``stop()`` kills it."""

    def __init__(self, workdir: Path, *args: str, sentinel: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir / str(self.port)
        self.workdir.mkdir(parents=True)
        self.sentinel = sentinel
        self.args = args
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)

    def start(self) -> RedisNode:
        conf = self.workdir / "redis.conf"
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.workdir}",
            'save ""',
            "appendonly no",
            f"logfile {self.workdir / 'log'}",
            *self.args,
        ]
        conf.write_text("\n".join(lines) + "\n")
        command = [binary("redis-server"), str(conf)]
        if self.sentinel:
            command.append("--sentinel")
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait(self.client().ping, f"redis on port {self.port} answering")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        path = self.workdir / "log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def redis_node(tmp_path: Path) -> Iterator[RedisNode]:
    """A single private redis-server the test may stop."""
    node = RedisNode(tmp_path).start()
    try:
        yield node
    finally:
        node.stop()
