"""The append path of the Redis store: every change's records, in order, in few round trips.

Appends are the store's hot path (one per change of every CRDT room, and every server-side OT
edit).  They go through :class:`~server.store.append_queue.AppendQueue` writers, so each
document's log keeps the order its room made the changes in and a burst is one round trip:
on a single Redis one writer sends each batch as one pipeline of ``EVALSHA``; on a Cluster
there is one writer per document, so a slot failing over stalls only its own documents.
Kept apart from :class:`~server.store.redis.RedisStore` (which owns one of these) because
batching, ordering and the lost-script retry are one concern the rest of the store needs not
know about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError, ResponseError

from server.errors import StorageError
from server.store.append_queue import Append, AppendQueue
from server.store.redis_client import Client
from server.store.redis_keys import keys, version_key
from server.store.redis_scripts import APPEND


class RedisAppends:
    """Queues appends of one replica's records and sends them with the ``APPEND`` script."""

    def __init__(self, redis: Client, replica_id: str) -> None:
        self.redis = redis
        self.replica_id = replica_id
        self._script: Any = None
        # Every append goes through one writer: each document's log keeps the order its room
        # made the changes in, and a burst is one round trip (see server.store.append_queue).
        # On a Cluster one writer per document, so a slot failing over stalls only its own.
        self._appends = AppendQueue(self._send_appends)
        self._doc_appends: dict[str, AppendQueue] = {}

    def open(self) -> None:
        """Register the script (no round trip: it is loaded on first use)."""
        self._script = self.redis.register_script(APPEND)

    async def close(self) -> None:
        """Send the appends still queued."""
        await self._appends.close()
        for queue in list(self._doc_appends.values()):
            await queue.close()

    def put(self, doc: str, kind: str, records: tuple[bytes, ...],
            author: str) -> asyncio.Future[None]:
        """Queue ``records`` (not empty) behind this document's earlier appends."""
        if not isinstance(self.redis, RedisCluster):
            return self._appends.put(doc, kind, records, author)
        queue = self._doc_appends.get(doc)
        if queue is None:
            if len(self._doc_appends) >= 1024:  # forget idle writers of documents gone quiet
                self._doc_appends = {d: q for d, q in self._doc_appends.items() if q.busy}
            queue = self._doc_appends[doc] = AppendQueue(self._send_in_order)
        return queue.put(doc, kind, records, author)

    async def _send_appends(self, batch: Sequence[Append]) -> None:
        """One batch on a single Redis: one pipeline (in order on one connection, one round
        trip)."""
        # EVALSHA straight into the pipeline: registering the script with the pipeline would
        # cost a SCRIPT EXISTS round trip per batch.  A Redis that lost its script cache (a
        # restart) answers NOSCRIPT: those appends go again through the script object, which
        # loads it — still in order, as nothing later of theirs was written.
        sha = self._script.sha
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for item in batch:
                    pipe.evalsha(sha, 3, *_append_keys(item.doc), item.kind,
                                 self.replica_id, item.author, *item.records)
                results = await pipe.execute(raise_on_error=False)
        except RedisError as exc:
            raise StorageError(f"append: Redis write failed: {exc}") from exc
        retry = [item for item, result in zip(batch, results, strict=True)
                 if isinstance(result, NoScriptError)]
        for item, result in zip(batch, results, strict=True):
            if not isinstance(result, NoScriptError):
                item.settle(_append_error(item.doc, result) if isinstance(result, Exception)
                            else None)
        if retry:
            await self._send_in_order(retry)

    async def _send_in_order(self, items: Sequence[Append]) -> None:
        for item in items:
            try:
                await self._script(keys=_append_keys(item.doc),
                                   args=[item.kind, self.replica_id, item.author, *item.records])
            except RedisError as exc:
                item.settle(_append_error(item.doc, exc))
            else:
                item.settle(None)


def _append_keys(doc: str) -> list[str]:
    kind_key, log_key, _ = keys(doc)
    return [kind_key, log_key, version_key(doc)]


def _append_error(doc: str, exc: BaseException) -> StorageError:
    """The error of one refused append: the other engine's document, or Redis failing."""
    if isinstance(exc, ResponseError):
        return StorageError(f"append {doc!r}: {str(exc).removeprefix('KIND ')}")
    return StorageError(f"append {doc!r}: Redis write failed: {exc}")
