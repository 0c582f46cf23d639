"""An in-memory store: the same contract as SQLite, gone when the process ends.

For tests, benchmarks that must not measure a disk, and embedding apps that keep documents
elsewhere.  Writes still yield to the loop once, so callers cannot come to rely on a write
completing synchronously.  ``fail_next`` lets tests inject storage failures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from server.errors import StorageError
from server.store.base import StoredDoc, StoredMeta
from server.store.history import (
    Checkpoint,
    HistoryBudget,
    HistoryRecord,
    StoredHistory,
    redundant,
    trim_point,
)


@dataclass(slots=True)
class _Doc:
    kind: str
    snapshot: bytes | None = None
    snapshot_seq: int = 0
    log: dict[int, bytes] = field(default_factory=dict)
    # History: seq -> (time, author) of each kept record; older snapshots by the seq they cover.
    meta: dict[int, tuple[float, str]] = field(default_factory=dict)
    snapshot_time: float | None = None
    checkpoints: dict[int, tuple[float | None, bytes]] = field(default_factory=dict)


class MemoryStore:
    """Dictionary-backed :class:`~server.store.base.Store`."""

    def __init__(self, history: HistoryBudget | None = None) -> None:
        self.docs: dict[str, _Doc] = {}
        self.metadata: dict[str, dict[int, bytes]] = {}  # doc -> seq -> metadata record
        self._meta_seq = 0
        self.budget = history or HistoryBudget()
        # Names of operations ("load", "append", "compact") whose next call raises StorageError.
        self.fail_next: set[str] = set()
        self.closed = False

    async def open(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    def _maybe_fail(self, op: str, doc: str) -> None:
        if self.closed:
            raise StorageError("store is closed")
        if op in self.fail_next:
            self.fail_next.discard(op)
            raise StorageError(f"injected failure: {op} {doc!r}")

    async def load(self, doc: str) -> StoredDoc | None:
        await asyncio.sleep(0)
        self._maybe_fail("load", doc)
        stored = self.docs.get(doc)
        if stored is None:
            return None
        seqs = sorted(s for s in stored.log if s > stored.snapshot_seq)
        last = seqs[-1] if seqs else stored.snapshot_seq
        return StoredDoc(stored.kind, stored.snapshot, tuple(stored.log[s] for s in seqs), last + 1)

    def _claim(self, doc: str, kind: str) -> _Doc:
        stored = self.docs.setdefault(doc, _Doc(kind))
        if stored.kind != kind:
            raise StorageError(f"document {doc!r} is a {stored.kind} document, not {kind}")
        return stored

    async def append(self, doc: str, kind: str, first_seq: int, records: Sequence[bytes],
                     author: str = "") -> None:
        await asyncio.sleep(0)
        self._maybe_fail("append", doc)
        if not records:
            return
        stored = self._claim(doc, kind)
        for i, record in enumerate(records):
            if first_seq + i in stored.log:
                raise StorageError(f"append {doc!r}: seq {first_seq + i} already written")
            stored.log[first_seq + i] = record
            stored.meta[first_seq + i] = (time.time(), author)

    async def compact(self, doc: str, kind: str, snapshot: bytes, upto_seq: int) -> None:
        await asyncio.sleep(0)
        self._maybe_fail("compact", doc)
        stored = self._claim(doc, kind)
        now = time.time()
        if stored.snapshot is not None and self.budget.enabled:
            stored.checkpoints[stored.snapshot_seq] = (stored.snapshot_time, stored.snapshot)
        stored.checkpoints.pop(upto_seq, None)  # the new snapshot replaces it
        stored.snapshot, stored.snapshot_seq, stored.snapshot_time = snapshot, upto_seq, now
        seqs = sorted(stored.log)
        records = [(s, stored.meta[s][0]) for s in seqs]
        cut = trim_point(self.budget, [*stored.checkpoints, upto_seq], records, now)
        if cut is not None:
            for seq in [s for s in seqs if s <= cut]:
                del stored.log[seq]
                del stored.meta[seq]
            for seq in [s for s in stored.checkpoints if s < cut]:
                del stored.checkpoints[seq]
        for seq in redundant([*stored.checkpoints, upto_seq], records):
            stored.checkpoints.pop(seq, None)

    async def history(self, doc: str) -> StoredHistory | None:
        await asyncio.sleep(0)
        self._maybe_fail("history", doc)
        stored = self.docs.get(doc)
        if stored is None:
            return None
        checkpoints = [Checkpoint(s, t, d) for s, (t, d) in sorted(stored.checkpoints.items())]
        if stored.snapshot is not None:
            checkpoints.append(Checkpoint(stored.snapshot_seq, stored.snapshot_time,
                                          stored.snapshot))
        records = tuple(HistoryRecord(s, *stored.meta[s], stored.log[s])
                        for s in sorted(stored.log))
        return StoredHistory(stored.kind, tuple(checkpoints), records)

    async def kind_of(self, doc: str) -> str | None:
        stored = self.docs.get(doc)
        return None if stored is None else stored.kind

    async def delete(self, doc: str) -> None:
        await asyncio.sleep(0)
        self.docs.pop(doc, None)
        self.metadata.pop(doc, None)

    async def meta_append(self, doc: str, record: bytes) -> None:
        await asyncio.sleep(0)
        self._maybe_fail("meta_append", doc)
        self._meta_seq += 1
        self.metadata.setdefault(doc, {})[self._meta_seq] = bytes(record)

    async def meta_load(self, doc: str) -> StoredMeta:
        await asyncio.sleep(0)
        self._maybe_fail("meta_load", doc)
        log = self.metadata.get(doc, {})
        return StoredMeta(tuple(log.values()), tuple(str(seq) for seq in log))

    async def meta_compact(self, doc: str, snapshot: bytes, ids: Sequence[str]) -> None:
        await asyncio.sleep(0)
        self._maybe_fail("meta_compact", doc)
        log = self.metadata.setdefault(doc, {})
        for seq in ids:
            log.pop(int(seq), None)
        self._meta_seq += 1
        log[self._meta_seq] = bytes(snapshot)
