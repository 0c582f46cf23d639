"""The in-process relay: replicas living in one Python process share a :class:`LocalHub`.

A server started alone gets its own hub, so publishing reaches nobody (one replica).  Two
:class:`~server.app.WeftServer` instances given the same hub behave as two replicas, which is
how tests exercise relaying without Redis.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict

from server.relay.base import RelayHandler, RelayMessage

log = logging.getLogger("weft.relay")


class LocalHub:
    """Routes messages between the :class:`LocalRelay` objects attached to it."""

    def __init__(self) -> None:
        self.handlers: defaultdict[str, dict[str, RelayHandler]] = defaultdict(dict)

    def deliver(self, message: RelayMessage) -> None:
        for replica, handler in list(self.handlers.get(message.doc, {}).items()):
            if replica == message.origin:
                continue
            try:
                handler(message)
            except Exception:  # one replica's bug must not stop delivery to the others
                log.exception("relay handler of replica %s failed", replica)


class LocalRelay:
    """:class:`~server.relay.base.Relay` over a :class:`LocalHub`."""

    def __init__(self, hub: LocalHub | None = None, replica_id: str | None = None) -> None:
        self.hub = hub or LocalHub()
        self.replica_id = replica_id or uuid.uuid4().hex[:12]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for handlers in self.hub.handlers.values():
            handlers.pop(self.replica_id, None)

    def subscribe(self, doc: str, handler: RelayHandler) -> None:
        self.hub.handlers[doc][self.replica_id] = handler

    def unsubscribe(self, doc: str) -> None:
        handlers = self.hub.handlers.get(doc)
        if handlers is not None:
            handlers.pop(self.replica_id, None)
            if not handlers:
                del self.hub.handlers[doc]

    async def publish(self, doc: str, kind: str, records: tuple[bytes, ...]) -> None:
        message = RelayMessage(doc, kind, self.replica_id, records)
        # Deliver on a later tick, as a network relay would: never re-enter the publisher.
        asyncio.get_running_loop().call_soon(self.hub.deliver, message)
