"""The presence relay: ephemeral messages (cursors, user names) between replicas.

Presence is not document state: it is worth nothing a few seconds later, so it is never written
into a document's log (:mod:`server.relay.redis` relays *durable* records).  Delivery is
at-most-once and fire-and-forget: :meth:`PresenceRelay.publish` never waits and never fails the
caller; a message lost to a Redis hiccup is repaired by the next periodic refresh the protocol
adapters send (:mod:`server.protocols.yjs_presence`, :mod:`server.protocols.sharedb_presence`).

A message is addressed to a :data:`Topic` — ``(protocol, name)``, e.g. ``("yjs", "notes/a")``
for a Yjs document's awareness or ``("sharedb", "cursors")`` for a ShareDB presence channel —
and carries its origin replica, so a replica never hands its own messages back to its clients
(no loops).  Payloads are the wire frames as the clients sent them: replicas forward them as
received.

Implementations: :class:`LocalPresenceRelay` (in-process: alone it reaches nobody and says so
— ``solo`` — so a single replica does no presence work; several servers sharing a
:class:`LocalPresenceHub` in one process behave as replicas) and
:class:`~server.relay.redis_presence.RedisPresenceRelay` (Redis sharded pub/sub).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

log = logging.getLogger("weft.presence")

Topic = tuple[str, str]  # (protocol, name): ("yjs", document) or ("sharedb", channel)


@dataclass(frozen=True, slots=True)
class PresenceMessage:
    """One presence frame, as another replica published it."""

    topic: Topic
    origin: str
    payload: bytes


PresenceHandler = Callable[[PresenceMessage], None]


@runtime_checkable
class PresenceRelay(Protocol):
    """Fire-and-forget publish/subscribe of presence frames between replicas."""

    replica_id: str
    # True when no other replica can hear this relay (a lone server): callers skip the work.
    solo: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def subscribe(self, topic: Topic, handler: PresenceHandler) -> None:
        """Deliver other replicas' messages on ``topic`` to ``handler`` (one per topic)."""
        ...

    def unsubscribe(self, topic: Topic) -> None: ...

    def publish(self, topic: Topic, payload: bytes) -> None:
        """Send ``payload`` to the other replicas subscribed to ``topic``; never waits."""
        ...


class LocalPresenceHub:
    """Routes presence messages between the :class:`LocalPresenceRelay` objects attached."""

    def __init__(self) -> None:
        self.handlers: defaultdict[Topic, dict[str, PresenceHandler]] = defaultdict(dict)

    def deliver(self, message: PresenceMessage) -> None:
        for replica, handler in list(self.handlers.get(message.topic, {}).items()):
            if replica == message.origin:
                continue
            try:
                handler(message)
            except Exception:  # one replica's bug must not stop delivery to the others
                log.exception("presence handler of replica %s failed", replica)


class LocalPresenceRelay:
    """:class:`PresenceRelay` in one process; a server alone gets a hub of its own."""

    def __init__(self, hub: LocalPresenceHub | None = None,
                 replica_id: str | None = None) -> None:
        self.solo = hub is None
        self.hub = hub or LocalPresenceHub()
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self.published: Counter[Topic] = Counter()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for handlers in self.hub.handlers.values():
            handlers.pop(self.replica_id, None)

    def subscribe(self, topic: Topic, handler: PresenceHandler) -> None:
        self.hub.handlers[topic][self.replica_id] = handler

    def unsubscribe(self, topic: Topic) -> None:
        handlers = self.hub.handlers.get(topic)
        if handlers is not None:
            handlers.pop(self.replica_id, None)
            if not handlers:
                del self.hub.handlers[topic]

    def publish(self, topic: Topic, payload: bytes) -> None:
        handlers = self.hub.handlers.get(topic)
        if not handlers or handlers.keys() == {self.replica_id}:
            return  # nobody else listens (always so for a lone server): nothing to schedule
        self.published[topic] += 1
        message = PresenceMessage(topic, self.replica_id, payload)
        # Deliver on a later tick, as a network relay would: never re-enter the publisher.
        asyncio.get_running_loop().call_soon(self.hub.deliver, message)
