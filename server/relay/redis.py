"""The Redis relay: replicas hear each other by reading the documents' log streams.

Log == relay.  A change is relayed by the very ``XADD`` that makes it durable
(:class:`~server.store.redis.RedisStore`), so :meth:`RedisRelay.publish` has nothing left to
do.  Why Streams rather than pub/sub:

* **Ordered**: every replica reads one document's records in the same (stream id) order.
* **Durable, at-least-once**: an entry stays in the stream (until compaction folds it into a
  snapshot); pub/sub drops every message sent while a subscriber is disconnected.
* **Resumable**: the reader remembers, per document, the last id it processed and asks for
  entries after it — after a dropped connection or a Redis restart it catches up with exactly
  what it missed.  A document opened later starts from the id its load covered, so nothing
  falls between loading and listening.

One reader task per replica ``XREAD BLOCK``s the streams of every open document plus a
per-replica wake stream; subscribing a document adds an entry to the wake stream so the blocked
read returns and the next one includes the new document.  Entries whose origin is this replica
are skipped (the engine already has them: no replication loops), but still advance the
position.  The position advances only after the handler ran, so compaction (which trims up to
it) never drops a record the snapshot lacks.  A replica reading behind another replica's trim
point meets the compaction marker first and merges the snapshot before reading on.

On a Redis Cluster the one ``XREAD`` becomes one per slot (:mod:`server.relay.streams`);
this loop does not change.  Relayed OT records reach a room's engine through
:mod:`server.protocols.ot_replicas` (attached to every OT room when it loads, also REST-only
ones; it also orders OT ops through Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from server.metrics import RelayLag
from server.relay.base import RelayHandler, RelayMessage
from server.relay.streams import reads_for
from server.store.redis import RedisStore, connect, keys, parse_id, text

log = logging.getLogger("weft.relay")

StreamCallback = Callable[[str, bytes], None]  # (origin replica, payload) of a watched entry
BLOCK_MS = 2000  # a bounded block: the reader re-checks its documents at least this often
SOCKET_TIMEOUT = 10.0  # longer than BLOCK_MS: an idle blocked read is not a dead connection
BATCH = 500  # entries per stream per read
MAX_BACKOFF = 1.0


class RedisRelay:
    """:class:`~server.relay.base.Relay` over the log streams of a :class:`RedisStore`."""

    def __init__(self, store: RedisStore, lag: RelayLag | None = None) -> None:
        self.store = store
        self.replica_id = store.replica_id
        # A connection of its own: a blocked XREAD must not hold up the store's writes.
        # No client-side retries: the read loop retries itself (resuming from its positions)
        # and must stay cancellable.
        self.redis = connect(store.url, retries=0, socket_timeout=SOCKET_TIMEOUT,
                             name=f"weft:{self.replica_id}:relay")
        self.reads = reads_for(self.redis)  # one XREAD; one per slot on a Redis Cluster
        self.wake_key = f"weft:replica:{self.replica_id}:wake"
        self.handlers: dict[str, RelayHandler] = {}
        self.kinds: dict[str, str] = {}
        # Counters for tests and metrics: entries handed to handlers / skipped as our own.
        self.delivered: Counter[str] = Counter()
        self.skipped_own: Counter[str] = Counter()
        self.reconnects = 0
        # Lag of each delivered entry: its stream id's milliseconds (the Redis server's clock at
        # XADD) to the handler's return here (this host's clock; skew between them shows).
        self.lag = lag if lag is not None else RelayLag()
        self.snapshots_merged = 0
        # doc -> covered id of a snapshot marker this replica is behind (records were trimmed).
        self._gaps: dict[str, str] = {}
        self._reader: asyncio.Task[None] | None = None
        # From the start, not "$": a wake sent before the first read reaches Redis (a cluster
        # client's first command waits for its slot map) must not be missed.  The stream is
        # deleted on close, so at most a crashed run's few stale wakes are read, once.
        self._wake_id = "0-0"
        self._wakes: set[asyncio.Task[None]] = set()
        self._closing = False
        # Extra streams read by the same XREAD (document metadata logs): key -> last id read,
        # and the callback each entry's (origin, payload) goes to.  Own entries are included.
        self.watched: dict[str, str] = {}
        self._watchers: dict[str, StreamCallback] = {}

    async def start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(),
                                                              name="weft-redis-relay")

    async def close(self) -> None:
        self._closing = True
        if self._reader is not None:
            await self._send_wake()  # the blocked read returns and the loop sees _closing
            await asyncio.wait({self._reader}, timeout=1.0)
            self._reader.cancel()
            await asyncio.wait({self._reader}, timeout=5.0)
            self._reader = None
        with contextlib.suppress(RedisError):
            await self.redis.delete(self.wake_key)
        await self.reads.aclose()
        await self.redis.aclose()
        self.handlers.clear()

    def subscribe(self, doc: str, handler: RelayHandler) -> None:
        """Listen to ``doc`` from the position its load covered (set by the store)."""
        self.handlers[doc] = handler
        self.store.positions.setdefault(doc, "0-0")
        self._wake()

    def unsubscribe(self, doc: str) -> None:
        self.handlers.pop(doc, None)
        self.store.positions.pop(doc, None)
        self.lag.forget(doc)

    def watch(self, key: str, callback: StreamCallback) -> None:
        """Also read stream ``key`` from its start; ``callback(origin, payload)`` per entry.

        For logs whose merge is order-independent and idempotent (metadata): replaying from
        the start is harmless and needs no load/position handshake.
        """
        self._watchers[key] = callback
        self.watched.setdefault(key, "0-0")
        self._wake()

    def unwatch(self, key: str) -> None:
        self._watchers.pop(key, None)
        self.watched.pop(key, None)

    async def publish(self, doc: str, kind: str, records: tuple[bytes, ...]) -> None:
        """Nothing to do: the store's XADD already relayed the records."""
        self.kinds[doc] = kind

    def _wake(self) -> None:
        if self._reader is None or self._closing:
            return
        task = asyncio.get_running_loop().create_task(self._send_wake())
        self._wakes.add(task)  # keep a reference until done (the loop holds only a weak one)
        task.add_done_callback(self._wakes.discard)

    async def _send_wake(self) -> None:
        try:
            await self.redis.xadd(self.wake_key, {"w": "1"}, maxlen=16, approximate=False)
        except RedisError as exc:  # the reader re-checks after BLOCK_MS anyway
            log.debug("could not wake the relay reader: %s", exc)

    async def _read_loop(self) -> None:
        backoff = 0.05
        while not self._closing:
            try:
                await self._fill_gaps()
            except RedisError as exc:
                log.warning("relay could not read a snapshot (retrying): %s", exc)
                await asyncio.sleep(backoff)  # backoff between reconnect attempts
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            streams: dict[Any, Any] = {self.wake_key: self._wake_id}
            docs = {keys(doc)[1]: doc for doc in self.handlers}
            for key, doc in docs.items():
                streams[key] = self.store.positions.get(doc, "0-0")
            streams.update(self.watched)
            try:
                result: Any = await self.reads.xread(streams, count=BATCH, block=BLOCK_MS)
            except RedisError as exc:
                self.reconnects += 1
                log.warning("relay read from Redis failed (retrying in %.2fs): %s", backoff, exc)
                await asyncio.sleep(backoff)  # backoff between reconnect attempts
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            backoff = 0.05
            for stream, entries in result or ():
                name = text(stream)
                if name == self.wake_key:
                    self._wake_id = text(entries[-1][0])
                    continue
                target = docs.get(name)
                if target is not None:
                    self._deliver(target, entries)
                elif name in self._watchers:
                    self._deliver_watched(name, entries)

    def _deliver_watched(self, key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for raw_id, fields in entries:
            callback = self._watchers.get(key)
            if callback is None:
                return  # unwatched meanwhile
            try:
                callback(text(fields.get(b"o", b"")), fields.get(b"p", b""))
            except Exception:  # one stream's bug must not stop the relay
                log.exception("relay callback for stream %r failed", key)
            self.watched[key] = text(raw_id)

    async def _fill_gaps(self) -> None:
        """Merge the snapshot of every document whose unread records a compaction trimmed.

        A CRDT snapshot is a full-state update, so merging it brings the engine up to its
        covered id (records it already had are no news); reading then resumes from there.
        """
        while self._gaps:
            doc, _ = self._gaps.popitem()
            stored = await self.store.snapshot(doc)
            handler = self.handlers.get(doc)
            position = self.store.positions.get(doc)
            if stored is None or handler is None or position is None:
                continue
            snap_id, data = stored
            if parse_id(snap_id) <= parse_id(position):
                continue
            try:
                handler(RelayMessage(doc, self.kinds.get(doc, ""), "snapshot", (data,)))
            except Exception:
                log.exception("relay handler for %r failed on a snapshot", doc)
            self.snapshots_merged += 1
            self.store.positions[doc] = snap_id

    def _deliver(self, doc: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for raw_id, fields in entries:
            handler = self.handlers.get(doc)
            position = self.store.positions.get(doc)
            if handler is None or position is None:
                return  # unsubscribed meanwhile
            entry_id = text(raw_id)
            if parse_id(entry_id) <= parse_id(position):
                continue  # a read issued before a reload; the new load covers it
            if b"s" in fields:  # a compaction marker
                covered = text(fields[b"s"])
                if parse_id(covered) > parse_id(position):
                    self._gaps[doc] = covered  # records up to it may be gone: merge the snapshot
                    return
                self.store.positions[doc] = entry_id
                continue
            origin = text(fields.get(b"o", b""))
            if origin == self.replica_id:
                self.skipped_own[doc] += 1
            else:
                message = RelayMessage(doc, self.kinds.get(doc, ""), origin,
                                       (fields.get(b"p", b""),))
                try:
                    handler(message)
                except Exception:  # one room's bug must not stop the relay
                    log.exception("relay handler for %r failed", doc)
                self.delivered[doc] += 1
                appended_ms = entry_id.partition("-")[0]
                if appended_ms.isdigit():
                    self.lag.observe(doc, origin, time.time() - int(appended_ms) / 1000)
            self.store.positions[doc] = entry_id
