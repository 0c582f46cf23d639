"""Connecting to Redis: one client that rides out a Redis restart, on one Redis or a Cluster.

Shared by the store, the relay and presence (each with its own connections and name); kept
apart from :mod:`server.store.redis` because connecting is not storing.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.store.cluster import connect_cluster, is_cluster_url

#: A single Redis or a Redis Cluster: every command the store sends touches one document's
#: keys (one slot), so both clients take the same calls.
Client = Redis | RedisCluster


def connect(url: str, *, retries: int = 8, socket_timeout: float = 5.0,
            name: str | None = None) -> Client:
    """A client that reconnects by itself: a Redis restart costs retries, not errors.

    ``socket_timeout`` bounds every reply; a blocking read must block for less than it.
    ``name`` is set on every (re)connection (``CLIENT SETNAME``), so an operator's
    ``CLIENT LIST`` shows which replica holds which connection.  A ``redis+cluster://`` URL
    gives a Redis Cluster client (:mod:`server.store.cluster`).
    """
    if name is not None:  # Redis refuses names with spaces or control characters
        name = "".join(ch if "!" <= ch <= "~" else "_" for ch in name)
    if is_cluster_url(url):
        return connect_cluster(url, retries=retries, socket_timeout=socket_timeout, name=name)
    return Redis.from_url(
        url,
        client_name=name,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        health_check_interval=0,
        socket_connect_timeout=2.0,
        socket_timeout=socket_timeout,
    )
