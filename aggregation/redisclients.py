"""Redis clients for the configured topology: one node, Sentinel or Cluster.

``REDIS_URL`` (parsed by ``bff_project.config.redis_topology``) decides which:

* ``redis://`` / ``rediss://`` / ``unix://``: one node;
* ``redis+sentinel://host:26379,host:26380/mymaster/0``: the primary the sentinels name,
  found again after a failover (redis-py's ``Sentinel.master_for``);
* ``redis+cluster://host:7000,host:7001``: a Redis Cluster (redis-py's ``RedisCluster``).

Every key operation of the product is single-key (a cache entry, its lock, a rate-limit
window, the registry generation), and the two Lua scripts touch only ``KEYS[1]``, so each
runs on the node owning its key's slot and needs no hash tags.

``async_client`` serves the response cache and the rate limits (redis.asyncio);
``ClusterConnectionFactory`` gives django-redis (Django's cache: the registry generation
counter and ``/readyz``'s probe) a cluster client, which django-redis 6 lacks. Sentinel
goes through django-redis's own ``SentinelConnectionFactory`` (see ``settings.py``).
"""

from __future__ import annotations

import redis
from django_redis.pool import ConnectionFactory
from redis.exceptions import RedisClusterException

from bff_project.config import RedisTopology, redis_topology

# Everything a Redis call can fail with; RedisClusterException is not a RedisError.
ERRORS: tuple[type[BaseException], ...] = (
    redis.RedisError,
    RedisClusterException,
    OSError,
    TimeoutError,
)


def async_client(url: str, *, timeout: float):
    """A redis.asyncio client for ``url``'s topology, with short timeouts and no retries
    on timeout (a slow Redis must cost a miss, not a longer wait)."""
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.sentinel import Sentinel

    topology = redis_topology(url)
    timeouts = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    credentials = {"username": topology.username, "password": topology.password}
    if topology.kind == "sentinel":
        sentinel = Sentinel(list(topology.nodes), sentinel_kwargs=timeouts, **timeouts)
        return sentinel.master_for(
            topology.service, db=topology.db, retry_on_timeout=False, **credentials
        )
    if topology.kind == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in topology.nodes],
            **timeouts,
            **credentials,
        )
    return aioredis.Redis.from_url(url, retry_on_timeout=False, **timeouts)


def cluster_client(topology: RedisTopology, *, timeout: float):
    """A synchronous RedisCluster client for ``topology``."""
    from redis.cluster import ClusterNode, RedisCluster

    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in topology.nodes],
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        username=topology.username,
        password=topology.password,
    )


class ClusterConnectionFactory(ConnectionFactory):
    """django-redis connections to a Redis Cluster: ``LOCATION`` is the ``redis+cluster://``
    URL (in a one-item list, so django-redis does not split it at its commas)."""

    def connect(self, url: str):
        client = self._pools.get(url)
        if client is None:
            timeout = self.options.get("SOCKET_TIMEOUT") or 0.25
            client = self._pools[url] = cluster_client(redis_topology(url), timeout=timeout)
        return client

    def disconnect(self, connection) -> None:
        connection.close()
