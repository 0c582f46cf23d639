"""The Redis presence relay: presence frames over Redis (sharded) pub/sub.

Pub/sub, not Streams (which :mod:`server.relay.redis` uses for durable records), because
presence wants the opposite trade-off: nothing stored, nothing to trim, a message sent while a
replica is disconnected is simply lost (the senders' periodic refresh repairs it).

* **Channels**: one per topic, ``weft:{<name>}:presence:<protocol>`` — the document's (or
  ShareDB channel's) hash tag, so in a Redis Cluster it lives on the shard holding the
  document's keys.  With Redis >= 7 the relay uses sharded pub/sub (``SPUBLISH`` /
  ``SSUBSCRIBE``), which a Cluster routes to that one shard instead of broadcasting every
  message to every node; older servers get classic ``PUBLISH`` / ``SUBSCRIBE``.
* **Payload**: ``[origin length: 1 byte][origin replica id][frame as the client sent it]``.
  Redis delivers a replica its own messages; they are recognised by origin and skipped.
* **Fire-and-forget**: :meth:`publish` appends to a bounded queue that one sender task drains
  in pipelined batches; when Redis is unreachable the batch is dropped (counted, logged once
  per outage) — the caller never waits on Redis.
* **Subscriptions** are reconciled by one control task (wanted set vs. subscribed set), so
  a quick subscribe/unsubscribe/subscribe sequence cannot reorder.  One reader task reads the
  pub/sub connection; after a dropped connection redis-py re-subscribes every channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from typing import Any

from redis.exceptions import RedisError

from server.relay.presence import PresenceHandler, PresenceMessage, Topic
from server.store.redis import connect

log = logging.getLogger("weft.presence")

MAX_QUEUE = 10_000  # presence frames waiting to be published; older ones are dropped first
BATCH = 256  # frames per pipelined round trip
READ_TIMEOUT = 1.0  # the reader wakes this often to notice close()
MAX_BACKOFF = 1.0
_SEPARATOR = "}:presence:"


def channel_of(topic: Topic) -> str:
    """The Redis channel of ``topic``: the name as hash tag, the protocol last."""
    protocol, name = topic
    return f"weft:{{{name}{_SEPARATOR}{protocol}"


def topic_of(channel: str) -> Topic | None:
    """The topic of a channel made by :func:`channel_of` (None for anything else)."""
    if not channel.startswith("weft:{"):
        return None
    name, sep, protocol = channel[len("weft:{"):].rpartition(_SEPARATOR)
    return (protocol, name) if sep else None


def pack(origin: bytes, payload: bytes) -> bytes:
    return bytes((len(origin),)) + origin + payload


def unpack(data: bytes) -> tuple[str, bytes] | None:
    """``(origin, payload)`` of a published message, or None if it is not one of ours."""
    if not data:
        return None
    end = 1 + data[0]
    if len(data) < end:
        return None
    return data[1:end].decode(errors="replace"), data[end:]


class RedisPresenceRelay:
    """:class:`~server.relay.presence.PresenceRelay` over Redis pub/sub."""

    def __init__(self, url: str, replica_id: str, *, sharded: bool | None = None) -> None:
        self.replica_id = replica_id
        self.solo = False
        self._origin = replica_id.encode()
        if not 0 < len(self._origin) < 256:
            raise ValueError(f"a replica id must be 1..255 UTF-8 bytes, got {replica_id!r}")
        # No client-side retries: the loops below retry themselves and must stay cancellable.
        self.redis = connect(url, retries=0, name=f"weft:{replica_id}:presence")
        self.pubsub: Any = self.redis.pubsub(ignore_subscribe_messages=True)
        self.sharded = sharded  # None: decided at start() from the server version
        self.handlers: dict[Topic, PresenceHandler] = {}
        self._subscribed: set[str] = set()
        self._queue: deque[tuple[str, bytes]] = deque()
        self._queued = asyncio.Event()
        self._wanted_changed = asyncio.Event()
        self._has_channels = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._failing = False
        # Counters for tests and metrics.
        self.published: Counter[Topic] = Counter()
        self.delivered: Counter[Topic] = Counter()
        self.skipped_own: Counter[Topic] = Counter()
        self.dropped = 0

    async def start(self) -> None:
        if self.sharded is None:
            try:
                info = await self.redis.info("server")
                self.sharded = int(str(info.get("redis_version", "7")).split(".")[0]) >= 7
            except (RedisError, OSError, ValueError):
                self.sharded = True
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send_loop(), name="weft-presence-send"),
                       loop.create_task(self._control_loop(), name="weft-presence-control"),
                       loop.create_task(self._read_loop(), name="weft-presence-read")]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        self._tasks = []
        self.handlers.clear()
        with contextlib.suppress(RedisError, OSError):
            await self.pubsub.aclose()
        await self.redis.aclose()

    # ---- the PresenceRelay interface -------------------------------------------------------

    def subscribe(self, topic: Topic, handler: PresenceHandler) -> None:
        self.handlers[topic] = handler
        self._wanted_changed.set()

    def unsubscribe(self, topic: Topic) -> None:
        if self.handlers.pop(topic, None) is not None:
            self._wanted_changed.set()

    def publish(self, topic: Topic, payload: bytes) -> None:
        if self._closing:
            return
        if len(self._queue) >= MAX_QUEUE:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((channel_of(topic), pack(self._origin, payload)))
        self.published[topic] += 1
        self._queued.set()

    # ---- tasks -------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                count = min(BATCH, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                pipe = self.redis.pipeline(transaction=False)
                for channel, data in batch:
                    if self.sharded:
                        pipe.spublish(channel, data)
                    else:
                        pipe.publish(channel, data)
                try:
                    await pipe.execute()
                except (RedisError, OSError) as exc:
                    self.dropped += len(batch)  # at-most-once: the next refresh repairs it
                    if not self._failing:
                        log.warning("presence publish to Redis failed (dropping): %s", exc)
                    self._failing = True
                    await asyncio.sleep(0.1)
                else:
                    self._failing = False

    async def _control_loop(self) -> None:
        """Make the subscribed channels match the handlers' topics."""
        backoff = 0.05
        while True:
            await self._wanted_changed.wait()
            self._wanted_changed.clear()
            wanted = {channel_of(topic) for topic in self.handlers}
            add, remove = wanted - self._subscribed, self._subscribed - wanted
            try:
                if add:
                    await (self.pubsub.ssubscribe(*add) if self.sharded
                           else self.pubsub.subscribe(*add))
                    self._subscribed |= add
                if remove:
                    await (self.pubsub.sunsubscribe(*remove) if self.sharded
                           else self.pubsub.unsubscribe(*remove))
                    self._subscribed -= remove
            except (RedisError, OSError) as exc:
                log.warning("presence (un)subscribe failed (retrying): %s", exc)
                self._wanted_changed.set()
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            backoff = 0.05
            if self._subscribed:
                self._has_channels.set()

    async def _read_loop(self) -> None:
        backoff = 0.05
        while True:
            await self._has_channels.wait()  # get_message needs a subscribed connection
            try:
                message = await self.pubsub.get_message(ignore_subscribe_messages=True,
                                                        timeout=READ_TIMEOUT)
            except (RedisError, OSError) as exc:
                log.debug("presence read from Redis failed (retrying): %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            backoff = 0.05
            if message is not None and message.get("type") in ("smessage", "message"):
                self._deliver(message["channel"], message["data"])

    def _deliver(self, raw_channel: bytes | str, data: bytes) -> None:
        channel = raw_channel.decode() if isinstance(raw_channel, bytes) else raw_channel
        topic = topic_of(channel)
        unpacked = unpack(data) if isinstance(data, bytes) else None
        if topic is None or unpacked is None:
            return
        origin, payload = unpacked
        if origin == self.replica_id:
            self.skipped_own[topic] += 1
            return
        handler = self.handlers.get(topic)
        if handler is None:
            return  # unsubscribed meanwhile
        self.delivered[topic] += 1
        try:
            handler(PresenceMessage(topic, origin, payload))
        except Exception:  # one topic's bug must not stop the relay
            log.exception("presence handler for %r failed", topic)
