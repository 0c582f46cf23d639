"""The store interface: where documents live between process lifetimes.

A document is a small header (which engine merges it), an optional snapshot, and an append-only
log of engine records after the snapshot.  Records are opaque bytes the document's engine wrote
(``Effects.persist``) and reads back (``Engine.load``); the store never interprets them.

Sequence numbers make compaction safe without locks: the room numbers its records, so
``compact(doc, snapshot, upto=n)`` replaces exactly records ``<= n`` with the snapshot, even
while later records are still being appended.  Implementations must apply writes for one
document in call order (``append`` then ``compact`` then ``append`` …).

The embedded default is :class:`server.store.sqlite.SQLiteStore`.  The store shared by
replicas, :class:`server.store.redis.RedisStore`, keeps the same shape with keys
``weft:{doc}:kind``, ``weft:{doc}:log`` (a Stream) and ``weft:{doc}:snap`` (one hash tag: one
Cluster slot), but numbers records itself (stream ids: several replicas append to one log), so
it ignores ``first_seq`` and compacts up to what this replica's relay has applied instead of
``upto_seq``.  Engines must therefore tolerate a snapshot followed by records it already
covers (CRDT updates are idempotent; the OT engine skips records older than its snapshot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from server.store.history import HistoryBudget, StoredHistory


@dataclass(frozen=True, slots=True)
class StoredDoc:
    """What :meth:`Store.load` returns for an existing document."""

    kind: str
    snapshot: bytes | None
    log: tuple[bytes, ...]
    # Sequence number the next appended record must carry.
    next_seq: int


__all__ = ["HistoryBudget", "Store", "StoredDoc", "StoredHistory", "StoredMeta"]


@dataclass(frozen=True, slots=True)
class StoredMeta:
    """What :meth:`Store.meta_load` returns: metadata records and their store ids."""

    records: tuple[bytes, ...] = ()
    ids: tuple[str, ...] = ()


@runtime_checkable
class Store(Protocol):
    """Durable document storage, used only from the event loop thread."""

    async def open(self) -> None:
        """Acquire resources (files, connections); called once before any other method."""
        ...

    async def close(self) -> None:
        """Flush every accepted write, then release resources."""
        ...

    async def load(self, doc: str) -> StoredDoc | None:
        """The stored document, or None when it was never written."""
        ...

    async def append(self, doc: str, kind: str, first_seq: int, records: Sequence[bytes],
                     author: str = "") -> None:
        """Durably append ``records`` numbered from ``first_seq``; returns once committed.

        The first append of a document records its ``kind``; later appends with another kind
        raise :class:`server.errors.StorageError` (one document never gets both engines).
        ``author`` and the append time are kept beside each record for the document's history.
        """
        ...

    async def compact(self, doc: str, kind: str, snapshot: bytes, upto_seq: int) -> None:
        """Durably replace the snapshot and log records ``<= upto_seq`` with ``snapshot``.

        With a :class:`HistoryBudget`, records and older snapshots (checkpoints) the budget
        still covers are kept for :meth:`history`; only what is older goes.
        """
        ...

    async def history(self, doc: str) -> StoredHistory | None:
        """The kept records and checkpoints of ``doc``, oldest first (None: unknown doc)."""
        ...

    async def kind_of(self, doc: str) -> str | None:
        """Which engine the stored document uses, without loading it (None: unknown doc)."""
        ...

    async def delete(self, doc: str) -> None:
        """Remove every trace of the document (its name becomes free for either engine)."""
        ...

    async def meta_append(self, doc: str, record: bytes) -> None:
        """Durably append one metadata record (:mod:`server.metadata`) to ``doc``'s metadata
        log; independent of the document's engine, and of whether it has text yet."""
        ...

    async def meta_load(self, doc: str) -> StoredMeta:
        """Every metadata record of ``doc`` and its id (the merge is order-independent)."""
        ...

    async def meta_compact(self, doc: str, snapshot: bytes, ids: Sequence[str]) -> None:
        """In one atomic step, append ``snapshot`` and delete the records ``ids`` (which the
        snapshot covers).  Records appended meanwhile, by any replica, are kept."""
        ...
