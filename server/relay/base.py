"""The relay interface: how a room hears about changes made through other replicas.

A room publishes what it committed (engine records, the same bytes it persisted) and receives
what other replicas committed to the same document.  Every message names its origin replica so
a replica never re-applies or re-broadcasts its own messages (no replication loops).

With one replica the in-process relay delivers nothing anywhere; it exists so the room code is
the same with one replica or many, and so tests can run two servers in one process sharing a
:class:`~server.relay.local.LocalHub`.  The Redis relay
(:mod:`server.relay.redis`) reads the Redis store's log streams: log == relay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class RelayMessage:
    """One committed change, as another replica published it."""

    doc: str
    kind: str
    origin: str
    records: tuple[bytes, ...]


RelayHandler = Callable[[RelayMessage], None]


@runtime_checkable
class Relay(Protocol):
    """Publish/subscribe of committed changes between replicas of one deployment."""

    replica_id: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def subscribe(self, doc: str, handler: RelayHandler) -> None:
        """Deliver other replicas' messages for ``doc`` to ``handler`` (one handler per doc)."""
        ...

    def unsubscribe(self, doc: str) -> None: ...

    async def publish(self, doc: str, kind: str, records: tuple[bytes, ...]) -> None:
        """Send a committed change to every other replica subscribed to ``doc``."""
        ...
