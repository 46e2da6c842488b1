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
        # Debian's redis-sentinel is redis-server started in sentinel mode.
        command = [binary("redis-sentinel" if self.sentinel else "redis-server"), str(conf)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait(self.client().ping, f"redis on port {self.port} answering")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log()[-1500:]}") from None
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


class SentinelTopology:
    """A primary, its replica and three sentinels watching them as ``mymaster``."""

    service = "mymaster"

    def __init__(self, workdir: Path) -> None:
        self.primary = RedisNode(workdir)
        self.replica = RedisNode(workdir)
        self.sentinels = [RedisNode(workdir, sentinel=True) for _ in range(3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self) -> SentinelTopology:
        self.primary.start()
        self.replica.args = (f"replicaof 127.0.0.1 {self.primary.port}",)
        self.replica.start()
        _wait(
            lambda: self.replica.client().info("replication")["master_link_status"] == "up",
            "the replica syncing with the primary",
        )
        for sentinel in self.sentinels:
            sentinel.args = (
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 2",
                f"sentinel down-after-milliseconds {self.service} 1000",
                f"sentinel failover-timeout {self.service} 10000",
                f"sentinel parallel-syncs {self.service} 1",
            )
            sentinel.start()
        for sentinel in self.sentinels:
            # Each sentinel must know the replica and the other sentinels before a failover.
            _wait(lambda s=sentinel: self._sees_everyone(s), "the sentinels discovering each other")
        return self

    def _sees_everyone(self, sentinel: RedisNode) -> bool:
        # Raw commands: redis-py 6.4's sentinel_master() fails on its own response callback.
        raw = sentinel.client().execute_command("SENTINEL", "MASTER", self.service)
        master = {raw[i].decode(): raw[i + 1].decode() for i in range(0, len(raw), 2)}
        return master["num-other-sentinels"] == "2" and master["num-slaves"] == "1"

    def primary_port(self) -> int:
        """The primary's port as the sentinels name it now."""
        command = ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        _, port = self.sentinels[0].client().execute_command(*command)
        return int(port)

    def stop(self) -> None:
        for node in [*self.sentinels, self.replica, self.primary]:
            node.stop()


class ClusterTopology:
    """Three primaries, no replicas, created with ``redis-cli --cluster create``."""

    def __init__(self, workdir: Path) -> None:
        # The bus port is set too: the default (port + 10000) overflows for high free ports.
        self.nodes = [
            RedisNode(
                workdir,
                "cluster-enabled yes",
                "cluster-config-file nodes.conf",
                "cluster-node-timeout 2000",
                f"cluster-port {free_port()}",
            )
            for _ in range(3)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:2])

    def start(self) -> ClusterTopology:
        for node in self.nodes:
            node.start()
        created = subprocess.run(
            [binary("redis-cli"), "--cluster", "create",
             *(f"127.0.0.1:{node.port}" for node in self.nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-1500:]}")
        for node in self.nodes:
            _wait(
                lambda n=node: n.client().cluster("info")["cluster_state"] == "ok",
                "the cluster reaching state ok",
            )
        return self

    def client(self):
        from redis.cluster import ClusterNode, RedisCluster

        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", node.port) for node in self.nodes],
            socket_timeout=1.0,
        )

    def keys(self, pattern: str) -> list[bytes]:
        """Keys matching ``pattern`` on every node (KEYS on a cluster asks one node)."""
        return [key for node in self.nodes for key in node.client().keys(pattern)]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[SentinelTopology]:
    binary("redis-sentinel")
    topology = SentinelTopology(tmp_path)
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[ClusterTopology]:
    binary("redis-cli")
    topology = ClusterTopology(tmp_path)
    try:
        yield topology.start()
    finally:
        topology.stop()
