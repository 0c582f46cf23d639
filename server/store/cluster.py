"""Redis Cluster: which ``--redis`` URLs name one, and a cluster client for them.

A cluster is named by its scheme, ``redis+cluster://[user:password@]host:port`` (TLS:
``rediss+cluster://``), optionally with several seed nodes, ``host1:port1,host2:port2``, so
starting works while one of them is down.  The client discovers every other node itself
(``CLUSTER SLOTS``) and routes each command by its key's slot.  Why an explicit scheme rather
than detecting a cluster with ``CLUSTER INFO``: the URL says what the operator meant, no round
trip is needed before the first connection, and a single-instance URL never changes behaviour.

What makes Weft work on a cluster at all is the key layout (:mod:`server.store.redis`): every
key of a document carries the ``{doc}`` hash tag, so each Lua script and each ``MULTI`` touches
one slot (``EVALSHA`` routes by its first key; ``SCRIPT LOAD`` goes to every primary).  The
one multi-document command, the relay's ``XREAD`` over many streams, is split per slot by
:mod:`server.relay.streams`.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ClusterError, RedisClusterException, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Cluster scheme -> the scheme redis-py parses for each node.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
#: Connections per node: redis-py's cluster default (100) is too few for blocking reads, one
#: per slot that has open documents (see :mod:`server.relay.streams`).
MAX_CONNECTIONS_PER_NODE = 10_000


class Cluster(RedisCluster):
    """redis-py's cluster client, failing and retrying the way the single-instance one does.

    * redis-py raises :class:`~redis.exceptions.RedisClusterException` (not a ``RedisError``)
      when no seed node answers or a slot has no node (during a failover).  Every caller in
      Weft treats ``RedisError`` as "Redis is unavailable, retry / report a storage error";
      letting the other one through would stop the relay's reader task instead.
    * redis-py's cluster client retries a failed command at once, without backoff, so its
      retries are spent in milliseconds; a node restarting or a replica being promoted takes
      seconds.  Commands are retried here instead, with the single-instance client's backoff
      (each attempt re-reads the slot map after a connection error).
    """

    retries = 0  # set by connect_cluster()
    backoff = ExponentialBackoff(cap=1.0, base=0.05)

    async def initialize(self, *args: Any, **kwargs: Any) -> Cluster:
        try:
            await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise ClusterError(f"Redis Cluster: {exc}") from exc
        return self

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return await super().execute_command(*args, **kwargs)
            except RedisClusterException as exc:
                error: RedisError = ClusterError(f"Redis Cluster: {exc}")
                error.__cause__ = exc
            except (RedisConnectionError, RedisTimeoutError, ClusterError) as exc:
                error = exc
            if attempt >= self.retries:
                raise error
            attempt += 1
            await asyncio.sleep(self.backoff.compute(attempt))


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def seed_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """The URL of the first seed node as a plain ``redis://`` URL (credentials, query kept),
    and every other seed's ``(host, port)``.  A database other than 0 is refused: a cluster
    has only database 0."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL (expected redis+cluster://host:port): {url!r}")
    credentials, _, hosts = parts.netloc.rpartition("@")
    seeds = [h for h in hosts.split(",") if h]
    if not seeds:
        raise ValueError(f"a Redis Cluster URL needs at least one host:port: {url!r}")
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"Redis Cluster has only database 0, got {parts.path!r} in {url!r}")
    others: list[tuple[str, int]] = []
    for seed in seeds[1:]:
        host, _, port = seed.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"seed node {seed!r} in {url!r} is not host:port")
        others.append((host.strip("[]"), int(port)))
    first = f"{credentials}@{seeds[0]}" if credentials else seeds[0]
    return urlunsplit((CLUSTER_SCHEMES[parts.scheme], first, "", parts.query, "")), others


def connect_cluster(url: str, *, retries: int, socket_timeout: float,
                    name: str | None) -> Cluster:
    """A cluster client with the same timeouts, retries and naming as the single-instance
    one.  MOVED/ASK redirections are followed by redis-py; commands are retried ``retries``
    times with backoff by :class:`Cluster`; transactions (``MULTI`` pipelines) get one
    attempt."""
    first, others = seed_nodes(url)
    client = cast(Cluster, Cluster.from_url(
        first,
        startup_nodes=[ClusterNode(host, port) for host, port in others] or None,
        client_name=name,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=0),  # see Cluster
        health_check_interval=0,
        socket_connect_timeout=2.0,
        socket_timeout=socket_timeout,
        max_connections=MAX_CONNECTIONS_PER_NODE,
    ))
    client.retries = retries
    return client
